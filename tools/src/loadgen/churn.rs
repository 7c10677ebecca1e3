//! `churn`: a bounded soak with subscribers coming and going while messages flow.
//!
//! N subscriber slots are spread evenly over the chosen transports: HTTP streaming and SSE
//! (`/stream?channel=X`, a stream hold), long-polling (`/poll?channel=X`, a response hold,
//! re-polled on the same keep-alive connection after every answer) and WebSocket
//! (`/ws?channel=X` through an `over_http` route; the embedded backend subscribes it with
//! `c:subscribe`). Each transport has its own channel. Once every slot has connected, for
//! `--duration` seconds:
//!
//! - a scheduler closes `--churn` percent of the slots per second (picked at random, in 100 ms
//!   steps) and each closed slot reconnects at once on a new connection;
//! - a publisher sends `--rate` messages per second over the HTTP publish API, one request per
//!   message holding one item per transport (`<seq> <ts>` shaped for each, with id `m<seq>`);
//! - the summed RSS of the selected proxy processes is sampled every `--sample` seconds.
//!
//! Then every client leaves and the RSS is read again after `--cooldown` seconds.
//!
//! What is checked, from what each connection recorded (open time, close time, who closed it,
//! every sequence number received) and what the publisher recorded (when each publish request
//! was sent and answered):
//!
//! - exactly once: a streaming/SSE/WebSocket connection that was open from `--settle` seconds
//!   before a message's publish request was sent until `--grace` seconds after it was answered
//!   must receive that message once (`lost` otherwise); any message received twice on one
//!   connection is `duplicated`. A long-poll request must be answered with the first
//!   message published between `--poll-settle` seconds after it was sent and its answer, or an
//!   earlier one (an unanswered poll closed by us owes the messages it was open over entirely,
//!   as above); a slot that gets the same
//!   message from two polls counts it as `duplicated`. The settle margin covers the subscription
//!   being registered a moment after the response head (see `fanout`).
//! - no connection is closed by the proxy (`server_closed`, with the reasons): every close must
//!   be the client's own (churn or the end of the run);
//! - no 5xx to any request that opens a subscriber (`status_5xx`);
//! - memory: RSS before any client, with all connected, after `--warmup` seconds of churn, at
//!   the end of the churn (clients still connected), and after the clients left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify, Semaphore};

use super::fanout::run_tag;
use super::http::{self, ChunkDecoder, Framing, Target};
use super::procmem::ProcSelect;
use super::stats::{now_ns, round3, SharedHistogram};
use super::subscriber::{drain_lines, parse_message};
use super::ws;
use super::ClientOpts;

/// How a subscriber slot connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// HTTP streaming, content `<seq> <ts>\n`.
    Stream,
    /// Server-Sent Events, content `event: m\ndata: <seq> <ts>\n\n`.
    Sse,
    /// Long-polling, `http-response` body `<seq> <ts>\n`.
    Poll,
    /// WebSocket over an `over_http` route, `ws-message` content `<seq> <ts>`.
    Ws,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Stream => "stream",
            Kind::Sse => "sse",
            Kind::Poll => "poll",
            Kind::Ws => "ws",
        }
    }

    fn path(self, channel: &str) -> String {
        match self {
            Kind::Stream | Kind::Sse => format!("/stream?channel={channel}"),
            Kind::Poll => format!("/poll?channel={channel}"),
            Kind::Ws => format!("/ws?channel={channel}"),
        }
    }

    /// The publish item for message `seq` sent at `ts` (ns since the epoch).
    fn item(self, channel: &str, seq: u64, ts: u64) -> Value {
        let formats = match self {
            Kind::Stream => json!({"http-stream": {"content": format!("{seq} {ts}\n")}}),
            Kind::Sse => {
                json!({"http-stream": {"content": format!("event: m\ndata: {seq} {ts}\n\n")}})
            }
            Kind::Poll => json!({"http-response": {"body": format!("{seq} {ts}\n")}}),
            Kind::Ws => json!({"ws-message": {"content": format!("{seq} {ts}")}}),
        };
        json!({"channel": channel, "id": format!("m{seq}"), "formats": formats})
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Publish endpoint (HTTP control API).
    #[arg(long, default_value = "http://127.0.0.1:5561")]
    pub publish: String,
    /// Subscriber slots, spread evenly over the transports.
    #[arg(short = 'n', long, default_value_t = 2000)]
    pub subscribers: usize,
    /// Transports, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "stream,sse,poll,ws"
    )]
    pub transports: Vec<Kind>,
    /// Percent of the slots closed (and reopened) per second.
    #[arg(long, default_value_t = 2.0)]
    pub churn: f64,
    /// Messages published per second.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Seconds of churn and publishing.
    #[arg(short = 'd', long, default_value_t = 60.0)]
    pub duration: f64,
    /// Seconds into the churn at which memory counts as warmed up.
    #[arg(long, default_value_t = 10.0)]
    pub warmup: f64,
    /// A connection counts as subscribed this many seconds after it opened.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// A long-poll request counts as subscribed this many seconds after it was sent (polls are
    /// re-sent right after each answer, so this must stay below 1/`--rate` for polls to be
    /// checked at all). Every long-poll slot re-polls at once after each message, so on a
    /// loaded 2-core machine the last of a few thousand polls is registered some 100s of ms
    /// later: below that, late registrations show up as `lost`.
    #[arg(long, default_value_t = 0.6)]
    pub poll_settle: f64,
    /// A message counts as delivered this many seconds after its publish was answered.
    #[arg(long, default_value_t = 2.0)]
    pub grace: f64,
    /// Seconds between the clients leaving and the last memory reading.
    #[arg(long, default_value_t = 5.0)]
    pub cooldown: f64,
    /// Seconds between memory samples during the churn.
    #[arg(long, default_value_t = 5.0)]
    pub sample: f64,
    #[command(flatten)]
    pub procs: ProcSelect,
}

/// One streaming/SSE/WebSocket connection's life.
struct Session {
    opened: u64,
    closed: u64,
    seqs: Vec<u32>,
}

/// One long-poll request's life: sent, ended (answered or closed), what it got.
struct Poll {
    sent: u64,
    ended: u64,
    got: Option<u32>,
}

/// Everything one slot recorded.
struct SlotLog {
    kind: Kind,
    sessions: Vec<Session>,
    polls: Vec<Poll>,
}

/// Counters every slot shares.
#[derive(Default)]
struct Counters {
    opens: AtomicU64,
    status_5xx: AtomicU64,
    open_failed: AtomicU64,
    server_closed: AtomicU64,
    churned: AtomicU64,
    deliveries: AtomicU64,
    /// Publish-to-receive latency of every delivery, in microseconds: a delivery slower than
    /// `--grace` to a connection closed meanwhile counts as lost, so this says whether `lost`
    /// comes from slowness or from messages that never arrived.
    latency: SharedHistogram,
    initial_done: AtomicUsize,
    /// Reasons of open failures and proxy-initiated closes (rare, so a mutex is fine).
    reasons: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn delivered(&self, ts: u64) {
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        self.latency.record(now_ns().saturating_sub(ts) / 1000);
    }

    fn note(&self, reason: String) {
        if let Ok(mut map) = self.reasons.lock() {
            *map.entry(reason).or_default() += 1;
        }
    }
}

/// What the slot tasks share.
struct Ctx {
    target: Target,
    sources: usize,
    open_timeout: Duration,
    sem: Semaphore,
    counters: Counters,
    churn: Vec<Notify>,
}

/// How a connection ended.
enum End {
    /// Closed by us (churn or the end of the run).
    Ours,
    /// Closed by the proxy, with the reason.
    Theirs(String),
}

/// A message's publish request: sent and answered (ns since the epoch).
#[derive(Clone, Copy)]
struct Published {
    seq: u64,
    sent: u64,
    acked: u64,
}

pub async fn run(args: ChurnArgs) -> Result<Value, String> {
    if args.transports.is_empty() {
        return Err("no transports".into());
    }
    let n = args.subscribers;
    let tag = run_tag();
    let channel = |kind: Kind| format!("churn-{tag}-{}", kind.name());
    let (rss_start, _) = args.procs.measure();
    let ctx = Arc::new(Ctx {
        target: Target::parse(&args.client.url)?,
        sources: args.client.sources,
        open_timeout: Duration::from_secs_f64(args.client.open_timeout),
        sem: Semaphore::new(args.client.concurrency.max(1)),
        counters: Counters::default(),
        churn: (0..n).map(|_| Notify::new()).collect(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let setup = Instant::now();
    let mut slots = Vec::with_capacity(n);
    for i in 0..n {
        let kind = args.transports[i % args.transports.len()];
        let path = kind.path(&channel(kind));
        slots.push(tokio::spawn(run_slot(
            ctx.clone(),
            i,
            kind,
            path,
            stop_rx.clone(),
        )));
    }
    while ctx.counters.initial_done.load(Ordering::Relaxed) < n {
        if setup.elapsed() > ctx.open_timeout * 4 + Duration::from_secs(10) {
            return Err("the subscribers did not all connect".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup_secs = setup.elapsed().as_secs_f64();
    let initial_failures = ctx.counters.open_failed.load(Ordering::Relaxed);
    eprintln!("churn: {n} slots connected in {setup_secs:.2} s ({initial_failures} open failures)");
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let (rss_connected, _) = args.procs.measure();

    let duration = Duration::from_secs_f64(args.duration);
    let start = Instant::now();
    let publisher = tokio::spawn(publish(
        Target::parse(&args.publish)?,
        args.transports.iter().map(|k| (*k, channel(*k))).collect(),
        args.rate,
        start,
        duration,
    ));
    let scheduler = tokio::spawn(schedule_churn(ctx.clone(), args.churn, start, duration));

    let mut samples: Vec<(f64, u64)> = Vec::new();
    let mut rss_warm = None;
    let sample_every = Duration::from_secs_f64(args.sample.max(0.5));
    let mut next_sample = start;
    while start.elapsed() < duration {
        tokio::time::sleep_until((next_sample).into()).await;
        next_sample += sample_every;
        let t = start.elapsed().as_secs_f64();
        let (kib, _) = args.procs.measure();
        if rss_warm.is_none() && t >= args.warmup {
            rss_warm = Some(kib);
        }
        samples.push((round3(t), kib));
        eprintln!(
            "churn: {t:.0} s, {} reopened, {} deliveries, {} proxy closes, {} 5xx, rss {kib} KiB",
            ctx.counters.churned.load(Ordering::Relaxed),
            ctx.counters.deliveries.load(Ordering::Relaxed),
            ctx.counters.server_closed.load(Ordering::Relaxed),
            ctx.counters.status_5xx.load(Ordering::Relaxed),
        );
    }
    let (published, publish_errors) = publisher
        .await
        .map_err(|e| format!("publisher task: {e}"))?;
    let _ = scheduler.await;
    tokio::time::sleep(Duration::from_secs_f64(args.grace + 0.5)).await;
    let (rss_end, _) = args.procs.measure();

    let _ = stop_tx.send(true);
    let mut logs = Vec::with_capacity(n);
    for slot in slots {
        logs.push(slot.await.map_err(|e| format!("slot task: {e}"))?);
    }
    tokio::time::sleep(Duration::from_secs_f64(args.cooldown)).await;
    let (rss_after, procs_after) = args.procs.measure();

    let check = verify(&logs, &published, &args);
    let c = &ctx.counters;
    let reasons = c.reasons.lock().map(|m| m.clone()).unwrap_or_default();
    let warm = rss_warm.unwrap_or(rss_connected);
    let ok = check.lost == 0
        && check.duplicated == 0
        && c.server_closed.load(Ordering::Relaxed) == 0
        && c.status_5xx.load(Ordering::Relaxed) == 0
        && publish_errors == 0;
    Ok(json!({
        "scenario": "churn",
        "target": args.client.url,
        "publish": args.publish,
        "subscribers": n,
        "transports": args.transports.iter().map(|k| k.name()).collect::<Vec<_>>(),
        "churn_pct_per_sec": args.churn,
        "rate": args.rate,
        "duration_secs": args.duration,
        "setup_secs": round3(setup_secs),
        "opens": c.opens.load(Ordering::Relaxed),
        "reopened": c.churned.load(Ordering::Relaxed),
        "open_failed": c.open_failed.load(Ordering::Relaxed),
        "status_5xx": c.status_5xx.load(Ordering::Relaxed),
        "server_closed": c.server_closed.load(Ordering::Relaxed),
        "reasons": reasons,
        "published": published.len(),
        "publish_errors": publish_errors,
        "deliveries": c.deliveries.load(Ordering::Relaxed),
        "latency_us": c.latency.snapshot().summary(),
        "expected": check.expected,
        "lost": check.lost,
        "duplicated": check.duplicated,
        "per_transport": check.per_kind,
        "rss_kib": {
            "start": rss_start,
            "connected": rss_connected,
            "warm": warm,
            "end": rss_end,
            "after": rss_after,
            "max": samples.iter().map(|s| s.1).max().unwrap_or(0),
            "growth_after_warmup": rss_end as i64 - warm as i64,
            "after_minus_start": rss_after as i64 - rss_start as i64,
            "samples": samples,
        },
        "procs_after": procs_after,
        "ok": ok,
    }))
}

/// The exactly-once verdict.
struct Check {
    expected: u64,
    lost: u64,
    duplicated: u64,
    per_kind: BTreeMap<&'static str, Value>,
}

fn verify(logs: &[SlotLog], published: &[Published], args: &ChurnArgs) -> Check {
    let settle = (args.settle * 1e9) as u64;
    let poll_settle = (args.poll_settle * 1e9) as u64;
    let grace = (args.grace * 1e9) as u64;
    // Whether a connection (or poll) open over [from, to] was present for the message's whole
    // life.
    let present_after = |m: &Published, from: u64, to: u64, settle: u64| {
        from.saturating_add(settle) <= m.sent && m.acked.saturating_add(grace) <= to
    };
    let present = |m: &Published, from: u64, to: u64| present_after(m, from, to, settle);
    let mut per: BTreeMap<&'static str, [u64; 4]> = BTreeMap::new();
    for log in logs {
        let entry = per.entry(log.kind.name()).or_default();
        // [connections or polls, expected, lost, duplicated]
        let mut bump = |i: usize, by: u64| entry[i] += by;
        if log.kind == Kind::Poll {
            let mut got: Vec<u32> = Vec::new();
            for poll in &log.polls {
                bump(0, 1);
                got.extend(poll.got);
                // The first message published after the poll was subscribed and before it
                // ended: the one it must be answered with (or an earlier one). A poll that got
                // no answer (closed by us) only owed the messages it was open over entirely.
                let first_present = published
                    .iter()
                    .find(|m| match poll.got {
                        Some(_) => {
                            poll.sent.saturating_add(poll_settle) <= m.sent && m.sent <= poll.ended
                        }
                        None => present_after(m, poll.sent, poll.ended, poll_settle),
                    })
                    .map(|m| m.seq);
                if let Some(first) = first_present {
                    bump(1, 1);
                    if poll.got.is_none_or(|g| u64::from(g) > first) {
                        bump(2, 1);
                    }
                }
            }
            got.sort_unstable();
            bump(3, got.windows(2).filter(|w| w[0] == w[1]).count() as u64);
            continue;
        }
        for s in &log.sessions {
            bump(0, 1);
            let mut seqs = s.seqs.clone();
            seqs.sort_unstable();
            bump(3, seqs.windows(2).filter(|w| w[0] == w[1]).count() as u64);
            for m in published.iter().filter(|m| present(m, s.opened, s.closed)) {
                bump(1, 1);
                if seqs.binary_search(&(m.seq as u32)).is_err() {
                    bump(2, 1);
                }
            }
        }
    }
    let sum = |i: usize| per.values().map(|v| v[i]).sum::<u64>();
    Check {
        expected: sum(1),
        lost: sum(2),
        duplicated: sum(3),
        per_kind: per
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    json!({"connections": v[0], "expected": v[1], "lost": v[2], "duplicated": v[3]}),
                )
            })
            .collect(),
    }
}

/// Publishes `rate` messages per second for `duration`, one request per message with one item
/// per transport; returns what was published (answered 200) and the number of failures.
async fn publish(
    target: Target,
    channels: Vec<(Kind, String)>,
    rate: f64,
    start: Instant,
    duration: Duration,
) -> (Vec<Published>, u64) {
    let rate = rate.max(0.01);
    let path = format!("{}/publish/", target.prefix);
    let mut conn: Option<TcpStream> = None;
    let mut buf = Vec::new();
    let mut published = Vec::new();
    let mut errors = 0u64;
    for seq in 1u64.. {
        let at = start + Duration::from_secs_f64((seq - 1) as f64 / rate);
        if at >= start + duration {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        let sent = now_ns();
        let items: Vec<Value> = channels
            .iter()
            .map(|(kind, channel)| kind.item(channel, seq, sent))
            .collect();
        let body = json!({ "items": items }).to_string().into_bytes();
        let mut result = Err("not sent".to_string());
        for _attempt in 0..2 {
            if conn.is_none() {
                match http::connect(&target, 0, 0).await {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        result = Err(format!("publish connect: {e}"));
                        continue;
                    }
                }
                buf.clear();
            }
            let Some(stream) = conn.as_mut() else {
                continue;
            };
            match http::post(
                stream,
                &mut buf,
                &target.host,
                &path,
                "application/json",
                &body,
            )
            .await
            {
                Ok(resp) => {
                    if resp.head.close {
                        conn = None;
                    }
                    result = if resp.head.status == 200 {
                        Ok(())
                    } else {
                        Err(format!("publish status {}", resp.head.status))
                    };
                    break;
                }
                Err(e) => {
                    conn = None;
                    result = Err(format!("publish: {e}"));
                }
            }
        }
        match result {
            Ok(()) => published.push(Published {
                seq,
                sent,
                acked: now_ns(),
            }),
            Err(e) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("churn: {e}");
                }
            }
        }
    }
    (published, errors)
}

/// Every 100 ms, asks `churn`% × N / 10 random slots (fractions carried over) to reconnect.
async fn schedule_churn(ctx: Arc<Ctx>, churn: f64, start: Instant, duration: Duration) {
    let n = ctx.churn.len();
    if n == 0 || churn <= 0.0 {
        return;
    }
    let per_tick = churn / 100.0 * n as f64 / 10.0;
    let mut owed = 0.0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while start.elapsed() < duration {
        tick.tick().await;
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            let slot = (ws::random_u64() % n as u64) as usize;
            ctx.churn[slot].notify_one();
        }
    }
}

/// One slot: connect, hold until churned, reconnect; until the run stops.
async fn run_slot(
    ctx: Arc<Ctx>,
    index: usize,
    kind: Kind,
    path: String,
    mut stop: watch::Receiver<bool>,
) -> SlotLog {
    let mut log = SlotLog {
        kind,
        sessions: Vec::new(),
        polls: Vec::new(),
    };
    let mut first = true;
    while !*stop.borrow() {
        let opened = {
            let _permit = ctx.sem.acquire().await;
            tokio::time::timeout(ctx.open_timeout, open(&ctx, index, kind, &path))
                .await
                .unwrap_or_else(|_| Err(OpenError::Other("open timed out".into())))
        };
        if first {
            first = false;
            ctx.counters.initial_done.fetch_add(1, Ordering::Relaxed);
        }
        let conn = match opened {
            Ok(conn) => conn,
            Err(e) => {
                ctx.counters.open_failed.fetch_add(1, Ordering::Relaxed);
                if let OpenError::Status(code, _) = &e {
                    if *code >= 500 {
                        ctx.counters.status_5xx.fetch_add(1, Ordering::Relaxed);
                    }
                }
                ctx.counters.note(e.to_string());
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
                continue;
            }
        };
        ctx.counters.opens.fetch_add(1, Ordering::Relaxed);
        let end = if kind == Kind::Poll {
            hold_polls(&ctx, index, conn, &path, &mut log.polls, &mut stop).await
        } else {
            let mut session = Session {
                opened: now_ns(),
                closed: 0,
                seqs: Vec::new(),
            };
            let end = hold_stream(
                &ctx,
                index,
                kind == Kind::Ws,
                conn,
                &mut session.seqs,
                &mut stop,
            )
            .await;
            session.closed = now_ns();
            log.sessions.push(session);
            end
        };
        match end {
            End::Ours => {
                if !*stop.borrow() {
                    ctx.counters.churned.fetch_add(1, Ordering::Relaxed);
                }
            }
            End::Theirs(reason) => {
                ctx.counters.server_closed.fetch_add(1, Ordering::Relaxed);
                ctx.counters.note(format!("{}: {reason}", kind.name()));
            }
        }
    }
    log
}

/// Why a subscriber could not be opened.
#[derive(Debug)]
enum OpenError {
    /// An unexpected status (code, first bytes of the body).
    Status(u16, String),
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Status(code, body) => write!(f, "status {code}: {body}"),
            OpenError::Other(e) => f.write_str(e),
        }
    }
}

/// An open connection and the bytes read past the response head.
struct Conn {
    stream: TcpStream,
    /// Body or frame bytes already read.
    pending: Vec<u8>,
    framing: Framing,
}

/// Connects and opens a subscriber. Long-poll connections are only connected here: each poll
/// is one request on them.
async fn open(ctx: &Ctx, index: usize, kind: Kind, path: &str) -> Result<Conn, OpenError> {
    let mut stream = http::connect(&ctx.target, index, ctx.sources)
        .await
        .map_err(|e| OpenError::Other(format!("connect: {e}")))?;
    let full = format!("{}{path}", ctx.target.prefix);
    if kind == Kind::Poll {
        return Ok(Conn {
            stream,
            pending: Vec::new(),
            framing: Framing::Close,
        });
    }
    let req = if kind == Kind::Ws {
        ws::handshake_request(&full, &ctx.target.host)
    } else {
        format!("GET {full} HTTP/1.1\r\nHost: {}\r\n\r\n", ctx.target.host)
    };
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| OpenError::Other(format!("write: {e}")))?;
    let mut buf = Vec::with_capacity(1024);
    let (head, len) = loop {
        if let Some(h) = http::parse_response_head(&buf).map_err(OpenError::Other)? {
            break h;
        }
        http::read_more(&mut stream, &mut buf)
            .await
            .map_err(|e| OpenError::Other(format!("read head: {e}")))?;
    };
    buf.drain(..len);
    let want = if kind == Kind::Ws { 101 } else { 200 };
    if head.status != want {
        let body: String = String::from_utf8_lossy(&buf).chars().take(60).collect();
        return Err(OpenError::Status(head.status, body.trim().to_string()));
    }
    Ok(Conn {
        stream,
        pending: buf,
        framing: head.framing,
    })
}

/// Reads messages from a streaming, SSE or WebSocket connection until churned, stopped or
/// closed by the proxy.
async fn hold_stream(
    ctx: &Ctx,
    index: usize,
    websocket: bool,
    conn: Conn,
    seqs: &mut Vec<u32>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let Conn {
        mut stream,
        pending,
        framing,
    } = conn;
    let mut chunks = match framing {
        Framing::Chunked => Some(ChunkDecoder::new()),
        _ => None,
    };
    let mut raw = Vec::new();
    let mut text = Vec::new();
    let mut input = pending;
    let mut buf = vec![0u8; 4096];
    loop {
        // Decode what arrived.
        let result: Result<(), String> = if websocket {
            raw.extend_from_slice(&input);
            ws_messages(&mut stream, &mut raw, &mut text, seqs, &ctx.counters).await
        } else {
            match &mut chunks {
                Some(dec) => match dec.feed(&input, &mut text) {
                    Ok(_) if dec.is_done() => Err("last chunk".into()),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                },
                None => {
                    text.extend_from_slice(&input);
                    Ok(())
                }
            }
            .map(|()| {
                drain_lines(&mut text, |seq, ts| {
                    ctx.counters.delivered(ts);
                    seqs.push(seq as u32);
                })
            })
        };
        if let Err(reason) = result {
            return End::Theirs(reason);
        }
        if *stop.borrow() {
            return close(stream, websocket).await;
        }
        let n = tokio::select! {
            _ = stop.changed() => return close(stream, websocket).await,
            _ = ctx.churn[index].notified() => return close(stream, websocket).await,
            r = stream.read(&mut buf) => match r {
                Ok(0) => return End::Theirs("connection closed".into()),
                Ok(n) => n,
                Err(e) => return End::Theirs(format!("read: {e}")),
            },
        };
        input.clear();
        input.extend_from_slice(&buf[..n]);
    }
}

/// Handles the complete WebSocket frames in `raw`.
async fn ws_messages(
    stream: &mut TcpStream,
    raw: &mut Vec<u8>,
    text: &mut Vec<u8>,
    seqs: &mut Vec<u32>,
    counters: &Counters,
) -> Result<(), String> {
    let mut pos = 0;
    while let Some((frame, used)) = ws::parse_frame(&raw[pos..])? {
        pos += used;
        match frame.opcode {
            ws::OP_TEXT | ws::OP_BINARY | ws::OP_CONT => {
                text.extend_from_slice(&frame.payload);
                if frame.fin {
                    if let Some((seq, ts)) = parse_message(text) {
                        counters.delivered(ts);
                        seqs.push(seq as u32);
                    }
                    text.clear();
                }
            }
            ws::OP_PING => stream
                .write_all(&ws::client_frame(ws::OP_PONG, &frame.payload))
                .await
                .map_err(|e| format!("write pong: {e}"))?,
            ws::OP_CLOSE => {
                let code = frame
                    .payload
                    .get(..2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
                return Err(format!("close frame {code}"));
            }
            _ => {}
        }
    }
    raw.drain(..pos);
    Ok(())
}

/// Closes a connection from the client side (a close frame first on WebSockets).
async fn close(mut stream: TcpStream, websocket: bool) -> End {
    if websocket {
        let _ = stream
            .write_all(&ws::client_frame(ws::OP_CLOSE, &1000u16.to_be_bytes()))
            .await;
    }
    drop(stream);
    End::Ours
}

/// Long-polls on one keep-alive connection: request, wait for the answer, record it, repeat.
async fn hold_polls(
    ctx: &Ctx,
    index: usize,
    conn: Conn,
    path: &str,
    polls: &mut Vec<Poll>,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut stream = conn.stream;
    let mut buf = Vec::new();
    let req = format!(
        "GET {}{path} HTTP/1.1\r\nHost: {}\r\n\r\n",
        ctx.target.prefix, ctx.target.host
    );
    loop {
        if *stop.borrow() {
            return End::Ours;
        }
        let sent = now_ns();
        if let Err(e) = stream.write_all(req.as_bytes()).await {
            return End::Theirs(format!("write: {e}"));
        }
        let answer = tokio::select! {
            _ = stop.changed() => None,
            _ = ctx.churn[index].notified() => None,
            r = http::read_response(&mut stream, &mut buf) => Some(r),
        };
        let ended = now_ns();
        let resp = match answer {
            None => {
                polls.push(Poll {
                    sent,
                    ended,
                    got: None,
                });
                return End::Ours;
            }
            Some(Err(e)) => {
                polls.push(Poll {
                    sent,
                    ended,
                    got: None,
                });
                return End::Theirs(format!("poll: {e}"));
            }
            Some(Ok(resp)) => resp,
        };
        if resp.head.status >= 500 {
            ctx.counters.status_5xx.fetch_add(1, Ordering::Relaxed);
            ctx.counters
                .note(format!("poll status {}", resp.head.status));
        }
        let got = parse_message(&resp.body).map(|(seq, ts)| {
            ctx.counters.delivered(ts);
            seq as u32
        });
        polls.push(Poll { sent, ended, got });
        if resp.head.close {
            return End::Theirs("poll answer closed the connection".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ChurnArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            a: ChurnArgs,
        }
        Cli::parse_from(["x", "--settle", "1", "--poll-settle", "1", "--grace", "2"]).a
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn exactly_once_counts_only_messages_a_connection_was_present_for() {
        let published = [
            Published {
                seq: 1,
                sent: 10 * S,
                acked: 10 * S,
            },
            Published {
                seq: 2,
                sent: 20 * S,
                acked: 20 * S,
            },
            Published {
                seq: 3,
                sent: 30 * S,
                acked: 30 * S,
            },
        ];
        let logs = [
            // Open over all three; got 1 twice and missed 3.
            SlotLog {
                kind: Kind::Stream,
                sessions: vec![Session {
                    opened: 0,
                    closed: 40 * S,
                    seqs: vec![1, 1, 2],
                }],
                polls: vec![],
            },
            // Opened too late for 1 (settle), closed too early for 3 (grace): only 2 counts.
            SlotLog {
                kind: Kind::Ws,
                sessions: vec![Session {
                    opened: 9 * S + S / 2,
                    closed: 31 * S,
                    seqs: vec![2],
                }],
                polls: vec![],
            },
            // Polls: the first answered with 1 (fine), the second open over 2 but answered
            // with 3 (lost), the third got 3 again (duplicate).
            SlotLog {
                kind: Kind::Poll,
                sessions: vec![],
                polls: vec![
                    Poll {
                        sent: 0,
                        ended: 10 * S,
                        got: Some(1),
                    },
                    Poll {
                        sent: 11 * S,
                        ended: 30 * S,
                        got: Some(3),
                    },
                    Poll {
                        sent: 30 * S,
                        ended: 31 * S,
                        got: Some(3),
                    },
                ],
            },
        ];
        let check = verify(&logs, &published, &args());
        assert_eq!(check.per_kind["stream"]["expected"], 3);
        assert_eq!(check.per_kind["stream"]["lost"], 1);
        assert_eq!(check.per_kind["stream"]["duplicated"], 1);
        assert_eq!(check.per_kind["ws"]["expected"], 1);
        assert_eq!(check.per_kind["ws"]["lost"], 0);
        assert_eq!(check.per_kind["poll"]["expected"], 2);
        assert_eq!(check.per_kind["poll"]["lost"], 1);
        assert_eq!(check.per_kind["poll"]["duplicated"], 1);
        assert_eq!((check.expected, check.lost, check.duplicated), (6, 2, 2));
    }

    #[test]
    fn items_per_transport() {
        assert_eq!(
            Kind::Poll.item("c", 7, 42),
            json!({"channel": "c", "id": "m7", "formats": {"http-response": {"body": "7 42\n"}}})
        );
        assert_eq!(
            Kind::Sse.item("c", 7, 42)["formats"]["http-stream"]["content"],
            "event: m\ndata: 7 42\n\n"
        );
        assert_eq!(
            Kind::Ws.item("c", 7, 42)["formats"]["ws-message"]["content"],
            "7 42"
        );
        assert_eq!(Kind::Poll.path("c"), "/poll?channel=c");
    }
}
