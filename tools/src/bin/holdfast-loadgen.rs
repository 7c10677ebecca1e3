//! `holdfast-loadgen`: end-to-end load scenarios against Holdfast, Pushpin or the limit server
//! (see `holdfast-loadgen --help` and `holdfast_tools::loadgen`).

use std::process::ExitCode;

fn main() -> ExitCode {
    holdfast_tools::loadgen::main()
}
