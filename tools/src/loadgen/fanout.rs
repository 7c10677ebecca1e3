//! `fanout`: N subscribers on one channel, K messages published to it; and the delivery engine
//! `channels` shares.
//!
//! Steps: open every subscriber (as in `hold`; for `--transport ws` a WebSocket to
//! `/ws?channel=X`, which needs a WebSocket-over-HTTP backend route (`over_http`): the embedded
//! backend answers `OPEN` with GRIP and `c:{"type":"subscribe","channel":"X"}`), wait until every open finished, sleep `--settle`
//! seconds, publish (HTTP, each request waiting for its answer, or ZeroMQ PUSH; `--publishers`
//! requests in flight at once, each on its own connection; `--rate` paces messages per second),
//! then wait until every subscriber has every message or no delivery arrived for
//! `--drain-timeout` seconds.
//!
//! The settle time covers a race no client can observe: a subscriber's response head (or
//! WebSocket 101) can reach it before the proxy has finished subscribing it to its channel (the
//! subscription is registered by another process or task, or, for WebSockets over HTTP, only
//! once the backend's answer to `OPEN` with its `c:subscribe` control message was applied).
//! A message published inside that window is lost for that subscriber, which would show up as
//! `lost` and is a harness artefact, not a proxy bug. One second is ample on loopback at 16k
//! subscribers; raise it for larger runs or slower machines.
//!
//! Each message's content embeds its sequence number and its publish time (ns since the epoch,
//! taken just before the publish request is sent), so latency = receive time − publish time,
//! including the publish API's own latency. Deliveries/s = all deliveries / (last delivery −
//! first publish). Per subscriber, sequence numbers never received are `lost`, repeats are
//! `duplicated`, and a message with a lower number than one already seen is `out_of_order`.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch, Semaphore};

use super::http::Target;
use super::publisher::{Item, Publisher};
use super::stats::{now_ns, rate, round3};
use super::subscriber::{self, Deliveries, Tracker, Transport};
use super::ClientOpts;

/// Options `fanout` and `channels` share.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryOpts {
    #[command(flatten)]
    pub client: ClientOpts,
    /// How subscribers connect and how content is shaped.
    #[arg(long, value_enum, default_value_t = Transport::Stream)]
    pub transport: Transport,
    /// Publish endpoint: `http://host:port` (control API) or `zmq:tcp://host:port` (PUSH).
    #[arg(long, default_value = "http://127.0.0.1:5561")]
    pub publish: String,
    /// Messages per second (default: as fast as the publish API answers, one request at a time).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds to wait after all subscribers are connected before publishing.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// Give up waiting for deliveries after this many seconds without one.
    #[arg(long, default_value_t = 5.0)]
    pub drain_timeout: f64,
    /// Publish requests in flight at once, each on its own connection (or ZeroMQ socket),
    /// taking the next batch in order. Above 1, messages of one channel may be published out
    /// of order, so this is meant for `channels`.
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub opts: DeliveryOpts,
    /// Number of subscribers.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Number of messages.
    #[arg(short = 'k', long, default_value_t = 300)]
    pub messages: u64,
    /// Channel name (default: unique per run, so runs never see each other's messages).
    #[arg(long)]
    pub channel: Option<String>,
}

/// A unique-per-run tag for channel names.
pub fn run_tag() -> String {
    format!(
        "{:x}{:x}",
        std::process::id(),
        now_ns() / 1_000_000 % 0xFFFFFF
    )
}

pub async fn run(args: FanoutArgs) -> Result<Value, String> {
    deliver_one_channel(args, "fanout").await
}

/// `ws-broadcast`: `fanout` with WebSocket subscribers whatever `--transport` says, so the
/// WebSocket benchmark has its own name in scripts and results.
pub async fn run_ws_broadcast(mut args: FanoutArgs) -> Result<Value, String> {
    args.opts.transport = Transport::Ws;
    deliver_one_channel(args, "ws-broadcast").await
}

async fn deliver_one_channel(args: FanoutArgs, scenario: &'static str) -> Result<Value, String> {
    let channel = args
        .channel
        .clone()
        .unwrap_or_else(|| format!("fanout-{}", run_tag()));
    let batches = (1..=args.messages)
        .map(|k| {
            vec![Item {
                channel: channel.clone(),
                id: format!("m{k}"),
                seq: k,
            }]
        })
        .collect();
    let plan = Plan {
        scenario,
        sub_channels: vec![channel; args.subscribers],
        expected: args.messages,
        batches,
    };
    deliver(&args.opts, plan).await
}

/// What to subscribe and publish.
pub struct Plan {
    pub scenario: &'static str,
    /// Subscriber i's channel.
    pub sub_channels: Vec<String>,
    /// Messages each subscriber should get, numbered `1..=expected`.
    pub expected: u64,
    /// Publish requests, in order.
    pub batches: Vec<Vec<Item>>,
}

struct Outcome {
    tracker: Option<Tracker>,
    error: Option<String>,
}

/// Opens the subscribers, publishes, waits, reports.
pub async fn deliver(opts: &DeliveryOpts, plan: Plan) -> Result<Value, String> {
    let target = Arc::new(Target::parse(&opts.client.url)?);
    // Every publisher is opened before subscribing, so a bad endpoint fails at once.
    let publishers = (0..opts.publishers.max(1))
        .map(|_| Publisher::new(&opts.publish))
        .collect::<Result<Vec<_>, _>>()?;
    let n = plan.sub_channels.len();
    let transport = opts.transport;
    let shared = Arc::new(Deliveries::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let sem = Arc::new(Semaphore::new(opts.client.concurrency.max(1)));
    let open_timeout = Duration::from_secs_f64(opts.client.open_timeout);
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for (i, channel) in plan.sub_channels.into_iter().enumerate() {
        let (target, sem, shared, ready_tx, stop_rx) = (
            target.clone(),
            sem.clone(),
            shared.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        );
        let sources = opts.client.sources;
        let expected = plan.expected;
        handles.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let path = transport.path(&channel);
            drop(channel);
            let opened = tokio::time::timeout(
                open_timeout,
                subscriber::open(&target, i, sources, &path, transport == Transport::Ws),
            )
            .await
            .map_err(|_| "open timed out".to_string())
            .and_then(|r| r);
            drop(permit);
            match opened {
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    Outcome {
                        tracker: None,
                        error: None,
                    }
                }
                Ok(sub) => {
                    let _ = ready_tx.send(Ok(()));
                    drop(ready_tx);
                    let mut tracker = Tracker::new(expected);
                    let error = sub.receive(&mut tracker, &shared, stop_rx).await.err();
                    Outcome {
                        tracker: Some(tracker),
                        error,
                    }
                }
            }
        }));
    }
    drop(ready_tx);

    let mut connected = 0usize;
    let mut failed = 0usize;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => connected += 1,
            Err(e) => {
                failed += 1;
                *errors.entry(e).or_default() += 1;
            }
        }
        if (connected + failed) % 1000 == 0 {
            eprintln!(
                "{}: {connected} connected, {failed} failed of {n}",
                plan.scenario
            );
        }
        if connected + failed == n {
            break;
        }
    }
    let setup_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{}: {connected} subscribers ({}) in {setup_secs:.2} s; settling {} s",
        plan.scenario,
        transport.name(),
        opts.settle
    );
    tokio::time::sleep(Duration::from_secs_f64(opts.settle)).await;

    let total_items: usize = plan.batches.iter().map(Vec::len).sum();
    let first_ns = now_ns();
    let pub_start = Instant::now();
    // Each batch with the number of items before it, to pace by message, not by request.
    let mut before = 0;
    let batches: Arc<Vec<(usize, Vec<Item>)>> = Arc::new(
        plan.batches
            .into_iter()
            .map(|b| {
                before += b.len();
                (before - b.len(), b)
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut publishing = Vec::with_capacity(publishers.len());
    for publisher in publishers {
        let (batches, next, rate) = (batches.clone(), next.clone(), opts.rate);
        publishing.push(tokio::spawn(publish_batches(
            publisher, batches, next, rate, pub_start, transport,
        )));
    }
    let (mut published, mut publish_errors) = (0usize, 0u64);
    for task in publishing {
        let done = task.await.map_err(|e| format!("publisher task: {e}"))?;
        published += done.published;
        publish_errors += done.failures.len() as u64;
        for e in done.failures {
            let slot = errors.entry(e);
            if let Entry::Vacant(new) = &slot {
                eprintln!("{}: {}", plan.scenario, new.key());
            }
            *slot.or_default() += 1;
        }
    }
    let publish_secs = pub_start.elapsed().as_secs_f64();
    eprintln!(
        "{}: published {published}/{total_items} in {publish_secs:.2} s; draining",
        plan.scenario
    );

    let drain_timeout = Duration::from_secs_f64(opts.drain_timeout);
    let mut last_count = shared.count.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while shared.complete.load(Ordering::Relaxed) < connected {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let c = shared.count.load(Ordering::Relaxed);
        if c != last_count {
            last_count = c;
            last_change = Instant::now();
        } else if last_change.elapsed() >= drain_timeout {
            eprintln!(
                "{}: no delivery for {} s, stopping",
                plan.scenario, opts.drain_timeout
            );
            break;
        }
    }
    // Late duplicates get a short chance to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stop_tx.send(true);

    let (mut lost, mut duplicated, mut out_of_order, mut unexpected, mut disconnected) =
        (0, 0, 0, 0, 0u64);
    for h in handles {
        match h.await {
            Ok(Outcome {
                tracker: Some(t),
                error,
            }) => {
                lost += t.lost();
                duplicated += t.duplicated;
                out_of_order += t.out_of_order;
                unexpected += t.unexpected;
                if let Some(e) = error {
                    disconnected += 1;
                    *errors.entry(e).or_default() += 1;
                }
            }
            Ok(Outcome { tracker: None, .. }) => {}
            Err(e) => *errors.entry(format!("task: {e}")).or_default() += 1,
        }
    }
    let deliveries = shared.count.load(Ordering::Relaxed);
    let last_ns = shared.last_ns.load(Ordering::Relaxed);
    let duration = if last_ns > first_ns {
        (last_ns - first_ns) as f64 / 1e9
    } else {
        0.0
    };
    Ok(json!({
        "scenario": plan.scenario,
        "target": opts.client.url,
        "publish": opts.publish,
        "transport": transport.name(),
        "subscribers": n,
        "connected": connected,
        "failed": failed,
        "setup_secs": round3(setup_secs),
        "messages": total_items,
        "published": published,
        "publish_errors": publish_errors,
        "publish_secs": round3(publish_secs),
        "publish_rate": rate(published as u64, publish_secs),
        "deliveries": deliveries,
        "expected_deliveries": connected as u64 * plan.expected,
        "duration_secs": round3(duration),
        "deliveries_per_sec": rate(deliveries, duration),
        "latency_us": shared.latency.snapshot().summary(),
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "unexpected": unexpected,
        "disconnected": disconnected,
        "errors": errors,
    }))
}

/// What one publishing task did.
struct Published {
    published: usize,
    /// Every failed request's error, in order.
    failures: Vec<String>,
}

/// One publisher's loop: claims the next batch (so batches leave in order across publishers),
/// waits for its slot when `rate` paces messages, publishes it and counts the outcome.
async fn publish_batches(
    mut publisher: Publisher,
    batches: Arc<Vec<(usize, Vec<Item>)>>,
    next: Arc<AtomicUsize>,
    rate: Option<f64>,
    start: Instant,
    transport: Transport,
) -> Published {
    let mut done = Published {
        published: 0,
        failures: Vec::new(),
    };
    loop {
        let Some((before, batch)) = batches.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return done;
        };
        if let Some(r) = rate.filter(|r| *r > 0.0) {
            let due = start + Duration::from_secs_f64(*before as f64 / r);
            tokio::time::sleep_until(due.into()).await;
        }
        match publisher.publish(batch, transport).await {
            Ok(()) => done.published += batch.len(),
            Err(e) => done.failures.push(e),
        }
    }
}
