//! Shared helpers for the end-to-end tests: start the real `holdfast` runner (which starts the
//! real `holdfast-handler` and `holdfast-connmgr`) on loopback with a generated config, run real
//! backends on loopback, and talk raw HTTP to both so every byte on the wire can be asserted.
//!
//! The binaries must have been built in the same profile as the tests (`cargo build --release`
//! before `cargo test --release`, which is what `tools/test.sh` does); `HOLDFAST_BIN_DIR`
//! overrides where they are looked for.

pub mod backend;
pub mod client;
pub mod holdfast;

pub use backend::{Backend, BackendRequest, BackendResponse};
pub use client::{Client, Response};
pub use holdfast::{Holdfast, HoldfastBuilder};

/// Lowest port [`free_port`] hands out.
const PORT_LOW: u32 = 20_000;

/// Number of ports [`free_port`] cycles through: 20000-28999, below the kernel's ephemeral range
/// (32768-60999 by default) and the benchmark scripts' ports (29000 and up).
const PORT_COUNT: u32 = 9_000;

/// A TCP port on 127.0.0.1 that was free a moment ago and that no other test of this process
/// has been given.
///
/// Why not the kernel's port 0: the tests run in parallel threads, and a port handed to a proxy
/// (which binds it later, in its own process) was free again until then, so a test backend
/// binding port 0 could be given the same one; the proxy then failed to listen and its test
/// talked to the other test's backend (seen with 11 test threads: a response from another
/// test's route). Ports below the ephemeral range are never chosen for port 0 or as a source
/// port, and the counter never repeats one within a run. Same scheme as the Python suite's
/// `free_port` (tests/python/conftest.py).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Different processes start at different places in the range.
    let start = std::process::id().wrapping_mul(7919) % PORT_COUNT;
    for _ in 0..PORT_COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (PORT_LOW + (start + n) % PORT_COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port left in {PORT_LOW}..{}", PORT_LOW + PORT_COUNT);
}

/// A fresh, empty directory for one test's config, rundir and logs.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("hf-{}-{}-{n}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    check()
}
