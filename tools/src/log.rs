//! The runner's own log lines, in the format all processes share (`holdfast_proto::logfmt`):
//! `[LEVEL] YYYY-MM-DD hh:mm:ss.mmm [runner] message`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use holdfast_proto::logfmt;

/// Log levels, numbered as Pushpin numbers them (`--loglevel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// 0
    Error = 0,
    /// 1
    Warn = 1,
    /// 2
    Info = 2,
    /// 3
    Debug = 3,
}

/// A cloneable sink shared by the runner and the threads that relay the children's output, so
/// that lines from different sources never interleave mid-line.
#[derive(Clone)]
pub struct Sink {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    level: u8,
}

impl Sink {
    /// A sink writing to `out`, showing runner lines up to `level`.
    pub fn new(out: Box<dyn Write + Send>, level: u8) -> Self {
        Self {
            out: Arc::new(Mutex::new(out)),
            level,
        }
    }

    /// Writes one runner log line if `level` is enabled.
    pub fn log(&self, level: Level, message: &str) {
        if level as u8 > self.level {
            return;
        }
        let prefix = logfmt::prefix(level as u8, "runner", SystemTime::now());
        self.raw(&format!("{prefix}{message}"));
    }

    /// Writes one line verbatim (a child's output).
    pub fn raw(&self, line: &str) {
        // A poisoned lock only means another relay thread panicked mid-write; the sink itself is
        // still usable, so keep logging.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
