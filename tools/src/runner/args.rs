//! The runner's command line: Pushpin's runner flags, so existing scripts keep working.

use std::path::PathBuf;

use clap::Parser;

/// `holdfast`: start Holdfast (connection manager and handler) from a `pushpin.conf`.
#[derive(Debug, Parser)]
#[command(name = "holdfast", version, about, long_about = None)]
pub struct Args {
    /// Config file (default: ./config/pushpin.conf, ./pushpin.conf, /etc/holdfast/pushpin.conf,
    /// else built-in defaults).
    #[arg(long, value_name = "file")]
    pub config: Option<PathBuf>,

    /// Write the runner's log (and, with -m, the children's) to this file instead of stdout.
    #[arg(long, value_name = "file")]
    pub logfile: Option<PathBuf>,

    /// Log level: N (0 error, 1 warn, 2 info, 3 debug, 4 trace) or a list service:N,...
    /// (services: runner, connmgr/condure, handler/proxy).
    #[arg(long, value_name = "x")]
    pub loglevel: Option<String>,

    /// Verbose output (same as --loglevel=3).
    #[arg(long)]
    pub verbose: bool,

    /// Merge the children's output into the runner's output instead of per-service log files.
    #[arg(short = 'm', long = "merge-output")]
    pub merge_output: bool,

    /// Single HTTP listener [addr:]port, replacing [runner] http_port.
    #[arg(long, value_name = "[addr:]port")]
    pub port: Option<String>,

    /// Instance id N: ipc prefix `p<N>-` and port offset N*10, so several instances can share a
    /// machine.
    #[arg(long, value_name = "N")]
    pub id: Option<u32>,

    /// A routes line (repeatable); replaces the routes file.
    #[arg(long, value_name = "line")]
    pub route: Vec<String>,
}
