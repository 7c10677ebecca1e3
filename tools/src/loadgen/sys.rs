//! Raising the open-file limit, the one system call the load generator needs that std does not
//! offer. This module and `runner::sys` are the crate's only unsafe code.
#![allow(unsafe_code)]

/// Raises `RLIMIT_NOFILE`'s soft limit to its hard limit and returns the new soft limit.
pub fn raise_nofile() -> Result<libc::rlim_t, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the valid, exclusively borrowed `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit(2) only reads the valid `raised`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
        }
        lim = raised;
    }
    Ok(lim.rlim_cur)
}
