//! `holdfast-connmgr`: parse the command line, set up logging, run.
//!
//! Rust allocations go to jemalloc with its background purging threads on, as in the handler
//! (whose `main.rs` says why): each connection's buffers and each packet are allocated and
//! freed on the workers' hot paths.

use std::process::ExitCode;

use clap::Parser;
use holdfast_connmgr::{Args, Config};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    holdfast_proto::logfmt::init("connmgr", args.log_level);
    // One purging thread (jemalloc would start up to four). Without it the connmgr works the
    // same, only keeping more memory when idle.
    let purging = tikv_jemalloc_ctl::max_background_threads::write(1)
        .and_then(|()| tikv_jemalloc_ctl::background_thread::write(true));
    if let Err(err) = purging {
        tracing::warn!("cannot start jemalloc's purging thread: {err}");
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let config = match Config::from_args(args, cores) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("holdfast-connmgr: {e}");
            return ExitCode::from(2);
        }
    };
    match holdfast_connmgr::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
