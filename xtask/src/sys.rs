//! The few libc calls xtask needs (effective uid, signals), declared by hand to stay std-only.

use std::sync::atomic::{AtomicBool, Ordering};

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;
pub const SIGTERM: i32 = 15;

unsafe extern "C" {
    safe fn geteuid() -> u32;
    safe fn kill(pid: i32, sig: i32) -> i32;
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: i32) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turns SIGINT, SIGTERM and SIGHUP into a flag, so that xtask outlives a Ctrl-C long enough to
/// stop the engine it started. Children in the terminal's process group get the Ctrl-C themselves.
pub fn trap_signals() {
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { signal(sig, on_signal) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn is_root() -> bool {
    geteuid() == 0
}

/// Sends `sig` to `pid` (a negative `pid` names a process group); true if it was delivered.
pub fn send_signal(pid: i32, sig: i32) -> bool {
    kill(pid, sig) == 0
}
