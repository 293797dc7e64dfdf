//! The few libc calls xtask needs (effective uid, signals), through the `libc` crate.

use std::sync::atomic::{AtomicBool, Ordering};

pub use libc::{SIGKILL, SIGTERM};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Turns SIGINT, SIGTERM and SIGHUP into a flag, so that xtask outlives a Ctrl-C long enough to
/// stop the engine it started. Children in the terminal's process group get the Ctrl-C themselves.
pub fn trap_signals() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, handler as libc::sighandler_t) };
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Sends `sig` to `pid` (a negative `pid` names a process group); true if it was delivered.
pub fn send_signal(pid: i32, sig: i32) -> bool {
    // SAFETY: kill takes plain integers; a wrong pid is reported through its return value.
    unsafe { libc::kill(pid, sig) == 0 }
}
