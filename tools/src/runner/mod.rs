//! The `holdfast` runner: configuration in, two supervised processes out.
//!
//! Lifecycle:
//!
//! 1. Read the config ([`Config::load`], or [`Config::find`], or built-in defaults) and report
//!    every unknown key by name.
//! 2. Decide every child command line ([`plan::plan`], pure and unit-tested).
//! 3. Create `rundir` and `logdir`, start `holdfast-handler` (it binds the socket the connection
//!    manager connects to), then `holdfast-connmgr`, and write their pid files.
//! 4. Supervise ([`supervise::Supervisor`]): SIGINT/SIGTERM stop both within a deadline, a
//!    second signal kills at once, SIGHUP is relayed to the handler (routes reload), and a child
//!    that exits on its own makes the runner stop the other and exit non-zero.

pub mod args;
pub mod plan;
pub mod supervise;
mod sys;

use std::process::ExitCode;

use holdfast_proto::config::{Config, Overrides};

pub use args::Args;

use crate::log::{Level, Sink};

/// Runs the runner to completion and returns the process exit code.
pub fn run(args: Args) -> ExitCode {
    let overrides = Overrides {
        id: args.id,
        port: args.port.clone(),
        ..Overrides::default()
    };
    let path = args.config.clone().or_else(Config::find);
    let loaded = match &path {
        Some(path) => Config::load(path, &overrides),
        None => Ok((Config::builtin(&overrides), Vec::new())),
    };
    let stdout_sink = || Sink::new(Box::new(std::io::stdout()), 2);
    let (config, warnings) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            stdout_sink().log(Level::Error, &format!("{err}"));
            return ExitCode::from(1);
        }
    };
    let plan = match plan::plan(&args, &config) {
        Ok(plan) => plan,
        Err(err) => {
            stdout_sink().log(Level::Error, &format!("{err}"));
            return ExitCode::from(1);
        }
    };
    let sink = match &args.logfile {
        Some(file) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
        {
            Ok(f) => Sink::new(Box::new(f), plan.runner_level),
            Err(err) => {
                stdout_sink().log(
                    Level::Error,
                    &format!("cannot open log file {}: {err}", file.display()),
                );
                return ExitCode::from(1);
            }
        },
        None => Sink::new(Box::new(std::io::stdout()), plan.runner_level),
    };

    sink.log(
        Level::Info,
        &format!("starting holdfast {}", env!("CARGO_PKG_VERSION")),
    );
    match &config.path {
        Some(path) => sink.log(Level::Info, &format!("using config: {}", path.display())),
        None => sink.log(Level::Info, "no config file found; using built-in defaults"),
    }
    for warning in &warnings {
        sink.log(Level::Warn, &warning.to_string());
    }
    for note in &plan.notes {
        sink.log(Level::Info, note);
    }
    supervise::Supervisor::new(plan, sink).run()
}
