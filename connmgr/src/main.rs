//! `holdfast-connmgr`: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use holdfast_connmgr::{Args, Config};
use tracing::Level;

fn main() -> ExitCode {
    let args = Args::parse();
    let level = match args.log_level {
        0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        _ => Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false)
        .init();

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
