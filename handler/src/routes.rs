//! The live routes table: loading, hot reload and atomic swap.
//!
//! Sessions take an `Arc<RouteTable>` snapshot when they start, so a reload never changes the
//! route of a request in flight. A reload happens on SIGHUP and when the routes file changes:
//! the file's metadata is polled every second and the file is reparsed once it has been stable
//! for one second (editors write in several steps). With `--route` lines there is no file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use holdfast_proto::routes::{RouteTable, RouteWarning};
use tokio::sync::watch;

/// How often the routes file's metadata is checked.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How long the file must stay unchanged before it is reloaded.
const SETTLE_DELAY: Duration = Duration::from_secs(1);

/// Where the routes come from.
#[derive(Clone, Debug)]
pub enum RoutesSource {
    /// `--route` lines (nothing to watch).
    Lines(Vec<String>),
    /// The routes file from the config.
    File(PathBuf),
    /// No routes at all: every request gets `Route not found`.
    None,
}

/// Why the routes could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot read routes file {path}: {source}")]
pub struct RoutesError {
    /// The file.
    pub path: PathBuf,
    /// The OS error.
    pub source: std::io::Error,
}

/// Read side of the live table.
#[derive(Clone, Debug)]
pub struct Routes {
    rx: watch::Receiver<Arc<RouteTable>>,
}

impl Routes {
    /// A handle that always returns `table` (tests, fixed route sets).
    pub fn fixed(table: RouteTable) -> Self {
        let (tx, rx) = watch::channel(Arc::new(table));
        // The receiver keeps the last value after the sender is gone.
        drop(tx);
        Self { rx }
    }

    /// The current table; in-flight users keep the snapshot they took.
    pub fn current(&self) -> Arc<RouteTable> {
        self.rx.borrow().clone()
    }
}

/// Write side of the live table, owned by the reload task.
#[derive(Debug)]
pub struct RoutesUpdater {
    source: RoutesSource,
    tx: watch::Sender<Arc<RouteTable>>,
}

/// Loads the routes for the first time. Like Pushpin, a routes file that cannot be read is
/// reported and the handler starts with no routes (every request gets `Route not found`); the
/// file is picked up as soon as it appears.
pub fn load(source: RoutesSource) -> (Routes, RoutesUpdater) {
    let table = match parse_source(&source) {
        Ok((table, warnings)) => {
            log_loaded(&source, &table, &warnings, false);
            table
        }
        Err(err) => {
            tracing::error!("{err}; starting with no routes");
            RouteTable::default()
        }
    };
    let (tx, rx) = watch::channel(Arc::new(table));
    (Routes { rx }, RoutesUpdater { source, tx })
}

fn parse_source(source: &RoutesSource) -> Result<(RouteTable, Vec<RouteWarning>), RoutesError> {
    match source {
        RoutesSource::Lines(lines) => Ok(RouteTable::parse_lines(lines.iter().map(String::as_str))),
        RoutesSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| RoutesError {
                path: path.clone(),
                source,
            })?;
            Ok(RouteTable::parse(&text))
        }
        RoutesSource::None => Ok((RouteTable::default(), Vec::new())),
    }
}

fn log_loaded(source: &RoutesSource, table: &RouteTable, warnings: &[RouteWarning], reload: bool) {
    for warning in warnings {
        tracing::warn!("{warning} (skipped)");
    }
    let what = if reload { "reloaded" } else { "loaded" };
    match source {
        RoutesSource::Lines(_) => {
            tracing::info!(
                "routes {what} from command line: {} routes",
                table.routes().len()
            )
        }
        RoutesSource::File(path) => tracing::info!(
            "routes {what} from {}: {} routes",
            path.display(),
            table.routes().len()
        ),
        RoutesSource::None => {
            tracing::warn!("no routes file configured and no --route given: every request gets 502 Route not found")
        }
    }
}

/// File identity used to notice changes: modification time and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

async fn stamp(path: &Path) -> Option<Stamp> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

impl RoutesUpdater {
    /// Reparses the source and swaps the table in. On a read error the old table stays.
    pub fn reload(&self) {
        match parse_source(&self.source) {
            Ok((table, warnings)) => {
                log_loaded(&self.source, &table, &warnings, true);
                self.tx.send_replace(Arc::new(table));
            }
            Err(err) => tracing::error!("{err}; keeping the previous routes"),
        }
    }

    /// Runs until `shutdown` fires: reloads on SIGHUP and when the routes file changes.
    pub async fn run(self, mut hangups: tokio::sync::mpsc::Receiver<()>) {
        let path = match &self.source {
            RoutesSource::File(path) => Some(path.clone()),
            _ => None,
        };
        let mut last = match &path {
            Some(p) => stamp(p).await,
            None => None,
        };
        // When a change was first seen; the reload waits until the file has settled.
        let mut changed_at: Option<tokio::time::Instant> = None;
        let mut ticker = tokio::time::interval(POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                hup = hangups.recv() => {
                    if hup.is_none() {
                        return;
                    }
                    match &self.source {
                        RoutesSource::File(_) => {
                            tracing::info!("SIGHUP: reloading routes");
                            self.reload();
                        }
                        _ => tracing::info!("SIGHUP: routes come from the command line, nothing to reload"),
                    }
                }
                _ = ticker.tick() => {
                    let Some(p) = &path else { continue };
                    let now_stamp = stamp(p).await;
                    if now_stamp != last {
                        last = now_stamp;
                        changed_at = Some(tokio::time::Instant::now());
                        if now_stamp.is_none() {
                            tracing::warn!("routes file {} disappeared; keeping the current routes", p.display());
                            changed_at = None;
                        }
                    } else if let Some(at) = changed_at {
                        if at.elapsed() >= SETTLE_DELAY {
                            changed_at = None;
                            tracing::info!("routes file {} changed", p.display());
                            self.reload();
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_source_parses_and_fixed_handle_keeps_value() {
        let (routes, _updater) = load(RoutesSource::Lines(vec!["* test".into()]));
        assert_eq!(routes.current().routes().len(), 1);
        let fixed = Routes::fixed(RouteTable::default());
        assert!(fixed.current().routes().is_empty());
    }

    #[test]
    fn missing_file_starts_empty() {
        let source = RoutesSource::File("/nonexistent/holdfast/routes".into());
        let err = parse_source(&source).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/holdfast/routes"));
        let (routes, _updater) = load(source);
        assert!(routes.current().routes().is_empty());
    }

    #[test]
    fn reload_swaps_and_keeps_old_snapshot() {
        let dir = std::env::temp_dir().join(format!("hf-routes-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("routes");
        std::fs::write(&file, "* test\n").unwrap();
        let (routes, updater) = load(RoutesSource::File(file.clone()));
        let before = routes.current();
        std::fs::write(&file, "* test\nexample.com 127.0.0.1:80\n").unwrap();
        updater.reload();
        assert_eq!(before.routes().len(), 1);
        assert_eq!(routes.current().routes().len(), 2);
        std::fs::remove_file(&file).unwrap();
        updater.reload();
        assert_eq!(
            routes.current().routes().len(),
            2,
            "failed reload keeps the table"
        );
        let _ = std::fs::remove_dir(&dir);
    }
}
