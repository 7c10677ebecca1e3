//! The ZeroMQ publish inputs (reference §6.3, §6.4).
//!
//! * PULL, bound on `push_in_spec` (receive HWM 101000, as Pushpin): one item per single-frame
//!   message, `J`+JSON, `T`+tnetstring or a bare tnetstring.
//! * SUB on `push_in_sub_specs`: bound by default, connected to every spec with
//!   `push_in_sub_connect=true` (TCP keep-alive idle 30 s, 6 probes, 5 s apart). Messages are
//!   `[channel, payload]`; the frame's channel overrides the item's. The socket is subscribed
//!   to a channel (its exact name as the ZeroMQ prefix) only while this instance has
//!   listeners for it: the hub's [`Event::Listen`]/[`Event::Unlisten`] (see
//!   [`crate::grip::subs`]) are recorded by [`SubInterest`] and applied by the socket thread,
//!   so an XPUB publisher sees `\x01<channel>` / `\x00<channel>` for exactly those channels.
//!   Send HWM is unlimited so no subscription message is ever dropped.
//!
//! Both sockets live on one thread that polls them. Malformed or multi-frame messages, and
//! items whose `http-response` could not be written to a client ([`check_item`]), are logged
//! (rate-limited) and dropped, counted as `malformed` drops. A valid item goes into the
//! one publish pipeline ([`GripRuntime::publish`]) run from this thread with
//! [`Handle::block_on`]; it waits only for the outbox back-pressure, during which the
//! thread stops reading and ZeroMQ's queue (bounded by the HWM) holds the rest.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use holdfast_proto::publish::{parse_frame, FrameError, PublishItem};
use tokio::runtime::Handle;

use crate::control::check::check_item;
use crate::error::RunError;
use crate::grip::GripRuntime;
use crate::observe::{DropReason, Event, Observer, PublishInput};
use crate::zmqutil::{bind, zmq_err, RateLimitedWarn, StopFlag};

/// PULL receive high-water mark (Pushpin's).
pub const PULL_HWM: i32 = 101_000;

/// Poll timeout: bounds how late a subscription change or a stop is applied.
const POLL_MS: i64 = 50;

/// Messages taken from one socket per pass before the other gets its turn.
const MAX_RECV_PER_PASS: usize = 256;

/// Channels whose SUB subscription should change, coalesced per channel (bounded by the
/// number of channels with listeners plus those that just lost them).
#[derive(Debug, Default)]
pub struct SubInterest {
    pending: Mutex<HashMap<Arc<str>, bool>>,
}

impl SubInterest {
    /// Takes the desired state of every channel that changed.
    pub fn take(&self) -> HashMap<Arc<str>, bool> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn set(&self, channel: &Arc<str>, want: bool) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(channel.clone(), want);
    }
}

impl Observer for SubInterest {
    fn observe(&self, event: &Event) {
        match event {
            Event::Listen(channel) => self.set(channel, true),
            Event::Unlisten(channel) => self.set(channel, false),
            _ => {}
        }
    }
}

/// What a SUB socket must do for a batch of interest changes, given what it is subscribed
/// to: `(subscribe, unsubscribe)`. Updates `subscribed`.
pub fn plan_subscriptions(
    subscribed: &mut HashSet<Arc<str>>,
    changes: HashMap<Arc<str>, bool>,
) -> (Vec<Arc<str>>, Vec<Arc<str>>) {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for (channel, want) in changes {
        if want {
            if subscribed.insert(channel.clone()) {
                add.push(channel);
            }
        } else if subscribed.remove(&channel) {
            remove.push(channel);
        }
    }
    (add, remove)
}

/// Where the inputs are.
#[derive(Clone, Debug, Default)]
pub struct InputConfig {
    /// `push_in_spec`.
    pub pull: Option<String>,
    /// `push_in_sub_specs`.
    pub sub: Vec<String>,
    /// `push_in_sub_connect`.
    pub sub_connect: bool,
}

/// The running input thread.
#[derive(Debug)]
pub struct PublishInputs {
    thread: JoinHandle<()>,
    stop: StopFlag,
}

/// Opens the sockets and starts the thread (`None` when no input could be opened). A socket
/// that cannot be bound is logged and left out, like the HTTP control API: the handler keeps
/// serving with the inputs it has.
pub fn start(
    cfg: &InputConfig,
    grip: Arc<GripRuntime>,
    runtime: Handle,
    interest: Arc<SubInterest>,
) -> Result<Option<PublishInputs>, RunError> {
    if cfg.pull.is_none() && cfg.sub.is_empty() {
        return Ok(None);
    }
    let context = zmq::Context::new();
    let pull = match &cfg.pull {
        Some(spec) => {
            let s = context.socket(zmq::PULL).map_err(zmq_err("create PULL"))?;
            s.set_rcvhwm(PULL_HWM).map_err(zmq_err("PULL RCVHWM"))?;
            s.set_linger(0).map_err(zmq_err("PULL LINGER"))?;
            match bind(&s, spec) {
                Ok(()) => {
                    tracing::info!("publish PULL socket bound at {spec}");
                    Some(s)
                }
                Err(err) => {
                    tracing::warn!("{err}; publishing over ZeroMQ PULL is off");
                    None
                }
            }
        }
        None => None,
    };
    let sub = if cfg.sub.is_empty() {
        None
    } else {
        let s = context.socket(zmq::SUB).map_err(zmq_err("create SUB"))?;
        s.set_sndhwm(0).map_err(zmq_err("SUB SNDHWM"))?;
        s.set_linger(0).map_err(zmq_err("SUB LINGER"))?;
        if cfg.sub_connect {
            s.set_tcp_keepalive(1).map_err(zmq_err("SUB keepalive"))?;
            s.set_tcp_keepalive_idle(30)
                .map_err(zmq_err("SUB keepalive idle"))?;
            s.set_tcp_keepalive_cnt(6)
                .map_err(zmq_err("SUB keepalive count"))?;
            s.set_tcp_keepalive_intvl(5)
                .map_err(zmq_err("SUB keepalive interval"))?;
            for spec in &cfg.sub {
                s.connect(spec).map_err(|source| RunError::Bind {
                    spec: spec.clone(),
                    source,
                })?;
                tracing::info!("publish SUB socket connecting to {spec}");
            }
            Some(s)
        } else {
            let mut bound = 0;
            for spec in &cfg.sub {
                match bind(&s, spec) {
                    Ok(()) => {
                        bound += 1;
                        tracing::info!("publish SUB socket bound at {spec}");
                    }
                    Err(err) => tracing::warn!("{err}; not receiving publishes there"),
                }
            }
            (bound > 0).then_some(s)
        }
    };
    if pull.is_none() && sub.is_none() {
        return Ok(None);
    }
    let stop = StopFlag::default();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("zmq-publish-in".into())
        .spawn(move || {
            let mut input = Input {
                pull,
                sub,
                grip,
                runtime,
                interest,
                subscribed: HashSet::new(),
                warn: RateLimitedWarn::new(Duration::from_secs(10)),
            };
            input.run(&flag);
            drop(input);
            drop(context);
        })
        .map_err(|source| RunError::Os {
            what: "publish input thread",
            source,
        })?;
    Ok(Some(PublishInputs { thread, stop }))
}

impl PublishInputs {
    /// Stops the thread (within one poll timeout). Blocks.
    pub fn stop(self) {
        self.stop.stop();
        if self.thread.join().is_err() {
            tracing::error!("publish input thread panicked");
        }
    }
}

struct Input {
    pull: Option<zmq::Socket>,
    sub: Option<zmq::Socket>,
    grip: Arc<GripRuntime>,
    runtime: Handle,
    interest: Arc<SubInterest>,
    subscribed: HashSet<Arc<str>>,
    warn: RateLimitedWarn,
}

impl Input {
    fn run(&mut self, stop: &StopFlag) {
        while !stop.is_stopped() {
            self.apply_interest();
            let (pull_ready, sub_ready) = {
                let mut items = Vec::with_capacity(2);
                if let Some(s) = &self.pull {
                    items.push(s.as_poll_item(zmq::POLLIN));
                }
                if let Some(s) = &self.sub {
                    items.push(s.as_poll_item(zmq::POLLIN));
                }
                match zmq::poll(&mut items, POLL_MS) {
                    Ok(_) => {}
                    Err(zmq::Error::EINTR) => continue,
                    Err(err) => {
                        tracing::error!("publish input poll failed, inputs stop: {err}");
                        return;
                    }
                }
                let pull_ready = self.pull.is_some() && items[0].is_readable();
                let sub_ready = self.sub.is_some() && items[items.len() - 1].is_readable();
                (pull_ready, sub_ready)
            };
            if pull_ready {
                self.drain(false);
            }
            if sub_ready {
                self.drain(true);
            }
        }
    }

    fn apply_interest(&mut self) {
        let Some(sub) = &self.sub else {
            return;
        };
        let changes = self.interest.take();
        if changes.is_empty() {
            return;
        }
        let (add, remove) = plan_subscriptions(&mut self.subscribed, changes);
        for channel in add {
            tracing::debug!("SUB subscribe {channel}");
            if let Err(err) = sub.set_subscribe(channel.as_bytes()) {
                tracing::warn!("cannot subscribe SUB socket to {channel}: {err}");
            }
        }
        for channel in remove {
            tracing::debug!("SUB unsubscribe {channel}");
            if let Err(err) = sub.set_unsubscribe(channel.as_bytes()) {
                tracing::warn!("cannot unsubscribe SUB socket from {channel}: {err}");
            }
        }
    }

    /// Receives what is waiting (at most `MAX_RECV_PER_PASS` messages) and publishes it in
    /// one call, so a burst is delivered in runs (see [`GripRuntime::publish`]).
    fn drain(&mut self, from_sub: bool) {
        let input = if from_sub {
            PublishInput::ZmqSub
        } else {
            PublishInput::ZmqPull
        };
        let mut items = Vec::new();
        for _ in 0..MAX_RECV_PER_PASS {
            let socket = if from_sub { &self.sub } else { &self.pull };
            let Some(socket) = socket else { break };
            let frames = match socket.recv_multipart(zmq::DONTWAIT) {
                Ok(frames) => frames,
                Err(zmq::Error::EAGAIN) => break,
                Err(zmq::Error::EINTR) => continue,
                Err(err) => {
                    tracing::error!("publish input receive failed: {err}");
                    break;
                }
            };
            let item = if from_sub {
                self.parse_sub(frames)
            } else {
                self.parse_pull(frames)
            };
            match item {
                Some(item) => items.push(item),
                None => self.grip.emit(Event::Dropped {
                    reason: DropReason::Malformed,
                    count: 1,
                }),
            }
        }
        if !items.is_empty() {
            self.runtime.block_on(self.grip.publish(items, input));
        }
    }

    fn parse_pull(&mut self, frames: Vec<Vec<u8>>) -> Option<PublishItem> {
        if frames.len() != 1 {
            self.warn.warn(format_args!(
                "IN pull: received message with {} parts, expected 1; dropped",
                frames.len()
            ));
            return None;
        }
        match checked(parse_frame(&frames[0], None)) {
            Ok(item) => Some(item),
            Err(err) => {
                self.warn.warn(format_args!("IN pull: {err}; dropped"));
                None
            }
        }
    }

    fn parse_sub(&mut self, frames: Vec<Vec<u8>>) -> Option<PublishItem> {
        if frames.len() != 2 {
            self.warn.warn(format_args!(
                "IN sub: received message with {} parts, expected 2; dropped",
                frames.len()
            ));
            return None;
        }
        let Ok(channel) = std::str::from_utf8(&frames[0]) else {
            self.warn
                .warn(format_args!("IN sub: channel is not UTF-8; dropped"));
            return None;
        };
        match checked(parse_frame(&frames[1], Some(channel))) {
            Ok(item) => Some(item),
            Err(err) => {
                self.warn.warn(format_args!("IN sub: {err}; dropped"));
                None
            }
        }
    }
}

/// A parsed item that can also be written to clients as it is (see [`check_item`]).
fn checked(parsed: Result<PublishItem, FrameError>) -> Result<PublishItem, FrameError> {
    let item = parsed?;
    check_item(&item)?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn interest_coalesces_and_plans_only_real_changes() {
        let interest = SubInterest::default();
        interest.observe(&Event::Listen(ch("a")));
        interest.observe(&Event::Listen(ch("b")));
        interest.observe(&Event::Unlisten(ch("b")));
        interest.observe(&Event::Unlisten(ch("z")));
        let mut subscribed = HashSet::new();
        let (mut add, mut remove) = plan_subscriptions(&mut subscribed, interest.take());
        add.sort();
        remove.sort();
        // b came and went within one pass; z was never subscribed.
        assert_eq!(add, [ch("a")]);
        assert!(remove.is_empty());
        assert!(interest.take().is_empty());
        interest.observe(&Event::Listen(ch("a")));
        let (add, remove) = plan_subscriptions(&mut subscribed, interest.take());
        assert!(add.is_empty() && remove.is_empty(), "already subscribed");
        interest.observe(&Event::Unlisten(ch("a")));
        let (add, remove) = plan_subscriptions(&mut subscribed, interest.take());
        assert!(add.is_empty());
        assert_eq!(remove, [ch("a")]);
        assert!(subscribed.is_empty());
    }
}
