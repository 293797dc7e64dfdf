//! Build-context archives, deterministic: the same entries always give the same tar bytes.
//!
//! Entries are sorted by path (component by component), every parent directory gets its own
//! entry right before its first child, and all metadata that could vary between machines is
//! normalized: mtime [`TAR_MTIME`], uid/gid 0, empty user and group names, mode 0644 for
//! files, 0755 for executables and directories.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// Modification time of every archive entry: 2000-01-01T00:00:00Z.
///
/// Not 0: files copied into an image keep this mtime, and tools that zip them (Python wheels)
/// reject timestamps before 1980.
pub const TAR_MTIME: u64 = 946_684_800;

const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;
const DIR_MODE: u32 = 0o755;

/// One file of a build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntry {
    /// Relative path inside the archive, `/`-separated, e.g. `src/main.py`.
    pub path: String,
    /// Where the content comes from.
    pub source: TarSource,
    /// File mode in the archive: [`FILE_MODE`], [`EXEC_MODE`] or a `chmod` of a step.
    pub mode: u32,
}

/// The content of a [`TarEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarSource {
    /// Read from this file when the archive is written (symlinks are followed).
    File(PathBuf),
    /// Read from this file, which must still have this size and sha256: the bytes archived
    /// are hashed as they are read, so what the engine gets is what was fingerprinted.
    Checked {
        /// The file.
        path: PathBuf,
        /// Its planned size in bytes.
        size: u64,
        /// Its planned sha256.
        sha256: [u8; 32],
    },
    /// These bytes.
    Bytes(Vec<u8>),
}

impl TarEntry {
    /// A regular, non-executable file read from `source` when the archive is written.
    pub fn file(path: impl Into<String>, source: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            source: TarSource::File(source.into()),
            mode: FILE_MODE,
        }
    }

    /// A regular, non-executable file with these contents.
    pub fn bytes(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            source: TarSource::Bytes(contents.into()),
            mode: FILE_MODE,
        }
    }

    /// The same file entry, required to have `size` bytes hashing to `sha256` when it is
    /// archived; otherwise writing fails with [`ContextError::Changed`]. No effect on bytes.
    #[must_use]
    pub fn expecting(mut self, size: u64, sha256: [u8; 32]) -> Self {
        if let TarSource::File(path) = self.source {
            self.source = TarSource::Checked { path, size, sha256 };
        }
        self
    }

    /// The same entry with mode 0755.
    #[must_use]
    pub fn executable(self) -> Self {
        self.mode(EXEC_MODE)
    }

    /// The same entry with this mode.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// Why a build context could not be archived.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ContextError {
    /// The entry's path cannot go into a build context.
    #[error("build context entry `{entry}`: {reason}")]
    #[diagnostic(help("build context paths are relative, `/`-separated and unique"))]
    InvalidEntry { entry: String, reason: String },
    /// The entry's source file could not be read.
    #[error("could not read `{}` for build context entry `{entry}`", path.display())]
    Read {
        entry: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file's content is no longer what was planned (and fingerprinted): it changed after
    /// the plan was made.
    #[error(
        "`{}` (build context entry `{entry}`) changed after the build was planned: {what}",
        path.display()
    )]
    #[diagnostic(help(
        "nothing was tagged for this layer; run the build again once the file stays put"
    ))]
    Changed {
        entry: String,
        path: PathBuf,
        /// What differs, e.g. `size 12 bytes, planned 10`.
        what: String,
    },
    /// The archive could not be written (for a build: the engine stopped reading it).
    #[error("could not write build context entry `{entry}`")]
    Write {
        entry: String,
        #[source]
        source: io::Error,
    },
}

impl ContextError {
    /// True when writing failed because the reader went away (the engine closed the request).
    pub(crate) fn is_broken_pipe(&self) -> bool {
        matches!(self, ContextError::Write { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }

    fn into_io(self) -> io::Error {
        let kind = match &self {
            ContextError::InvalidEntry { .. } => io::ErrorKind::InvalidInput,
            ContextError::Changed { .. } => io::ErrorKind::InvalidData,
            ContextError::Read { source, .. } | ContextError::Write { source, .. } => source.kind(),
        };
        io::Error::new(kind, self)
    }
}

/// Writes `entries` as a deterministic tar archive to `w`.
///
/// The same entries (same paths, contents and executable flags) always give the same bytes,
/// whatever the order of `entries` and the metadata of the source files. Errors wrap a
/// [`ContextError`] naming the entry (get it back with `io::Error::get_ref`/`downcast`).
pub fn write_tar(entries: &[TarEntry], w: impl Write) -> io::Result<()> {
    write_context(entries, w).map_err(ContextError::into_io)
}

/// [`write_tar`] with a structured error: the code the streamed build uses.
pub(crate) fn write_context(entries: &[TarEntry], w: impl Write) -> Result<(), ContextError> {
    let sorted = sort_entries(entries)?;
    let mut builder = tar::Builder::new(Unfinished {
        inner: w,
        failed: false,
    });
    if let Err(e) = append_all(&mut builder, &sorted) {
        // `tar::Builder` ends the archive when dropped: a failed archive must not end, or
        // its truncated contents would read as a complete context.
        builder.get_mut().failed = true;
        return Err(e);
    }
    let mut w = builder.into_inner().map_err(|source| ContextError::Write {
        entry: "(end of archive)".into(),
        source,
    })?;
    w.inner.flush().map_err(|source| ContextError::Write {
        entry: "(end of archive)".into(),
        source,
    })
}

fn append_all<W: Write>(
    builder: &mut tar::Builder<W>,
    sorted: &[(Vec<&str>, &TarEntry)],
) -> Result<(), ContextError> {
    let mut emitted_dirs: Vec<String> = Vec::new();
    for (components, entry) in sorted {
        // Parent directories, outermost first, each once. Sorting keeps a directory's
        // descendants contiguous, so only the current chain of parents needs remembering.
        let mut parent = String::new();
        for (depth, component) in components[..components.len() - 1].iter().enumerate() {
            if depth > 0 {
                parent.push('/');
            }
            parent.push_str(component);
            if emitted_dirs.get(depth) != Some(&parent) {
                emitted_dirs.truncate(depth);
                append_dir(builder, &parent)?;
                emitted_dirs.push(parent.clone());
            }
        }
        emitted_dirs.truncate(components.len() - 1);
        append_file(builder, &components.join("/"), entry)?;
    }
    Ok(())
}

/// The archive's writer, which refuses every write once the archive has failed.
struct Unfinished<W> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for Unfinished<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the build context archive failed"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Validates the entries and sorts them by path components.
fn sort_entries(entries: &[TarEntry]) -> Result<Vec<(Vec<&str>, &TarEntry)>, ContextError> {
    let mut by_path: BTreeMap<Vec<&str>, &TarEntry> = BTreeMap::new();
    for entry in entries {
        let components = split_path(&entry.path)?;
        if by_path.insert(components, entry).is_some() {
            return Err(invalid(&entry.path, "the path appears twice"));
        }
    }
    // A file cannot also be a directory: sorted, a file that is a prefix of another path comes
    // right before some descendant of it.
    let sorted: Vec<_> = by_path.into_iter().collect();
    for pair in sorted.windows(2) {
        let (a, b) = (&pair[0].0, &pair[1].0);
        if b.len() > a.len() && b[..a.len()] == a[..] {
            return Err(invalid(
                &pair[1].1.path,
                &format!("its parent `{}` is a file in the same context", a.join("/")),
            ));
        }
    }
    Ok(sorted)
}

fn split_path(path: &str) -> Result<Vec<&str>, ContextError> {
    if path.starts_with('/') {
        return Err(invalid(path, "the path is absolute"));
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(invalid(path, "the path contains `\\` or NUL"));
    }
    let components: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if components.is_empty() {
        return Err(invalid(path, "the path is empty"));
    }
    if components.contains(&"..") {
        return Err(invalid(path, "the path contains `..`"));
    }
    Ok(components)
}

fn invalid(entry: &str, reason: &str) -> ContextError {
    ContextError::InvalidEntry {
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

fn header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(TAR_MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &str) -> Result<(), ContextError> {
    let mut header = header(tar::EntryType::Directory, DIR_MODE, 0);
    builder
        .append_data(&mut header, format!("{path}/"), io::empty())
        .map_err(|source| ContextError::Write {
            entry: format!("{path}/"),
            source,
        })
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    entry: &TarEntry,
) -> Result<(), ContextError> {
    let mode = entry.mode;
    let write_err = |source| ContextError::Write {
        entry: path.to_owned(),
        source,
    };
    match &entry.source {
        TarSource::Bytes(bytes) => {
            let mut header = header(tar::EntryType::Regular, mode, bytes.len() as u64);
            builder
                .append_data(&mut header, path, bytes.as_slice())
                .map_err(write_err)
        }
        TarSource::File(source_path) => append_source(builder, path, mode, source_path, None),
        TarSource::Checked {
            path: source_path,
            size,
            sha256,
        } => append_source(builder, path, mode, source_path, Some((*size, sha256))),
    }
}

/// Appends a file read from disk; with `expect`, fails unless it has that size and sha256.
fn append_source<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    source_path: &std::path::Path,
    expect: Option<(u64, &[u8; 32])>,
) -> Result<(), ContextError> {
    let read_err = |source| ContextError::Read {
        entry: path.to_owned(),
        path: source_path.to_owned(),
        source,
    };
    let changed = |what: String| ContextError::Changed {
        entry: path.to_owned(),
        path: source_path.to_owned(),
        what,
    };
    let file = File::open(source_path).map_err(read_err)?;
    let metadata = file.metadata().map_err(read_err)?;
    if !metadata.is_file() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let size = metadata.len();
    if let Some((planned, _)) = expect
        && planned != size
    {
        return Err(changed(format!("{size} bytes now, {planned} planned")));
    }
    let mut header = header(tar::EntryType::Regular, mode, size);
    let mut reader = ExactReader {
        inner: file.take(size),
        remaining: size,
        error: None,
        hasher: Sha256::new(),
    };
    let written = builder.append_data(&mut header, path, &mut reader);
    // A read error surfaces through the tar writer as its own io::Error: report the
    // file, not the archive.
    if let Some(source) = reader.error.take() {
        return Err(read_err(source));
    }
    written.map_err(|source| ContextError::Write {
        entry: path.to_owned(),
        source,
    })?;
    // Checked before the archive ends: a mismatch breaks the request off, so the engine
    // never gets a complete context to build.
    if let Some((_, planned)) = expect
        && reader.hasher.finalize().as_slice() != planned.as_slice()
    {
        return Err(changed(
            "its content differs from the planned digest".into(),
        ));
    }
    Ok(())
}

/// Reads exactly `remaining` bytes, failing if the file shrank while being archived (a tar
/// entry's size is fixed in its header before the data is copied).
struct ExactReader<R> {
    inner: R,
    remaining: u64,
    error: Option<io::Error>,
    /// Every byte handed out.
    hasher: Sha256,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = match self.inner.read(buf) {
            Ok(0) if self.remaining > 0 && !buf.is_empty() => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the file shrank while being archived ({} bytes missing)",
                    self.remaining
                ),
            )),
            other => other,
        };
        match result {
            Ok(n) => {
                self.remaining -= n as u64;
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[TarEntry]) -> Vec<u8> {
        let mut out = Vec::new();
        write_tar(entries, &mut out).unwrap();
        out
    }

    /// (path, type, mode, uid, gid, mtime, username, size) of an entry.
    type Row = (String, char, u32, u64, u64, u64, String, u64);

    fn listing(bytes: &[u8]) -> Vec<Row> {
        let mut archive = tar::Archive::new(bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                let kind = if h.entry_type().is_dir() { 'd' } else { 'f' };
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    kind,
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                    h.username().unwrap().unwrap_or("").to_owned(),
                    h.size().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn same_entries_same_bytes_whatever_the_order_and_file_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run.sh");
        std::fs::write(&run, "#!/bin/sh\necho hi\n").unwrap();
        let entries = vec![
            TarEntry::bytes(".cargo-gear/Dockerfile", "FROM scratch\n"),
            TarEntry::file("bin/run.sh", &run).executable(),
            TarEntry::bytes("a-b", "x"),
            TarEntry::bytes("bin/lib/x.py", "print(1)\n"),
        ];
        let first = archive(&entries);

        // Touch the file (new mtime, different permissions) and reverse the order.
        std::fs::write(&run, "#!/bin/sh\necho hi\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(first, archive(&reversed));

        let listing = listing(&first);
        let paths: Vec<_> = listing.iter().map(|e| (e.0.as_str(), e.1, e.2)).collect();
        assert_eq!(
            paths,
            [
                (".cargo-gear/", 'd', 0o755),
                (".cargo-gear/Dockerfile", 'f', 0o644),
                ("a-b", 'f', 0o644),
                ("bin/", 'd', 0o755),
                ("bin/lib/", 'd', 0o755),
                ("bin/lib/x.py", 'f', 0o644),
                ("bin/run.sh", 'f', 0o755),
            ]
        );
        for (path, _, _, uid, gid, mtime, user, _) in &listing {
            assert_eq!(
                (*uid, *gid, *mtime, user.as_str()),
                (0, 0, TAR_MTIME, ""),
                "{path}"
            );
        }
    }

    #[test]
    fn contents_round_trip_and_long_paths_work() {
        let long = format!("{}/file.txt", "d".repeat(150));
        let bytes = archive(&[
            TarEntry::bytes(long.clone(), "long"),
            TarEntry::bytes("x", vec![7u8; 1000]),
        ]);
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            seen.push((path, data));
        }
        assert_eq!(seen[0].0, format!("{}/", "d".repeat(150)));
        assert_eq!(seen[1], (long, b"long".to_vec()));
        assert_eq!(seen[2], ("x".to_owned(), vec![7u8; 1000]));
    }

    #[test]
    fn paths_are_normalized_and_bad_ones_rejected() {
        let same = archive(&[TarEntry::bytes("./a//b", "1")]);
        assert_eq!(same, archive(&[TarEntry::bytes("a/b", "1")]));

        for (entries, needle) in [
            (vec![TarEntry::bytes("/etc/passwd", "")], "absolute"),
            (vec![TarEntry::bytes("a/../../b", "")], "`..`"),
            (vec![TarEntry::bytes("", "")], "empty"),
            (
                vec![TarEntry::bytes("a", "1"), TarEntry::bytes("./a", "2")],
                "twice",
            ),
            (
                vec![TarEntry::bytes("a", "1"), TarEntry::bytes("a/b", "2")],
                "parent `a` is a file",
            ),
        ] {
            let err = write_tar(&entries, io::sink()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(
                err.to_string().contains(needle),
                "{err} should mention {needle}"
            );
        }
    }

    #[test]
    fn a_missing_source_file_names_the_entry_and_the_file() {
        let err = write_context(
            &[TarEntry::file(
                "data/x.bin",
                "/nonexistent/cargo-gear/x.bin",
            )],
            io::sink(),
        )
        .unwrap_err();
        assert!(matches!(err, ContextError::Read { .. }));
        assert_eq!(
            err.to_string(),
            "could not read `/nonexistent/cargo-gear/x.bin` for build context entry `data/x.bin`"
        );
    }

    #[test]
    fn a_checked_file_must_still_have_its_planned_size_and_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("main.py");
        std::fs::write(&path, "print(1)\n").unwrap();
        let planned: [u8; 32] = Sha256::digest(b"print(1)\n").into();
        let entry = |size, sha256| TarEntry::file("copy/main.py", &path).expecting(size, sha256);

        // Unchanged: the same bytes as an unchecked entry.
        assert_eq!(
            archive(&[entry(9, planned)]),
            archive(&[TarEntry::file("copy/main.py", &path)])
        );
        // Same size, other bytes: detected after streaming, before the archive ends.
        std::fs::write(&path, "print(2)\n").unwrap();
        let mut out = Vec::new();
        let err = write_context(&[entry(9, planned)], &mut out).unwrap_err();
        assert!(matches!(err, ContextError::Changed { .. }), "{err}");
        assert!(
            err.to_string().contains("main.py") && err.to_string().contains("changed after"),
            "{err}"
        );
        let mut end = vec![0u8; 1024];
        end.copy_from_slice(&out[out.len().saturating_sub(1024)..]);
        assert!(
            end.iter().any(|b| *b != 0),
            "no end-of-archive marker after a changed file"
        );
        // Another size: refused before its header is written.
        std::fs::write(&path, "print(10)\n").unwrap();
        let err = write_context(&[entry(9, planned)], io::sink()).unwrap_err();
        assert!(err.to_string().contains("10 bytes now, 9 planned"), "{err}");
    }

    #[test]
    fn a_file_that_shrinks_is_an_error_not_a_corrupt_archive() {
        let mut reader = ExactReader {
            inner: &b"abc"[..],
            remaining: 5,
            error: None,
            hasher: Sha256::new(),
        };
        let mut out = Vec::new();
        let err = io::copy(&mut reader, &mut out).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(reader.error.is_some());
    }
}
