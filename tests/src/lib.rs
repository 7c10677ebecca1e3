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

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
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
