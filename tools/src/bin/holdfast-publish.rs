//! `holdfast-publish`: publish one item to Pushpin or Holdfast, a drop-in for
//! `pushpin-publish` (see `holdfast-publish --help` and `holdfast_tools::publish`).

use std::process::ExitCode;

fn main() -> ExitCode {
    holdfast_tools::publish::main()
}
