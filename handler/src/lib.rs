//! `holdfast-handler`: routes requests that the connection manager read from clients to HTTP
//! backends and streams the responses back.
//!
//! # Layout
//!
//! ```text
//!  connmgr workers (DEALER)                     holdfast-handler
//!  ───────────────────────        ┌──────────────────────────────────────────────────────────┐
//!        ZeroMQ ipc  ────────────▶│ ipc::bridge   task that owns the ROUTER socket (ZMQ_FD)   │
//!                                 │   liveness (epochs, hello, heartbeats), per-worker batches│
//!                                 │        │ Inbound (bounded tokio mpsc)    ▲ Outbox          │
//!                                 │        ▼                               │ (crossbeam+Notify) │
//!                                 │ session::dispatch  session table keyed (worker, stream)   │
//!                                 │        │ spawns one task per request                      │
//!                                 │        ▼                                                  │
//!                                 │ proxy::run_session  route → headers → targets → stream    │
//!                                 │        │                                                  │
//!                                 │        ▼                                                  │
//!                                 │ client::Pool  hyper http1 over TCP/TLS, idle reuse        │
//!                                 └──────────────────────────────────────────────────────────┘
//! ```
//!
//! * [`ipc`]: the ZeroMQ side. One task owns the ROUTER socket and waits on its signalling
//!   descriptor through tokio; every ZeroMQ call it makes is non-blocking.
//! * [`session`]: the table of live streams and the per-stream [`session::Inbox`] where request
//!   body and credits from the connmgr wait for the session task. Later GRIP holds live in the
//!   same table.
//! * [`proxy`]: what happens to one request: route selection, header rewriting (reference §4.9),
//!   target fall-through, error texts (§4.11), the built-in test target, streaming with credits.
//! * [`client`]: the backend HTTP/1.1 client with its connection pool and TLS.
//! * [`grip`]: GRIP over HTTP — the hub (held requests, subscriptions, delivery with one
//!   `Fanout` per worker, credits, timers), publish pipeline, Grip-Sig, CORS. A held request
//!   is a task-less entry of the session table owned by the hub.
//! * [`control`]: the HTTP publish API (`/publish/`, `/recover`).
//! * [`routes`]: loading and hot-reloading the routes table.
//! * [`app`]: process wiring, signals and staged shutdown.
//!
//! * [`zmqin`]: the ZeroMQ publish inputs (PULL, SUB with per-channel subscriptions);
//!   [`command`]: the ZRPC command socket; [`stats`]: the stats PUB socket; [`metrics`]:
//!   Prometheus. Each of these ZeroMQ sockets has its own OS thread.
//! * [`observe`]: the events (connections, subscriptions, deliveries) the hub and the session
//!   table report to stats, metrics and the SUB input.
//!
//! WebSockets come later.

// One exception, with its reason at the site: registering libzmq's signalling descriptor with
// tokio (`ipc::bridge`).
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod client;
pub mod command;
pub mod control;
pub mod error;
pub mod grip;
pub mod ipc;
pub mod logging;
pub mod metrics;
pub mod observe;
pub mod proxy;
pub mod routes;
pub mod session;
pub mod stats;
pub mod ws;
pub mod zmqin;
pub mod zmqutil;

pub use app::run;
pub use cli::Args;
