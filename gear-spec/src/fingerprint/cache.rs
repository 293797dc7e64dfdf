//! The stat cache of file digests: a file whose stat is unchanged is not read again.
//!
//! Keyed by absolute path; an entry is trusted only when size, mtime, ctime and inode all
//! match the file's current stat ([`crate::stat`]). Like git's "racy git" rule, a file whose
//! mtime or ctime is within [`RACY_WINDOW`](crate::stat::RACY_WINDOW) of the moment it was
//! hashed is not recorded at all: it could change again within the same timestamp tick
//! without the stat showing it.
//!
//! On disk (`target/gear/hash-cache`), little-endian binary:
//!
//! ```text
//! magic     8 bytes  "GEARHC\0" + format version byte
//! count     u64
//! entries   sorted by path bytes, each:
//!   shared  u32      bytes shared with the previous entry's path (prefix compression)
//!   len     u32      length of the rest of the path
//!   rest    len bytes
//!   size    u64
//!   mtime   i64      nanoseconds since the Unix epoch
//!   ctime   i64      nanoseconds since the Unix epoch (0 where unknown)
//!   inode   u64      (0 where unknown)
//!   sha256  32 bytes
//! check     32 bytes sha256 of everything before it
//! ```
//!
//! A missing, truncated or corrupt file is an empty cache. Saving writes a temporary file
//! beside the cache and renames it over the cache.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::FingerprintError;
#[cfg(test)]
use crate::stat::RACY_WINDOW;
use crate::stat::{FileStat as Stat, ns_since_epoch};

const MAGIC: &[u8; 8] = b"GEARHC\0\x01";
type Hasher = foldhash::fast::RandomState;
const SHARDS: usize = 64;
const READ_BUF: usize = 256 * 1024;
/// Fixed-size part of an encoded entry after the path.
const ENTRY_TAIL: usize = 8 + 8 + 8 + 8 + 32;

#[derive(Debug, Clone, Copy)]
struct Entry {
    stat: Stat,
    sha256: [u8; 32],
    /// Looked up or recorded during this run.
    used: bool,
}

/// Counters of one run, for messages ("hashed 3 files, 1200 unchanged") and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Files whose digest came from the cache.
    pub hits: u64,
    /// Files that were read and hashed.
    pub misses: u64,
    /// Bytes read to hash them.
    pub bytes_hashed: u64,
}

/// Digests of files by path and stat; shared between threads (sharded locks).
pub struct HashCache {
    /// Keyed by the path as an `OsString`: hashed as plain bytes, unlike `Path`, whose
    /// `Hash` walks components (several times slower for 100k loads), with foldhash rather
    /// than std's SipHash (2.5 % of a warm 1,000-gear plan's CPU went to SipHash). The keys
    /// are the user's own paths: no one gains from colliding them.
    shards: Box<[Mutex<HashMap<OsString, Entry, Hasher>>]>,
    hasher: Hasher,
    changed: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_hashed: AtomicU64,
}

impl Default for HashCache {
    fn default() -> Self {
        HashCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(Hasher::default())))
                .collect(),
            hasher: Default::default(),
            changed: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            bytes_hashed: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for HashCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashCache")
            .field("len", &self.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Why one file could not be digested (the caller adds the context).
#[derive(Debug)]
pub(super) enum DigestError {
    Io(io::Error),
    NotAFile,
}

impl HashCache {
    /// An empty cache.
    pub fn new() -> HashCache {
        HashCache::default()
    }

    /// Reads the cache at `path`. A missing, unreadable or corrupt file is an empty cache:
    /// the cache only saves time, it never makes a run fail.
    pub fn load(path: &Path) -> HashCache {
        let cache = HashCache::default();
        let Ok(bytes) = fs::read(path) else {
            return cache;
        };
        let Some(entries) = decode(&bytes) else {
            return cache;
        };
        // Group by shard first: one lock and one allocation per shard.
        let mut by_shard: Vec<Vec<(OsString, Entry)>> = (0..SHARDS).map(|_| Vec::new()).collect();
        for (path, stat, sha256) in entries {
            let entry = Entry {
                stat,
                sha256,
                used: false,
            };
            by_shard[cache.shard_index(&path)].push((path, entry));
        }
        for (shard, entries) in cache.shards.iter().zip(by_shard) {
            let mut map = shard.lock().unwrap();
            map.reserve(entries.len());
            map.extend(entries);
        }
        cache
    }

    /// Writes the cache to `path` (creating its directory) when it changed since it was
    /// loaded: into a temporary file beside it, then renamed over it. Entries not used in
    /// this run whose file no longer exists are dropped.
    pub fn save(&self, path: &Path) -> Result<(), FingerprintError> {
        if !self.changed.load(Ordering::Acquire) {
            return Ok(());
        }
        // Forget files that are gone (only entries unused this run can be: used ones were
        // just stat'ed).
        let unused: Vec<OsString> = self
            .shards
            .iter()
            .flat_map(|shard| {
                let map = shard.lock().unwrap();
                map.iter()
                    .filter(|(_, e)| !e.used)
                    .map(|(p, _)| p.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let gone: Vec<OsString> = unused
            .into_par_iter()
            .filter(|p| fs::symlink_metadata(p).is_err())
            .collect();
        for p in gone {
            self.shards[self.shard_index(&p)].lock().unwrap().remove(&p);
        }
        let bytes = {
            let maps: Vec<_> = self.shards.iter().map(|s| s.lock().unwrap()).collect();
            encode(
                maps.iter()
                    .flat_map(|m| m.iter().map(|(p, e)| (p.as_os_str(), e))),
            )
        };

        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| FingerprintError::CacheWrite { path, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(write_err(dir))?;
        }
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        let written = File::create(&tmp).and_then(|mut f| f.write_all(&bytes));
        if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
            let _ = fs::remove_file(&tmp);
            return Err(write_err(path)(e));
        }
        self.changed.store(false, Ordering::Release);
        Ok(())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }

    /// Whether it has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters since the cache was created or loaded.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_hashed: self.bytes_hashed.load(Ordering::Relaxed),
        }
    }

    fn shard_index(&self, path: &OsStr) -> usize {
        (self.hasher.hash_one(path) as usize) % SHARDS
    }

    fn shard(&self, path: &Path) -> &Mutex<HashMap<OsString, Entry, Hasher>> {
        &self.shards[self.shard_index(path.as_os_str())]
    }

    /// Size and sha256 of the file at `path` (symlinks followed), from the cache when its
    /// stat (`known`, the regular file's stat its caller just read, else read now) is
    /// unchanged, otherwise read and hashed (and recorded unless racy).
    pub(super) fn digest(
        &self,
        path: &Path,
        known: Option<Stat>,
    ) -> Result<(u64, [u8; 32]), DigestError> {
        let stat = match known {
            Some(stat) => stat,
            None => {
                let meta = fs::metadata(path).map_err(DigestError::Io)?;
                if !meta.is_file() {
                    return Err(DigestError::NotAFile);
                }
                Stat::of(&meta)
            }
        };
        {
            let mut shard = self.shard(path).lock().unwrap();
            if let Some(entry) = shard.get_mut(path.as_os_str())
                && entry.stat == stat
            {
                entry.used = true;
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok((stat.size, entry.sha256));
            }
        }

        let hashed_at = ns_since_epoch(SystemTime::now());
        let mut file = File::open(path).map_err(DigestError::Io)?;
        let (size, sha256) = hash_reader(&mut file).map_err(DigestError::Io)?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.bytes_hashed.fetch_add(size, Ordering::Relaxed);
        let after = file.metadata().map(|m| Stat::of(&m)).ok();
        // Record only what is safe to trust later: the file read is the one stat'ed (same
        // inode, size and times after reading as at `stat`, taken before it was opened: it
        // did not change in between), fully read, not racy.
        if after == Some(stat) && size == stat.size && !stat.is_racy(hashed_at) {
            let mut shard = self.shard(path).lock().unwrap();
            shard.insert(
                path.as_os_str().to_owned(),
                Entry {
                    stat,
                    sha256,
                    used: true,
                },
            );
            self.changed.store(true, Ordering::Release);
        }
        Ok((size, sha256))
    }
}

/// Streams `reader` through sha256 with a fixed buffer. Returns (bytes read, digest).
fn hash_reader(reader: &mut impl Read) -> io::Result<(u64, [u8; 32])> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_BUF]);
    }
    BUF.with_borrow_mut(|buf| {
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((total, hasher.finalize().into()))
    })
}

#[cfg(unix)]
fn path_bytes(p: &OsStr) -> Option<&[u8]> {
    use std::os::unix::ffi::OsStrExt;
    Some(p.as_bytes())
}

#[cfg(not(unix))]
fn path_bytes(p: &OsStr) -> Option<&[u8]> {
    p.to_str().map(str::as_bytes)
}

#[cfg(unix)]
fn bytes_path(b: &[u8]) -> Option<OsString> {
    use std::os::unix::ffi::OsStrExt;
    Some(OsStr::from_bytes(b).to_owned())
}

#[cfg(not(unix))]
fn bytes_path(b: &[u8]) -> Option<OsString> {
    std::str::from_utf8(b).ok().map(OsString::from)
}

/// The cache file's bytes (see the module docs).
fn encode<'a>(entries: impl Iterator<Item = (&'a OsStr, &'a Entry)>) -> Vec<u8> {
    let mut entries: Vec<(&[u8], &Entry)> = entries
        .filter_map(|(p, e)| Some((path_bytes(p)?, e)))
        .collect();
    entries.par_sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(16 + entries.len() * (ENTRY_TAIL + 40) + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut prev: &[u8] = &[];
    for (path, e) in &entries {
        let shared = path.iter().zip(prev).take_while(|(a, b)| a == b).count();
        let rest = &path[shared..];
        out.extend_from_slice(&(shared as u32).to_le_bytes());
        out.extend_from_slice(&(rest.len() as u32).to_le_bytes());
        out.extend_from_slice(rest);
        out.extend_from_slice(&e.stat.size.to_le_bytes());
        out.extend_from_slice(&e.stat.mtime_ns.to_le_bytes());
        out.extend_from_slice(&e.stat.ctime_ns.to_le_bytes());
        out.extend_from_slice(&e.stat.inode.to_le_bytes());
        out.extend_from_slice(&e.sha256);
        prev = path;
    }
    let check: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&check);
    out
}

/// The entries of a cache file; `None` when it is damaged in any way.
fn decode(bytes: &[u8]) -> Option<Vec<(OsString, Stat, [u8; 32])>> {
    let (body, check) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != check {
        return None;
    }
    let mut r = Cursor(body);
    if r.take(8)? != MAGIC {
        return None;
    }
    let count = usize::try_from(r.u64()?).ok()?;
    // Every entry takes at least ENTRY_TAIL + 8 bytes: refuse absurd counts up front.
    if count > body.len() / (ENTRY_TAIL + 8) {
        return None;
    }
    let mut entries = Vec::with_capacity(count);
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let shared = r.u32()? as usize;
        let len = r.u32()? as usize;
        if shared > prev.len() {
            return None;
        }
        prev.truncate(shared);
        prev.extend_from_slice(r.take(len)?);
        let stat = Stat {
            size: r.u64()?,
            mtime_ns: r.u64()? as i64,
            ctime_ns: r.u64()? as i64,
            inode: r.u64()?,
        };
        let sha256: [u8; 32] = r.take(32)?.try_into().ok()?;
        entries.push((bytes_path(&prev)?, stat, sha256));
    }
    r.0.is_empty().then_some(entries)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.0.split_at_checked(n)?;
        self.0 = tail;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Sets a file's mtime well in the past, so it is not racy.
    fn age(path: &Path, secs_ago: u64) {
        let t = SystemTime::now() - Duration::from_secs(secs_ago);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    /// Waits until the file's ctime is out of the racy window (ctime cannot be set).
    fn wait_out_racy_window() {
        std::thread::sleep(RACY_WINDOW + Duration::from_millis(100));
    }

    #[test]
    fn encode_decode_roundtrip() {
        let e = |size, fill| Entry {
            stat: Stat {
                size,
                mtime_ns: -5,
                ctime_ns: 1_700_000_000_123_456_789,
                inode: 42,
            },
            sha256: [fill; 32],
            used: true,
        };
        let entries = [
            (OsString::from("/a/b/c.txt"), e(1, 1)),
            (OsString::from("/a/b/cd.txt"), e(2, 2)),
            (OsString::from("/a/x"), e(3, 3)),
            (OsString::from("/"), e(4, 4)),
        ];
        let bytes = encode(entries.iter().map(|(p, e)| (p.as_os_str(), e)));
        let mut decoded = decode(&bytes).unwrap();
        decoded.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expected: Vec<_> = entries
            .iter()
            .map(|(p, e)| (p.clone(), e.stat, e.sha256))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(decoded, expected);

        // Any damage makes it unreadable.
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        for i in [0, 9, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(decode(&bad).is_none(), "flip at {i}");
        }
        assert!(decode(b"").is_none());
        assert!(decode(&encode(std::iter::empty())).unwrap().is_empty());
    }

    #[test]
    fn missing_or_corrupt_file_is_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        assert!(HashCache::load(&dir.path().join("nope")).is_empty());
        let junk = dir.path().join("junk");
        fs::write(&junk, b"GEARHC\0\x01 not really").unwrap();
        assert!(HashCache::load(&junk).is_empty());
        assert!(HashCache::load(dir.path()).is_empty()); // a directory
    }

    /// Hits, misses and a same-size change, the stat read by the cache or given by its caller
    /// (the context walk's, read just before): both decide alike.
    #[test]
    fn hit_miss_and_same_size_change() {
        for caller_stats in [false, true] {
            let stat_of = |f: &Path| caller_stats.then(|| Stat::of(&fs::metadata(f).unwrap()));
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("f.txt");
            fs::write(&file, b"hello").unwrap();
            age(&file, 3600);
            wait_out_racy_window();

            let cache = HashCache::new();
            let (size, d1) = cache.digest(&file, stat_of(&file)).unwrap();
            assert_eq!(size, 5);
            assert_eq!(d1, <[u8; 32]>::from(Sha256::digest(b"hello")));
            assert_eq!(
                cache.stats(),
                CacheStats {
                    hits: 0,
                    misses: 1,
                    bytes_hashed: 5
                }
            );
            assert_eq!(cache.digest(&file, stat_of(&file)).unwrap().1, d1);
            assert_eq!(cache.stats().hits, 1);

            // Same size, different content and mtime: re-hashed.
            fs::write(&file, b"jello").unwrap();
            age(&file, 1800);
            let (_, d2) = cache.digest(&file, stat_of(&file)).unwrap();
            assert_eq!(d2, <[u8; 32]>::from(Sha256::digest(b"jello")));
            assert_eq!(cache.stats().misses, 2);
        }
    }

    #[test]
    fn mtime_restored_is_still_detected_by_ctime() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.txt");
        fs::write(&file, b"hello").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        wait_out_racy_window();
        let cache = HashCache::new();
        cache.digest(&file, None).unwrap();
        assert_eq!(cache.len(), 1);

        // Rewrite with the same size and put the old mtime back: only ctime tells.
        fs::write(&file, b"jello").unwrap();
        File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let (_, d) = cache.digest(&file, None).unwrap();
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(b"jello")));
        assert_eq!(cache.stats().hits, 0);
    }

    #[test]
    fn racy_files_are_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fresh.txt");
        fs::write(&file, b"just written").unwrap();
        let cache = HashCache::new();
        cache.digest(&file, None).unwrap();
        cache.digest(&file, None).unwrap();
        assert_eq!(
            cache.stats().misses,
            2,
            "a file modified just now must be re-read"
        );
        assert!(cache.is_empty());
        let saved = dir.path().join("cache");
        cache.save(&saved).unwrap();
        assert!(!saved.exists(), "nothing changed, nothing written");
    }

    #[test]
    fn save_load_and_hit_without_reading() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let gone = dir.path().join("gone");
        let c = dir.path().join("c");
        fs::write(&a, b"aaa").unwrap();
        fs::write(&gone, b"bbb").unwrap();
        fs::write(&c, b"c").unwrap();
        for f in [&a, &gone, &c] {
            age(f, 3600);
        }
        wait_out_racy_window();
        let cache_path = dir.path().join("target/gear/hash-cache");

        let cache = HashCache::new();
        cache.digest(&a, None).unwrap();
        cache.digest(&gone, None).unwrap();
        cache.save(&cache_path).unwrap();
        let written = fs::metadata(&cache_path).unwrap().modified().unwrap();

        let loaded = HashCache::load(&cache_path);
        assert_eq!(loaded.len(), 2);
        let (size, d) = loaded.digest(&a, None).unwrap();
        assert_eq!((size, d), (3, <[u8; 32]>::from(Sha256::digest(b"aaa"))));
        assert_eq!(
            loaded.stats(),
            CacheStats {
                hits: 1,
                misses: 0,
                bytes_hashed: 0
            }
        );
        // Unchanged cache: save does not rewrite the file.
        loaded.save(&cache_path).unwrap();
        assert_eq!(
            fs::metadata(&cache_path).unwrap().modified().unwrap(),
            written
        );

        // A change: saved again, and the unused entry of a deleted file is dropped.
        fs::remove_file(&gone).unwrap();
        loaded.digest(&c, None).unwrap();
        loaded.save(&cache_path).unwrap();
        let reloaded = HashCache::load(&cache_path);
        assert_eq!(reloaded.len(), 2);
        assert!(
            !dir.path()
                .join("target/gear")
                .read_dir()
                .unwrap()
                .any(|e| { e.unwrap().file_name().to_string_lossy().contains(".tmp") })
        );
    }

    #[test]
    fn errors() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HashCache::new();
        assert!(matches!(
            cache.digest(&dir.path().join("missing"), None),
            Err(DigestError::Io(_))
        ));
        assert!(matches!(
            cache.digest(dir.path(), None),
            Err(DigestError::NotAFile)
        ));
    }

    #[test]
    fn hashes_large_files_in_chunks() {
        let data: Vec<u8> = (0..(READ_BUF * 3 + 17)).map(|i| (i % 251) as u8).collect();
        let (n, d) = hash_reader(&mut &data[..]).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(&data)));
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// Manual measurement of the cache format on 100k synthetic entries:
    /// `cargo test -p gear-spec --release --lib fingerprint::cache::bench -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement; run by hand with --release"]
    fn load_save_100k() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HashCache::new();
        for i in 0..100_000u64 {
            let path = OsString::from(format!(
                "/home/user/src/neuro-gears/gears/recon-all/data/d{:03}/file-{:04}.txt",
                i / 1000,
                i % 1000
            ));
            let stat = Stat {
                size: i,
                mtime_ns: 1_700_000_000_000_000_000 + i as i64,
                ctime_ns: 1_700_000_000_000_000_000,
                inode: 1_000_000 + i,
            };
            cache.shard(Path::new(&path)).lock().unwrap().insert(
                path,
                Entry {
                    stat,
                    sha256: [i as u8; 32],
                    used: true,
                },
            );
        }
        cache.changed.store(true, Ordering::Release);
        let path = dir.path().join("hash-cache");
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let mut best = [f64::MAX; 5];
        let mut size = 0;
        for _ in 0..15 {
            cache.changed.store(true, Ordering::Release);
            let t = Instant::now();
            cache.save(&path).unwrap();
            let save = ms(t);
            let t = Instant::now();
            let bytes = fs::read(&path).unwrap();
            let read = ms(t);
            size = bytes.len();
            let t = Instant::now();
            std::hint::black_box(Sha256::digest(&bytes[..bytes.len() - 32]));
            let check = ms(t);
            let t = Instant::now();
            let entries = decode(&bytes).unwrap();
            let decode_all = ms(t);
            drop(entries);
            let t = Instant::now();
            let loaded = HashCache::load(&path);
            let load = ms(t);
            assert_eq!(loaded.len(), 100_000);
            for (b, v) in best.iter_mut().zip([save, read, check, decode_all, load]) {
                *b = b.min(v);
            }
        }
        let [save, read, check, decode_all, load] = best;
        println!(
            "best of 15: save {save:.1} ms; file {size} bytes; load {load:.1} ms (read {read:.1}, checksum {check:.1}, decode incl. checksum {decode_all:.1}, rest is building the maps)"
        );
    }
}
