//! `holdfast-connmgr`: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use holdfast_connmgr::{Args, Config};

fn main() -> ExitCode {
    let args = Args::parse();
    holdfast_proto::logfmt::init("connmgr", args.log_level);

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
