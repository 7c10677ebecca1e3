//! The runner's own log lines: `[LEVEL] YYYY-MM-DD hh:mm:ss.mmm [runner] message`, the format
//! Pushpin's runner uses, so existing log scrapers keep working.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

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

impl Level {
    fn label(self) -> &'static str {
        match self {
            Self::Error => "ERR",
            Self::Warn => "WARN",
            Self::Info => "INFO",
            Self::Debug => "DEBUG",
        }
    }
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
        self.raw(&format!(
            "[{}] {} [runner] {}",
            level.label(),
            timestamp(SystemTime::now()),
            message
        ));
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

/// Formats a time as `YYYY-MM-DD hh:mm:ss.mmm` (UTC).
pub fn timestamp(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_356_822_123);
        assert_eq!(timestamp(t), "2026-11-22 14:13:42.123");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29 00:00:00.000");
    }
}
