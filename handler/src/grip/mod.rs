//! GRIP over HTTP: holding requests for the hub, delivering publishes, signing requests.
//!
//! * [`hub`]: pure state of every held request and channel (delivery, credits, timers).
//! * [`item`]: the publish item as delivered; [`publish`] converts proto's parsed items.
//! * [`pipeline`]: dedup and `prev-id` sequencing; [`keepalive`]: keep-alive scheduling.
//! * [`sign`]: `Grip-Sig`/`Grip-Feature` on proxied requests and upstream trust.
//! * [`cors`]: `auto_cross_origin` headers.
//! * [`subs`]: subscription reference counts and linger, reported to [`crate::observe`].
//! * [`wssink`]: a WebSocket connection's publish queue, shared by the hub and its task.
//!
//! Every publish input (HTTP control API, ZeroMQ PULL and SUB, the command socket) hands its
//! validated items to [`GripRuntime::publish`], the one entry point of the pipeline.
//!
//! [`GripRuntime`] owns the hub behind one mutex. Callers run an operation through
//! [`GripRuntime::with`]; the effects it produces (connmgr messages, released table entries,
//! requests to hand back to proxy tasks) are carried out after the lock is dropped. Lock
//! order: the hub lock may be held while taking the session-table lock (a hand-off), never the
//! reverse.

pub mod cors;
pub mod hub;
pub mod item;
mod jwt_adapter;
pub mod keepalive;
pub mod pipeline;
pub mod publish;
pub mod sign;
pub mod subs;
pub mod wssink;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::RequestHead;
use holdfast_proto::publish::PublishItem;
use tokio::sync::mpsc;

use self::hub::{Effects, Hub, HubConfig, Resume};
use crate::ipc::{Outbox, OUTBOX_MAX_BYTES};
use crate::observe::{Event, Observers, PublishInput};
use crate::session::{release_held, Sessions};

/// How often the hub's timers are checked; bounds how late a timeout or keep-alive fires.
pub const TICK: Duration = Duration::from_millis(50);

/// Receivers one [`GripRuntime::publish`] call delivers to under one hub lock before it sends
/// what it has and takes the lock again: about a millisecond of delivery work.
pub const PUBLISH_RUN_RECEIVERS: usize = 20_000;

/// The original request of a held session, kept for retries (`Grip-Last` re-requests) and
/// next-link fetches. Shared by the hub record and the tasks that resume it.
#[derive(Debug)]
pub struct Origin {
    /// The request head as the connmgr sent it (its `body` field emptied).
    pub head: RequestHead,
    /// The complete request body (at most 100000 bytes: larger bodies cannot be held).
    pub body: Bytes,
    /// The initial response's gone link, POSTed when the client goes away while held.
    pub gone: Option<Arc<crate::proxy::gone::GoneLink>>,
}

/// The hub plus the means to carry out its effects.
#[derive(Debug)]
pub struct GripRuntime {
    hub: Mutex<Hub>,
    outbox: Outbox,
    sessions: Sessions,
    resumes: mpsc::UnboundedSender<Resume>,
    observers: OnceLock<Observers>,
}

impl GripRuntime {
    /// A runtime over a new hub. The receiver yields held requests to hand back to proxy
    /// tasks; its length is bounded by the number of held requests (each is resumed once).
    pub fn new(
        cfg: HubConfig,
        outbox: Outbox,
        sessions: Sessions,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Resume>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Self {
            hub: Mutex::new(Hub::new(cfg)),
            outbox,
            sessions,
            resumes: tx,
            observers: OnceLock::new(),
        });
        (runtime, rx)
    }

    /// Sets, once, who hears about the hub's subscriptions and deliveries and about publishes.
    pub fn set_observers(&self, observers: Observers) {
        self.lock().set_observers(observers.clone());
        if self.observers.set(observers).is_err() {
            tracing::warn!("hub observers set twice; keeping the first");
        }
    }

    /// Publishes validated items in order: the single entry point for every publish input.
    /// Waits first while the outbox is over half its budget, so a connmgr that stops reading
    /// slows publishers down instead of growing the outbox (deliveries themselves never wait).
    ///
    /// The latency reported per item reaching anybody runs from this call to the moment its
    /// delivery messages were handed to the outbox.
    pub async fn publish(&self, items: Vec<PublishItem>, input: PublishInput) {
        let accepted = Instant::now();
        self.wait_for_outbox().await;
        let observers = self.observers.get();
        // The items of one call are delivered under one hub lock into one set of effects, so
        // a run of items to the same channel leaves as one `Fanout` per worker (see
        // `Effects::push_fanout`): a burst of publishes costs each stream one write, not one
        // per item. The lock is given up (and the effects sent) every
        // `PUBLISH_RUN_RECEIVERS` receivers, which bounds both the time others wait for the
        // hub and how long the run's first item waits for its last.
        let mut fx = Effects::default();
        let mut hub = self.lock();
        let mut run = 0;
        let mut reached = 0;
        for item in items {
            let item = publish::to_item(item);
            // The channel name is kept for the log line only when that line is written.
            let channel = tracing::enabled!(tracing::Level::INFO).then(|| item.channel.clone());
            let receivers = hub.publish(item, Instant::now(), &mut fx);
            if let Some(channel) = channel {
                tracing::info!("publish channel={channel} receivers={receivers}");
            }
            reached += usize::from(receivers > 0);
            if let Some(observers) = observers {
                observers.emit(Event::Published(input));
            }
            run += receivers.max(1);
            if run >= PUBLISH_RUN_RECEIVERS {
                drop(hub);
                self.apply(std::mem::take(&mut fx));
                self.report_latency(accepted, std::mem::take(&mut reached));
                hub = self.lock();
                run = 0;
            }
        }
        drop(hub);
        self.apply(fx);
        self.report_latency(accepted, reached);
    }

    /// One `PublishLatency` per item of a run that reached somebody, once its messages are in
    /// the outbox.
    fn report_latency(&self, accepted: Instant, items: usize) {
        if let Some(observers) = self.observers.get() {
            let latency = accepted.elapsed();
            for _ in 0..items {
                observers.emit(Event::PublishLatency(latency));
            }
        }
    }

    /// Reports an event to the observers (e.g. a publish input's dropped messages).
    pub fn emit(&self, event: Event) {
        if let Some(observers) = self.observers.get() {
            observers.emit(event);
        }
    }

    /// Forgets every last id and re-requests every held request (`/recover`, `recover`).
    pub fn recover(&self) {
        self.with(|hub, now, fx| hub.recover_all(now, fx));
    }

    async fn wait_for_outbox(&self) {
        while self.outbox.queued_bytes() > OUTBOX_MAX_BYTES / 2 && !self.outbox.is_closed() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The session table.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Locks the hub for an operation that must also do other work under the lock (a
    /// hand-off); call [`GripRuntime::apply`] with the effects after dropping the guard.
    pub fn lock(&self) -> MutexGuard<'_, Hub> {
        // The hub keeps its maps consistent between statements; after a panic elsewhere the
        // state is still usable.
        self.hub.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the hub with the current time and carries out its effects.
    pub fn with<R>(&self, f: impl FnOnce(&mut Hub, Instant, &mut Effects) -> R) -> R {
        let mut fx = Effects::default();
        let r = {
            let mut hub = self.lock();
            f(&mut hub, Instant::now(), &mut fx)
        };
        self.apply(fx);
        r
    }

    /// Carries out effects: messages to the outbox (never waiting), released entries out of
    /// the table, resumes to the proxy.
    pub fn apply(&self, fx: Effects) {
        for (worker, msg) in fx.msgs {
            if self.outbox.push(&worker, msg).is_err() {
                break;
            }
        }
        for (key, serial) in fx.released {
            release_held(&self.sessions, &key, serial);
        }
        for resume in fx.resumes {
            // The receiver lives as long as the process; a send after it is gone is moot.
            let _ = self.resumes.send(resume);
        }
    }

    /// Drives the hub's timers until the task is aborted.
    /// The tick is shorter than [`TICK`] when the delivery limiter's batches are.
    pub async fn run_ticker(self: Arc<Self>) {
        let every = self.lock().limiter_interval().map_or(TICK, |i| i.min(TICK));
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            self.with(|hub, now, fx| hub.tick(now, fx));
        }
    }
}
