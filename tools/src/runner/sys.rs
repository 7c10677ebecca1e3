//! The two system calls the runner needs that std does not offer: sending a signal to a child
//! and asking the kernel to signal a child when the runner dies. This is the crate's only unsafe
//! code.
#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sends `signal` to process `pid`. Errors (the process already exited) are ignored: the caller
/// learns about exits from `wait`.
pub fn kill(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Makes the kernel send SIGTERM to the child if the runner dies (even by SIGKILL), so a child is
/// never left orphaned holding ports.
pub fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
