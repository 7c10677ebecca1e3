//! `hold`: how fast a proxy accepts idle HTTP-stream subscribers and what each one costs it.
//!
//! Opens N subscribers (`GET /stream?channel=hold-<i % C>`) as fast as the `--concurrency`
//! window of in-flight opens allows, each from one of `--sources` loopback addresses. A
//! subscriber counts as set up when its response head and first body bytes (the backend's
//! `:ok\n\n`) arrived; the setup rate is set-up subscribers per second from the first connect to
//! the last set-up. The summed RSS of the selected proxy processes is read before the first
//! connect and after every subscriber is set up and has been idle for `--idle` seconds; the
//! difference divided by N is the per-connection cost. Connections are closed after that.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::Target;
use super::procmem::ProcSelect;
use super::stats::{rate, round3, Histogram};
use super::subscriber::{self, Transport};
use super::ClientOpts;

#[derive(Debug, Clone, clap::Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Number of subscribers to hold.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Number of distinct channels (`hold-<i % C>`).
    #[arg(short = 'C', long, default_value_t = 100)]
    pub channels: usize,
    /// Seconds to stay idle, all subscribers held, before measuring memory.
    #[arg(long, default_value_t = 2.0)]
    pub idle: f64,
    #[command(flatten)]
    pub procs: ProcSelect,
}

/// What one lane of openers set up.
#[derive(Default)]
struct Lane {
    held: Vec<subscriber::Subscriber>,
    errors: BTreeMap<String, u64>,
    last_setup: Duration,
    latency_us: Vec<u64>,
}

pub async fn run(args: HoldArgs) -> Result<Value, String> {
    let target = Arc::new(Target::parse(&args.client.url)?);
    let n = args.subscribers;
    let channels = args.channels.max(1);
    let (rss_before, procs_before) = args.procs.measure();
    if !args.procs.is_empty() {
        eprintln!(
            "hold: {} selected processes, {rss_before} KiB before",
            procs_before.as_array().map_or(0, Vec::len)
        );
    }
    let open_timeout = Duration::from_secs_f64(args.client.open_timeout);
    let start = Instant::now();
    // `--concurrency` lanes, each opening the next subscriber as soon as its previous one is
    // set up. (One task per subscriber behind a semaphore cost the load generator a
    // cross-thread wake-up per open, taking CPU from the proxy it measures.)
    let next = Arc::new(AtomicUsize::new(0));
    let lanes: Vec<_> = (0..args.client.concurrency.clamp(1, n.max(1)))
        .map(|_| {
            let (target, next) = (target.clone(), next.clone());
            let sources = args.client.sources;
            tokio::spawn(async move {
                let mut lane = Lane::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return lane;
                    }
                    let t0 = Instant::now();
                    let path = Transport::Stream.path(&format!("hold-{}", i % channels));
                    let opened = tokio::time::timeout(
                        open_timeout,
                        subscriber::open(&target, i, sources, &path, false),
                    )
                    .await
                    .map_err(|_| "open timed out".to_string())
                    .and_then(|r| r);
                    match opened {
                        Ok(mut sub) => {
                            sub.shrink();
                            lane.last_setup = lane.last_setup.max(start.elapsed());
                            lane.latency_us.push(t0.elapsed().as_micros() as u64);
                            lane.held.push(sub);
                        }
                        Err(e) => *lane.errors.entry(e).or_default() += 1,
                    }
                }
            })
        })
        .collect();
    let mut held = Vec::with_capacity(n);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_setup = Duration::ZERO;
    let mut open_latency = Histogram::new();
    for lane in lanes {
        match lane.await {
            Ok(lane) => {
                last_setup = last_setup.max(lane.last_setup);
                for us in lane.latency_us {
                    open_latency.record(us);
                }
                held.extend(lane.held);
                for (e, count) in lane.errors {
                    *errors.entry(e).or_default() += count;
                }
            }
            Err(e) => *errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    let ok = held.len() as u64;
    let setup_secs = last_setup.as_secs_f64();
    eprintln!(
        "hold: {ok} held, {} failed, in {setup_secs:.2} s; idle {} s",
        n as u64 - ok,
        args.idle
    );
    tokio::time::sleep(Duration::from_secs_f64(args.idle)).await;
    let (rss_after, procs_after) = args.procs.measure();
    drop(held);
    let delta = rss_after as i64 - rss_before as i64;
    let per_conn = if ok > 0 {
        delta as f64 / ok as f64
    } else {
        0.0
    };
    Ok(json!({
        "scenario": "hold",
        "target": args.client.url,
        "subscribers": n,
        "channels": channels,
        "ok": ok,
        "failed": n as u64 - ok,
        "setup_secs": round3(setup_secs),
        "setup_rate": rate(ok, setup_secs),
        "open_latency_us": open_latency.summary(),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_delta_kib": delta,
        "kib_per_conn": round3(per_conn),
        "procs": procs_after,
        "errors": errors,
    }))
}
