//! The log line format every Holdfast process writes:
//! `[LEVEL] YYYY-MM-DD hh:mm:ss.mmm [service] message` (UTC).
//!
//! It is Pushpin's line format plus the service tag, so existing log scrapers keep working and
//! the runner's merged output (`-m`) still says which process wrote each line. The formatting is
//! pure; the `tracing-format` feature adds the `tracing` event formatter and the one function
//! that installs it on stderr, used only by the binaries.

use std::time::{SystemTime, UNIX_EPOCH};

/// Pushpin's label for a numeric log level (0 error .. 4 trace).
pub fn level_label(level: u8) -> &'static str {
    match level {
        0 => "ERR",
        1 => "WARN",
        2 => "INFO",
        3 => "DEBUG",
        _ => "TRACE",
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

/// The start of a log line, up to and including the space before the message.
pub fn prefix(level: u8, service: &str, time: SystemTime) -> String {
    format!("[{}] {} [{service}] ", level_label(level), timestamp(time))
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

#[cfg(feature = "tracing-format")]
pub use self::tracing_format::init;

#[cfg(feature = "tracing-format")]
mod tracing_format {
    use std::fmt;
    use std::time::SystemTime;

    use tracing::{Event, Level, Subscriber};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::EnvFilter;

    /// Installs the global `tracing` subscriber for `service` (e.g. `handler`) at Pushpin log
    /// level `level` (0 error .. 4 trace), writing to stderr. Levels 3 and 4 open up Holdfast's
    /// own crates only, so debug output is ours and not our dependencies'. A second call (tests)
    /// does nothing.
    pub fn init(service: &'static str, level: u8) {
        let ours = match level {
            0 => "error",
            1 => "warn",
            2 => "info",
            3 => "debug",
            _ => "trace",
        };
        let others = if level >= 2 { "info" } else { ours };
        let filter = EnvFilter::new(format!(
            "{others},holdfast_{service}={ours},holdfast_proto={ours}"
        ));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .event_format(PushpinFormat { service })
            .try_init();
    }

    struct PushpinFormat {
        service: &'static str,
    }

    impl<S, N> FormatEvent<S, N> for PushpinFormat
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> fmt::Result {
            let level = match *event.metadata().level() {
                Level::ERROR => 0,
                Level::WARN => 1,
                Level::INFO => 2,
                Level::DEBUG => 3,
                Level::TRACE => 4,
            };
            writer.write_str(&super::prefix(level, self.service, SystemTime::now()))?;
            ctx.field_format().format_fields(writer.by_ref(), event)?;
            writeln!(writer)
        }
    }
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
        let end = UNIX_EPOCH + Duration::from_secs(946_684_799); // 1999-12-31 23:59:59
        assert_eq!(timestamp(end), "1999-12-31 23:59:59.000");
    }

    #[test]
    fn prefix_has_level_time_and_service() {
        assert_eq!(
            prefix(1, "connmgr", UNIX_EPOCH),
            "[WARN] 1970-01-01 00:00:00.000 [connmgr] "
        );
        assert_eq!(level_label(0), "ERR");
        assert_eq!(level_label(9), "TRACE");
    }
}
