//! What a file's stat says about its content: a file whose size, modification and change
//! times and inode are unchanged is taken as unchanged, as git does, by the hash cache and by
//! cargo-gear's discovery cache. Like git's "racy git" rule, a stat recorded within
//! [`RACY_WINDOW`] of the file's last change is not trusted later: the file could change
//! again within the same timestamp tick without its stat showing it.

use std::fs::Metadata;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A stat recorded this close after the file's last change is not trusted later.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The parts of a file's stat that change when its content does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Nanoseconds since the Unix epoch (0 where unknown).
    pub ctime_ns: i64,
    /// 0 where unknown.
    pub inode: u64,
}

impl FileStat {
    /// The stat of `meta`.
    pub fn of(meta: &Metadata) -> FileStat {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            FileStat {
                size: meta.size(),
                mtime_ns: meta
                    .mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(meta.mtime_nsec()),
                ctime_ns: meta
                    .ctime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(meta.ctime_nsec()),
                inode: meta.ino(),
            }
        }
        #[cfg(not(unix))]
        {
            FileStat {
                size: meta.len(),
                mtime_ns: meta.modified().map(ns_since_epoch).unwrap_or(i64::MAX),
                ctime_ns: 0,
                inode: 0,
            }
        }
    }

    /// Whether the file changed too recently before `recorded_at_ns` (when this stat was
    /// recorded) to trust this stat later.
    pub fn is_racy(&self, recorded_at_ns: i64) -> bool {
        let limit = recorded_at_ns.saturating_sub(RACY_WINDOW.as_nanos() as i64);
        self.mtime_ns >= limit || self.ctime_ns >= limit
    }
}

/// `t` in nanoseconds since the Unix epoch (negative before it).
pub fn ns_since_epoch(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}
