//! `holdfast`: starts Holdfast from a `pushpin.conf` (see `holdfast --help`).

use std::process::ExitCode;

use clap::Parser;
use holdfast_tools::runner::{self, Args};

fn main() -> ExitCode {
    runner::run(Args::parse())
}
