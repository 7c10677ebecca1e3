//! `holdfast-handler` binary: parses the command line and runs the handler library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    holdfast_handler::run(holdfast_handler::Args::parse())
}
