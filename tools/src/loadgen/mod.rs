//! `holdfast-loadgen`: the end-to-end load generator, its GRIP backend and its limit server.
//!
//! Every scenario prints exactly one JSON line on stdout (the result, for scripts) and human
//! progress on stderr. The servers (`backend`, `limit-server`) print one JSON line with their
//! listening address, then serve until killed.
//!
//! | command | what |
//! |---|---|
//! | `backend` | the embedded GRIP backend ([`backend`]) to put behind a proxy |
//! | `hold` | N idle HTTP-stream subscribers: setup rate, memory per connection ([`hold`]) |
//! | `fanout` | N subscribers on one channel, K messages: deliveries/s, latency, losses ([`fanout`]) |
//! | `channels` | N subscribers on N channels, one message each ([`channels`]) |
//! | `proxy` | plain keep-alive request throughput ([`proxy`]) |
//! | `ws-echo` | N WebSocket clients echoing through a WebSocket-over-HTTP route ([`ws_echo`]) |
//! | `ws-broadcast` | `fanout` over WebSockets (`ws-message` items, `c:` subscribe) ([`fanout`]) |
//! | `churn` | a soak: N subscribers of every transport, a few % reconnecting per second, steady publishing; exactly-once, proxy closes, 5xx, memory ([`churn`]) |
//! | `limit-server` | the no-proxy ceiling server ([`limit`]) |
//! | `limit <scenario>` | a scenario against an in-process limit server ([`limit`]) |
//!
//! Clients speak raw HTTP/1.1 (and RFC 6455 for `--transport ws`) over tokio sockets bound to
//! several loopback source addresses ([`http::connect`]); the open-file limit is raised to the
//! hard limit at start. A typical run:
//!
//! ```text
//! holdfast-loadgen backend --listen 127.0.0.1:18080 &
//! holdfast --route "* 127.0.0.1:18080" --port 127.0.0.1:7999 -m &
//! holdfast-loadgen hold --url http://127.0.0.1:7999 -n 5000 --pid-tree $(pgrep -x holdfast)
//! holdfast-loadgen fanout --url http://127.0.0.1:7999 --publish http://127.0.0.1:5561 -n 1000 -k 300
//! ```
//!
//! The WebSocket scenarios need the route to the backend to carry `over_http`
//! (`--route "* 127.0.0.1:18080,over_http"`): `ws-echo -n 100 -d 10`, `ws-broadcast -n 1000 -k 20`
//! (`benches/scripts/ws-compare.sh` runs both against Holdfast and Pushpin).

pub mod backend;
pub mod channels;
pub mod churn;
pub mod fanout;
pub mod hold;
pub mod http;
pub mod limit;
pub mod procmem;
pub mod proxy;
pub mod publisher;
pub mod stats;
pub mod subscriber;
mod sys;
pub mod ws;
pub mod ws_echo;

use std::future::Future;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Client options every scenario shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOpts {
    /// The proxy (or limit server) to connect to.
    #[arg(long, default_value = "http://127.0.0.1:7999")]
    pub url: String,
    /// Bind client sockets to 127.0.0.1..=127.0.0.<K> in turn (0: let the kernel choose).
    #[arg(long, default_value_t = 4)]
    pub sources: usize,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seconds one subscriber may take to connect and receive its first bytes.
    #[arg(long, default_value_t = 30.0)]
    pub open_timeout: f64,
}

#[derive(Debug, Parser)]
#[command(
    name = "holdfast-loadgen",
    version,
    about = "Load scenarios for Holdfast, Pushpin and the limit server; one JSON result line on stdout."
)]
struct Cli {
    /// Runtime worker threads (default: one per core).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, clap::Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:18080")]
    listen: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded GRIP backend.
    Backend(ServeArgs),
    /// Hold N idle HTTP-stream subscribers; report setup rate and proxy memory per connection.
    Hold(hold::HoldArgs),
    /// N subscribers on one channel, K messages published; deliveries/s, latency, losses.
    Fanout(fanout::FanoutArgs),
    /// N subscribers on N channels, one message per channel.
    Channels(channels::ChannelsArgs),
    /// Plain keep-alive request throughput.
    Proxy(proxy::ProxyArgs),
    /// N WebSocket clients each echoing one message at a time (needs an `over_http` route).
    WsEcho(ws_echo::WsEchoArgs),
    /// N WebSocket subscribers on one channel, K `ws-message` items (`fanout --transport ws`).
    WsBroadcast(fanout::FanoutArgs),
    /// Soak: subscribers of every transport churning while messages are published (needs an
    /// `over_http` route for the WebSocket slots).
    Churn(churn::ChurnArgs),
    /// Run the no-proxy limit server.
    LimitServer(ServeArgs),
    /// Run a scenario against an in-process limit server (URL and publish endpoint are ignored).
    Limit {
        #[command(subcommand)]
        scenario: LimitScenario,
    },
}

#[derive(Debug, Subcommand)]
enum LimitScenario {
    Hold(hold::HoldArgs),
    Fanout(fanout::FanoutArgs),
    Channels(channels::ChannelsArgs),
    Proxy(proxy::ProxyArgs),
}

/// The `holdfast-loadgen` entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match sys::raise_nofile() {
        Ok(n) => eprintln!("open-file limit: {n}"),
        Err(e) => eprintln!("warning: cannot raise the open-file limit: {e}"),
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(t) = cli.threads.filter(|t| *t > 0) {
        builder.worker_threads(t);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<Value, String> {
    match command {
        Command::Backend(a) => {
            let requests = Arc::new(AtomicU64::new(0));
            serve_forever("backend", &a.listen, |l| backend::serve(l, requests)).await
        }
        Command::LimitServer(a) => serve_forever("limit-server", &a.listen, limit::serve).await,
        Command::Hold(a) => hold::run(a).await,
        Command::Fanout(a) => fanout::run(a).await,
        Command::Channels(a) => channels::run(a).await,
        Command::Proxy(a) => proxy::run(a).await,
        Command::WsEcho(a) => ws_echo::run(a).await,
        Command::WsBroadcast(a) => fanout::run_ws_broadcast(a).await,
        Command::Churn(a) => churn::run(a).await,
        Command::Limit { scenario } => {
            let listener = http::listen("127.0.0.1:0")
                .await
                .map_err(|e| format!("bind: {e}"))?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            tokio::spawn(limit::serve(listener));
            let url = format!("http://{addr}");
            eprintln!("limit: in-process limit server on {addr}");
            let mut result = match scenario {
                LimitScenario::Hold(mut a) => {
                    a.client.url = url;
                    hold::run(a).await?
                }
                LimitScenario::Fanout(mut a) => {
                    a.opts.client.url = url.clone();
                    a.opts.publish = url;
                    fanout::run(a).await?
                }
                LimitScenario::Channels(mut a) => {
                    a.opts.client.url = url.clone();
                    a.opts.publish = url;
                    channels::run(a).await?
                }
                LimitScenario::Proxy(mut a) => {
                    a.client.url = url;
                    proxy::run(a).await?
                }
            };
            result["limit"] = json!("in-process");
            Ok(result)
        }
    }
}

/// Binds, prints `{"scenario":…,"listen":…}`, then serves until the process is killed.
async fn serve_forever<F, Fut>(name: &str, listen: &str, serve: F) -> Result<Value, String>
where
    F: FnOnce(TcpListener) -> Fut,
    Fut: Future<Output = ()>,
{
    let listener = http::listen(listen)
        .await
        .map_err(|e| format!("bind {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("{}", json!({"scenario": name, "listen": addr.to_string()}));
    eprintln!("{name}: listening on {addr}");
    serve(listener).await;
    Ok(json!({"scenario": name, "stopped": true}))
}
