//! The two system calls the load generator needs that std and tokio do not offer: raising the
//! open-file limit and `IP_BIND_ADDRESS_NO_PORT`. This module and `runner::sys` are the crate's
//! only unsafe code.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit and returns the new soft limit.
pub fn raise_nofile() -> Result<libc::rlim_t, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", io::Error::last_os_error()));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit(2) only reads the valid `raised`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(format!("setrlimit: {}", io::Error::last_os_error()));
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on a socket that is about to be bound to a source address
/// with port 0 and then connected.
///
/// Without it `bind` must pick the port before it knows the destination, so it takes only a
/// port that no socket on that address holds, TIME_WAIT ones included: after a run of 16,000
/// connections each later `bind` scanned tens of thousands of taken ports in the kernel, and
/// the client's CPU (shared with the proxy under test on a 2-core machine) cut the measured
/// setup rate of the next run several times over. With it the port is chosen by `connect`,
/// which only needs the whole 4-tuple to be free (and may reuse a loopback TIME_WAIT one).
pub fn bind_address_no_port(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: setsockopt(2) reads `size_of::<c_int>()` bytes from the valid `on`; the descriptor
    // is borrowed from a live socket.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
