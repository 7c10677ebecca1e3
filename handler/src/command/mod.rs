//! The handler's command socket (reference §6.6): a ROUTER bound on `command_spec` answering
//! ZRPC requests from REQ clients (`[tnet]`) and DEALER clients (`["", tnet]`); a reply goes
//! back with the request's envelope (every frame before the payload).
//!
//! Methods: `get-zmq-uris`, `recover`, `publish` (into the same pipeline as every other input),
//! `conncheck`, `refresh` and `method-not-found` for the rest. Connection ids are Holdfast's
//! `<connmgr worker identity>:<slot>-<generation>` ([`crate::observe::conn_id`]); `conncheck`
//! answers with the ids whose stream is live in the session table.
//!
//! The socket has its own thread, which handles one request at a time, as Pushpin does. A
//! `publish` runs the pipeline from that thread with [`tokio::runtime::Handle::block_on`]
//! (the entry point only awaits the outbox back-pressure), so no ZeroMQ call ever runs on a
//! tokio worker and the socket's queue (ZeroMQ's high-water mark) is the only buffer.

pub mod zrpc;

use std::sync::Arc;
use std::thread::JoinHandle;

use holdfast_proto::publish::parse_command_items;
use holdfast_proto::tnetstring::Value;
use tokio::runtime::Handle;

use self::zrpc::{encode_reply, parse_request, Outcome, RefreshTarget, Request};
use crate::error::RunError;
use crate::grip::GripRuntime;
use crate::observe::{parse_conn_id, PublishInput};
use crate::session::{SessionKey, Sessions};
use crate::zmqutil::{bind, zmq_err, RateLimitedWarn, StopFlag};

/// Poll timeout: bounds how late a stop is noticed.
const POLL_MS: i64 = 100;

/// Socket high-water marks.
const HWM: i32 = 1_000;

/// `conncheck` ids considered per request at most.
const MAX_CONNCHECK_IDS: usize = 100_000;

/// What the methods need.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The hub and the publish pipeline.
    pub grip: Arc<GripRuntime>,
    /// Live streams, for `conncheck`.
    pub sessions: Sessions,
    /// The `get-zmq-uris` answer.
    pub uris: Value,
    /// The tokio runtime, to run `publish`.
    pub runtime: Handle,
}

impl CommandContext {
    /// Runs one request.
    pub fn call(&self, req: &Request) -> Outcome {
        match req.method.as_slice() {
            b"get-zmq-uris" => Outcome::Success(self.uris.clone()),
            b"recover" => {
                self.grip.recover();
                Outcome::Success(Value::Null)
            }
            b"publish" => match parse_command_items(&req.args) {
                Err(err) => Outcome::Failure {
                    condition: "bad-request",
                    value: Some(Value::bytes(err.to_string().into_bytes())),
                },
                Ok(items) => {
                    self.runtime
                        .block_on(self.grip.publish(items, PublishInput::Command));
                    Outcome::Success(Value::Null)
                }
            },
            b"conncheck" => match zrpc::conncheck_ids(&req.args) {
                Some(ids) if ids.len() <= MAX_CONNCHECK_IDS => {
                    let table = crate::session::lock_table(&self.sessions);
                    let alive = ids
                        .into_iter()
                        .filter(|id| {
                            parse_conn_id(id).is_some_and(|(worker, id)| {
                                table.contains(&SessionKey { worker, id })
                            })
                        })
                        .map(|id| Value::bytes(id.into_bytes()))
                        .collect();
                    Outcome::Success(Value::List(alive))
                }
                _ => Outcome::fail("bad-request"),
            },
            b"refresh" => match zrpc::refresh_target(&req.args) {
                Some(RefreshTarget::Cid(cid)) => {
                    if self.grip.lock().ws_refresh_cid(&cid) {
                        Outcome::Success(Value::Null)
                    } else {
                        tracing::debug!("command refresh cid={cid}: no such WebSocket session");
                        Outcome::fail("item-not-found")
                    }
                }
                Some(RefreshTarget::Channel(channel)) => {
                    let n = self.grip.lock().ws_refresh_channel(&channel);
                    tracing::info!("command refresh channel={channel}: {n} WebSocket sessions");
                    Outcome::Success(Value::Null)
                }
                None => Outcome::fail("bad-request"),
            },
            _ => Outcome::fail("method-not-found"),
        }
    }
}

/// The running command socket.
#[derive(Debug)]
pub struct CommandSocket {
    thread: JoinHandle<()>,
    stop: StopFlag,
}

/// Binds the ROUTER socket at `spec` and starts its thread.
pub fn start(spec: &str, ctx: CommandContext) -> Result<CommandSocket, RunError> {
    let context = zmq::Context::new();
    let socket = context
        .socket(zmq::ROUTER)
        .map_err(zmq_err("create command ROUTER"))?;
    socket.set_sndhwm(HWM).map_err(zmq_err("command SNDHWM"))?;
    socket.set_rcvhwm(HWM).map_err(zmq_err("command RCVHWM"))?;
    socket.set_linger(0).map_err(zmq_err("command LINGER"))?;
    bind(&socket, spec)?;
    let stop = StopFlag::default();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("zmq-command".into())
        .spawn(move || {
            run(&socket, &ctx, &flag);
            drop(socket);
            drop(context);
        })
        .map_err(|source| RunError::Os {
            what: "command thread",
            source,
        })?;
    tracing::info!("command socket bound at {spec}");
    Ok(CommandSocket { thread, stop })
}

impl CommandSocket {
    /// Stops the thread (within one poll timeout). Blocks.
    pub fn stop(self) {
        self.stop.stop();
        if self.thread.join().is_err() {
            tracing::error!("command thread panicked");
        }
    }
}

fn run(socket: &zmq::Socket, ctx: &CommandContext, stop: &StopFlag) {
    let mut warn = RateLimitedWarn::new(std::time::Duration::from_secs(10));
    while !stop.is_stopped() {
        match socket.poll(zmq::POLLIN, POLL_MS) {
            Ok(0) | Err(zmq::Error::EINTR) => continue,
            Ok(_) => {}
            Err(err) => {
                tracing::error!("command socket poll failed, it stops: {err}");
                return;
            }
        }
        let mut frames = match socket.recv_multipart(zmq::DONTWAIT) {
            Ok(frames) => frames,
            Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => continue,
            Err(err) => {
                tracing::error!("command socket receive failed: {err}");
                continue;
            }
        };
        // ROUTER adds the peer identity: at least [identity, payload].
        let Some(payload) = frames.pop().filter(|_| !frames.is_empty()) else {
            continue;
        };
        let req = match parse_request(&payload) {
            Ok(req) => req,
            Err(err) => {
                warn.warn(format_args!("command: dropping request: {err}"));
                continue;
            }
        };
        let outcome = ctx.call(&req);
        tracing::debug!(
            "command {}: {}",
            String::from_utf8_lossy(&req.method),
            if matches!(outcome, Outcome::Success(_)) {
                "success"
            } else {
                "failure"
            }
        );
        frames.push(encode_reply(req.id.as_deref(), &outcome));
        if let Err(err) = socket.send_multipart(frames, zmq::DONTWAIT) {
            tracing::debug!("command reply not sent: {err}");
        }
    }
}
