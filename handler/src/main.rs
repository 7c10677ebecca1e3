//! `holdfast-handler` binary: parses the command line and runs the handler library.
//!
//! Rust allocations go to jemalloc, with its background purging threads on (see
//! [`allocator`]). On glibc the process also hands memory freed by C code (libzmq's message
//! buffers) back to the kernel every [`trim::INTERVAL`]; see [`trim`] for why.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    allocator::start_purging();
    let args = holdfast_handler::Args::parse();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim::start();
    holdfast_handler::run(args)
}

/// The global allocator's set-up.
///
/// Why jemalloc: a request through the handler allocates and frees dozens of small objects
/// (request and response heads, header vectors, session state, encoded packets), and glibc's
/// malloc spent a fifth of the handler's time on them (`_int_malloc`, `_int_free`,
/// `malloc_consolidate`). With jemalloc in both proxy processes, eight alternating A/B pairs
/// gave a median +16% plain-proxy requests/s (the handler's CPU per request 17% lower), +9%
/// hold setups/s and +9% channel messages/s, with 2.5 instead of 2.85 KiB per held
/// connection (docs/performance-log.md, "Performance work (session 8)").
///
/// Why background threads: jemalloc returns freed pages to the kernel after a decay time
/// (10 s), but without its background threads only from within later allocations, and a proxy
/// whose clients have left makes few: a churn soak kept 57 MiB instead of glibc's 42 once the
/// clients were gone. With them it kept 47.
mod allocator {
    /// Turns on jemalloc's background purging threads. Without them the handler works the
    /// same, only keeping more memory when idle, so a failure is reported and otherwise
    /// ignored.
    /// One purging thread is enough for a process with one busy thread (jemalloc would start
    /// up to four here, each with its own stack).
    pub fn start_purging() {
        let started = tikv_jemalloc_ctl::max_background_threads::write(1)
            .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
        if let Err(err) = started {
            eprintln!("holdfast-handler: cannot start jemalloc's purging thread: {err}");
        }
    }
}

/// Periodic `malloc_trim(0)` for what glibc's malloc still serves: libzmq's allocations (every
/// packet to and from the connmgr is a ZeroMQ message buffer).
///
/// Why (measured when glibc served every allocation of the handler): a burst of work (a
/// publish answering thousands of long-polls, which all re-poll and each make a backend
/// request at once) allocates tens of MiB that are all freed a moment later, but glibc's
/// malloc keeps the pages of those free chunks mapped: it only gives back the top of the main
/// heap, and only once that top is above `M_TRIM_THRESHOLD`. A churn soak
/// of 2,000 long-polls left the handler at 73 MiB RSS with 3 to 10 MiB of the heap in use;
/// `malloc_trim(0)` (which also `madvise`s away free pages in the middle of every arena)
/// brought it to 19 to 32 MiB. `MALLOC_ARENA_MAX=2` did not help (75 MiB): the retained
/// memory is the burst's free chunks, not the per-thread arenas.
///
/// Why a thread and an interval: trimming is cheap (a walk of the free lists and one
/// `madvise` per free run of pages, with each arena's lock taken in turn), and pages it gives
/// back that are needed again cost a page fault each; every 10 s bounds both. The call lives
/// here, in the binary, because the library forbids unsafe code: this is the handler's only
/// unsafe block.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod trim {
    #![allow(unsafe_code)]

    use std::time::Duration;

    /// Time between two trims.
    pub const INTERVAL: Duration = Duration::from_secs(10);

    /// Starts the trimming thread. Without it the handler works the same, only keeping its
    /// high-water memory, so a failure to spawn is reported and otherwise ignored.
    pub fn start() {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                std::thread::sleep(INTERVAL);
                // SAFETY: `malloc_trim` has no precondition: it takes each arena's lock
                // itself and only releases pages that lie wholly inside free chunks.
                unsafe {
                    libc::malloc_trim(0);
                }
            });
        if let Err(err) = spawned {
            eprintln!("holdfast-handler: cannot start the malloc-trim thread: {err}");
        }
    }
}
