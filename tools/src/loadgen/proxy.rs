//! `proxy`: plain request throughput through the proxy: C keep-alive connections, each sending
//! `GET /plain` (the embedded backend's `hello\n`) one after another for D seconds. Reports
//! requests/s and latency. `wrk` measures the same more precisely; this keeps the comparison
//! self-contained.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::http::{self, Target};
use super::stats::{rate, round3, Histogram};
use super::ClientOpts;

#[derive(Debug, Clone, clap::Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub client: ClientOpts,
    /// Number of connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,
    /// Duration in seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Request path.
    #[arg(long, default_value = "/plain")]
    pub path: String,
}

struct ConnResult {
    hist: Histogram,
    errors: u64,
    non_200: u64,
}

pub async fn run(args: ProxyArgs) -> Result<Value, String> {
    let target = Arc::new(Target::parse(&args.client.url)?);
    let duration = Duration::from_secs_f64(args.duration);
    let start = Instant::now();
    let deadline = start + duration;
    let request = Arc::new(format!(
        "GET {}{} HTTP/1.1\r\nHost: {}\r\n\r\n",
        target.prefix, args.path, target.host
    ));
    let mut handles = Vec::new();
    for i in 0..args.connections.max(1) {
        let (target, request) = (target.clone(), request.clone());
        let sources = args.client.sources;
        handles.push(tokio::spawn(async move {
            let mut r = ConnResult {
                hist: Histogram::new(),
                errors: 0,
                non_200: 0,
            };
            let mut conn = None;
            let mut buf = Vec::new();
            while Instant::now() < deadline {
                if conn.is_none() {
                    match http::connect(&target, i, sources).await {
                        Ok(s) => conn = Some(s),
                        Err(_) => {
                            r.errors += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                    buf.clear();
                }
                let Some(stream) = conn.as_mut() else {
                    continue;
                };
                let t0 = Instant::now();
                let res = match stream.write_all(request.as_bytes()).await {
                    Ok(()) => {
                        tokio::time::timeout_at(
                            deadline.into(),
                            http::read_response(stream, &mut buf),
                        )
                        .await
                    }
                    Err(e) => Ok(Err(e)),
                };
                match res {
                    Err(_) => break, // deadline while waiting: not counted
                    Ok(Ok(resp)) => {
                        r.hist.record(t0.elapsed().as_micros() as u64);
                        if resp.head.status != 200 {
                            r.non_200 += 1;
                        }
                        if resp.head.close {
                            conn = None;
                        }
                    }
                    Ok(Err(_)) => {
                        r.errors += 1;
                        conn = None;
                    }
                }
            }
            r
        }));
    }
    let mut hist = Histogram::new();
    let (mut errors, mut non_200) = (0, 0);
    for h in handles {
        let r = h.await.map_err(|e| format!("task: {e}"))?;
        hist.merge(&r.hist);
        errors += r.errors;
        non_200 += r.non_200;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "scenario": "proxy",
        "target": args.client.url,
        "connections": args.connections,
        "duration_secs": round3(secs),
        "requests": hist.count(),
        "requests_per_sec": rate(hist.count(), secs),
        "latency_us": hist.summary(),
        "errors": errors,
        "non_200": non_200,
    }))
}
