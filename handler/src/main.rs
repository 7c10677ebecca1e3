//! `holdfast-handler` binary: parses the command line and runs the handler library.
//!
//! On glibc it also hands freed heap memory back to the kernel every [`trim::INTERVAL`]; see
//! [`trim`] for why.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = holdfast_handler::Args::parse();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim::start();
    holdfast_handler::run(args)
}

/// Periodic `malloc_trim(0)`: the handler's memory returns to near its starting level once
/// the clients leave.
///
/// Why: a burst of work (a publish answering thousands of long-polls, which all re-poll and
/// each make a backend request at once) allocates tens of MiB that are all freed a moment
/// later, but glibc's malloc keeps the pages of those free chunks mapped: it only gives back
/// the top of the main heap, and only once that top is above `M_TRIM_THRESHOLD`. A churn soak
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
