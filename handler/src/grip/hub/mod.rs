//! The hub: every held GRIP request, the channel subscription table and publish delivery.
//!
//! It is pure state: every operation takes the current time and appends what must happen to an
//! [`Effects`] value (messages for the connmgr, sessions to hand back to a proxy task, table
//! entries to release). [`super::GripRuntime`] holds the hub behind one mutex and carries the
//! effects out after unlocking, so the hub is unit-tested without sockets or clocks.
//!
//! # Memory per held request
//!
//! A held request is one [`Held`] record (its key, credits, an empty queue, its subscriptions
//! and a shared [`Origin`]) plus one entry per channel in the subscription sets and at most one
//! entry in the timer set. Timeout responses and keep-alive settings are `Arc`s shared with the
//! instruction; payloads are `Bytes` shared by every receiver. There is no task per held
//! request: one ticker drives every timer ([`Hub::tick`]).
//!
//! # Delivery
//!
//! A publish reaching stream holds is grouped by connmgr worker and sent as ONE
//! `ToConnmgr::Fanout` per worker, with the payload `Bytes` shared. A receiver without credit
//! for the whole item queues it (at most [`outflow::MAX_QUEUED_ITEMS`]); beyond that the
//! delivery is dropped and counted ([`Hub::dropped`]). Response-hold completions are individual
//! `Response` messages, batched per worker by the outbox.
//!
//! With `message_rate` or `message_hwm` configured, deliveries go through a [`Limiter`]
//! instead (reference §6.5 step 3): each (receiver, item) pair is queued in its route's bucket
//! and delivered when the limiter lets it through, from [`Hub::publish`] (first batch) and
//! [`Hub::tick`]; [`Hub::limiter_interval`] tells the ticker how often to call. Without either
//! key there is no limiter and delivery is immediate, with no extra allocation.
//!
//! # Next-link recovery
//!
//! A stream hold with a next link has a second timer (`link_timers`): when it fires and not
//! every subscribed channel delivered a message since the previous check, the hold goes back
//! to a proxy task to fetch the link ([`ResumeKind::NextLink`]); otherwise a new period starts.
//! Limiter buckets are per route id (held requests record their route's explicit id).

mod deliver;
mod filters;
mod idmap;
pub mod limiter;
pub mod outflow;
mod respond;
mod timers;
mod types;
mod ws;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{Body, Fanout, Header, ResponseHead, StreamId, ToConnmgr};

use self::deliver::applies_to;
pub use self::filters::Filters;
pub(crate) use self::idmap::shrink_sparse;
use self::idmap::IdMap;
use self::limiter::{BucketKey, Limiter};
use self::outflow::Outflow;
pub use self::respond::{build_response, Reply};
pub use self::types::*;
pub use self::ws::WsSubscribed;
use super::item::Item;
use super::keepalive::KeepAlive;
use super::pipeline::{Dedup, Sequencer};
use super::subs::SubTracker;
use super::wssink::WsSink;
use super::Origin;
use crate::ipc::WorkerId;
use crate::observe::{DropReason, Event, Observers, SubMode};
use crate::proxy::jsonp::Jsonp;
use crate::session::SessionKey;

/// Delay between a channel's first subscription and the update of its held requests (response
/// holds are re-requested, streams with a next link fetch it).
pub const FIRST_SUBSCRIPTION_DELAY: Duration = Duration::from_millis(1000);

/// Channels whose last published id is remembered at most (Pushpin's LRU capacity).
const LAST_IDS_CAPACITY: usize = 1_000_000;

/// Minimum spacing of the "deliveries dropped" warning.
const DROP_WARN_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum State {
    Response {
        reply: Arc<Reply>,
        jsonp: Option<Arc<Jsonp>>,
    },
    Stream {
        keep_alive: Option<Arc<KeepAlive>>,
        next_link: Option<Arc<str>>,
    },
    /// The response is complete as far as the hub is concerned; queued bytes still go out,
    /// then the stream ends.
    Ending,
    /// A WebSocket connection: its task owns it, the hub only delivers publishes to its sink.
    Ws {
        sink: Arc<WsSink>,
        /// `Connection-Id` (the `refresh` command's `cid`).
        cid: Arc<str>,
    },
}

#[derive(Debug)]
struct Held {
    key: SessionKey,
    serial: u64,
    flow: Outflow,
    subs: Vec<Sub>,
    meta: Option<Arc<BTreeMap<String, String>>>,
    /// The original request (HTTP holds; WebSockets have none).
    origin: Option<Arc<Origin>>,
    route: BucketKey,
    state: State,
    /// Response timeout or next keep-alive; the timer set may hold an earlier, stale entry.
    deadline: Option<Instant>,
    /// Time of this request's entry in `timers` (`deadline` or an earlier, stale one), so
    /// [`Hub::remove`] takes it out: a long-poll answered by a publish would otherwise leave
    /// its entry behind until the timeout, and at thousands of answers per second those dead
    /// entries piled up to megabytes.
    timer_at: Option<Instant>,
    /// Next-link recovery check (stream holds with a next link), in `link_timers`.
    link_deadline: Option<Instant>,
    link_timeout: Duration,
    /// Bit `i`: subscription `i` delivered a message since the last check (subscriptions past
    /// the 64th count as always delivered).
    link_seen: u64,
}

impl Held {
    /// Output just went to a stream with keep-alives: the next keep-alive moves out (the
    /// keep-alive's own rule, [`KeepAlive::after_output`]).
    fn output_sent(&mut self, now: Instant) {
        if let (
            State::Stream {
                keep_alive: Some(ka),
                ..
            },
            Some(current),
        ) = (&self.state, self.deadline)
        {
            self.deadline = Some(ka.after_output(current, now));
        }
    }
}

#[derive(Debug, Default)]
struct Channel {
    /// Subscribed held requests and their mode.
    subs: IdMap<SubMode>,
    seq: Sequencer,
    /// Set while the channel has no subscriber; it is forgotten after the linger.
    empty_since: Option<Instant>,
}

/// Counters for stats and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Deliveries dropped because a session's queue was full.
    pub dropped: u64,
    /// Items delivered to at least one receiver.
    pub delivered: u64,
    /// Deliveries dropped because their route's limiter bucket was at `message_hwm`.
    pub hwm_dropped: u64,
}

/// A delivery waiting in the limiter: (held request id, item).
type Action = (u64, Arc<Item>);

/// All held requests and subscriptions.
#[derive(Debug)]
pub struct Hub {
    cfg: HubConfig,
    next_id: u64,
    sessions: IdMap<Held>,
    by_key: HashMap<SessionKey, u64>,
    channels: HashMap<Arc<str>, Channel>,
    timers: BTreeSet<(Instant, u64)>,
    /// Next-link recovery checks.
    link_timers: BTreeSet<(Instant, u64)>,
    /// First-subscription updates due.
    updates: VecDeque<(Instant, Arc<str>)>,
    /// Emptied channels, in the order they emptied.
    lingering: VecDeque<(Instant, Arc<str>)>,
    /// Channels with items held back by the sequencer.
    sequencing: HashSet<Arc<str>>,
    last_ids: HashMap<Arc<str>, String>,
    dedup: Dedup,
    /// Per-(mode, channel) counts for stats and the SUB socket; holds the observers.
    watch: SubTracker,
    counters: Counters,
    last_drop_warning: Option<Instant>,
    dropped_since_warning: u64,
    /// Present only when `message_rate` or `message_hwm` is set.
    limiter: Option<Box<Limiter<Action>>>,
    last_hwm_warning: Option<Instant>,
    hwm_dropped_since_warning: u64,
    /// WebSocket connections by `Connection-Id`.
    ws_cids: HashMap<Arc<str>, u64>,
}

impl Hub {
    /// An empty hub.
    pub fn new(cfg: HubConfig) -> Self {
        let limiter = (cfg.message_rate.is_some() || cfg.message_hwm.is_some())
            .then(|| Box::new(Limiter::new(cfg.message_rate, cfg.message_hwm)));
        Self {
            limiter,
            last_hwm_warning: None,
            hwm_dropped_since_warning: 0,
            dedup: Dedup::new(cfg.id_cache_ttl),
            watch: SubTracker::new(cfg.subscription_linger),
            cfg,
            next_id: 0,
            sessions: IdMap::default(),
            by_key: HashMap::new(),
            channels: HashMap::new(),
            timers: BTreeSet::new(),
            link_timers: BTreeSet::new(),
            updates: VecDeque::new(),
            lingering: VecDeque::new(),
            sequencing: HashSet::new(),
            last_ids: HashMap::new(),
            counters: Counters::default(),
            last_drop_warning: None,
            dropped_since_warning: 0,
            ws_cids: HashMap::new(),
        }
    }

    /// Sets who hears about connections, subscriptions and deliveries (stats, metrics, the
    /// SUB socket); they are called under the hub lock (see [`crate::observe`]).
    pub fn set_observers(&mut self, observers: Observers) {
        self.watch.set_observers(observers);
    }

    /// Number of (mode, channel) subscriptions, lingering ones included.
    pub fn subscriptions(&self) -> usize {
        self.watch.len()
    }

    /// Number of held requests.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Number of subscribers of a channel (prefixed name).
    pub fn subscribers(&self, channel: &str) -> usize {
        self.channels.get(channel).map_or(0, |c| c.subs.len())
    }

    /// Counters.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Takes over a request. Response holds whose `prev-id` is already outdated are handed
    /// straight back for a retry (with `Grip-Last`) instead.
    pub fn hold(&mut self, mut hold: Hold, now: Instant, fx: &mut Effects) {
        if let Some(old) = self.by_key.get(&hold.key).copied() {
            self.remove(old, now);
        }
        hold.subs.truncate(self.cfg.connection_subscription_max);
        if let HoldMode::Response { .. } = hold.mode {
            let stale: Vec<(String, String)> = hold
                .subs
                .iter()
                .filter_map(|s| {
                    let prev = s.prev_id.as_ref()?;
                    let last = self.last_ids.get(&s.name)?;
                    (last != prev).then(|| (s.unprefixed().to_string(), last.clone()))
                })
                .collect();
            if !stale.is_empty() {
                for sub in &hold.subs {
                    self.last_ids.remove(&sub.name);
                }
                fx.resumes.push(Resume {
                    key: hold.key,
                    serial: hold.serial,
                    credits: hold.credits,
                    origin: hold.origin,
                    grip_last: stale,
                    kind: ResumeKind::Retry,
                });
                return;
            }
        }

        self.next_id += 1;
        let id = self.next_id;
        let mode = match hold.mode {
            HoldMode::Response { .. } => SubMode::Response,
            HoldMode::Stream { .. } => SubMode::Stream,
        };
        for sub in &mut hold.subs {
            sub.name = self.subscribe(id, &sub.name, mode, now);
        }
        let mut flow = Outflow::new(hold.credits);
        let mut link = None;
        let (state, deadline) = match hold.mode {
            HoldMode::Response {
                timeout,
                reply,
                jsonp,
            } => (State::Response { reply, jsonp }, Some(now + timeout)),
            HoldMode::Stream {
                head,
                keep_alive,
                next_link,
                link_timeout,
            } => {
                if next_link.is_some() {
                    link = Some(link_timeout);
                }
                if let Some(head) = head {
                    let first = flow.split_first(head.body);
                    fx.msgs.push((
                        hold.key.worker.clone(),
                        ToConnmgr::Response(ResponseHead {
                            id: hold.key.id,
                            code: head.code,
                            reason: head.reason,
                            headers: head.headers,
                            body: first,
                            more: true,
                        }),
                    ));
                }
                let deadline = keep_alive
                    .as_ref()
                    .map(|ka| ka.next(now, rand::random::<u64>()));
                (
                    State::Stream {
                        keep_alive,
                        next_link,
                    },
                    deadline,
                )
            }
        };
        if let Some(at) = deadline {
            self.timers.insert((at, id));
        }
        let link_deadline = link.map(|t| now + t);
        if let Some(at) = link_deadline {
            self.link_timers.insert((at, id));
        }
        self.by_key.insert(hold.key.clone(), id);
        self.sessions.insert(
            id,
            Held {
                key: hold.key,
                serial: hold.serial,
                flow,
                subs: hold.subs,
                meta: hold.meta,
                origin: Some(hold.origin),
                route: hold.route,
                state,
                deadline,
                timer_at: deadline,
                link_deadline,
                link_timeout: link.unwrap_or_default(),
                link_seen: 0,
            },
        );
    }

    /// Adds `id` to channel `name` and returns the channel's own name: storing that one in the
    /// subscription lets a delivery recognise it by pointer instead of comparing the strings.
    fn subscribe(&mut self, id: u64, name: &Arc<str>, mode: SubMode, now: Instant) -> Arc<str> {
        if self.cfg.update_on_first_subscription && !self.channels.contains_key(name) {
            self.updates
                .push_back((now + FIRST_SUBSCRIPTION_DELAY, name.clone()));
        }
        let entry = self.channels.entry(name.clone());
        // An occupied entry's key is the one stored in the map.
        let key = entry.key().clone();
        let channel = entry.or_default();
        if channel.subs.insert(id, mode).is_none() {
            self.watch.add(mode, name);
        }
        channel.empty_since = None;
        key
    }

    /// Forgets a held request (unsubscribing it) and returns its record.
    fn remove(&mut self, id: u64, now: Instant) -> Option<Held> {
        let held = self.sessions.remove(&id)?;
        self.by_key.remove(&held.key);
        if let Some(at) = held.timer_at {
            self.timers.remove(&(at, id));
        }
        if let Some(at) = held.link_deadline {
            self.link_timers.remove(&(at, id));
        }
        shrink_sparse(&mut self.sessions);
        shrink_sparse(&mut self.by_key);
        if let State::Ws { sink, cid } = &held.state {
            sink.close();
            self.ws_cids.remove(cid);
            shrink_sparse(&mut self.ws_cids);
        }
        for sub in &held.subs {
            self.unsubscribe(id, &sub.name, now);
        }
        Some(held)
    }

    fn unsubscribe(&mut self, id: u64, name: &Arc<str>, now: Instant) {
        if let Some(channel) = self.channels.get_mut(name) {
            if let Some(mode) = channel.subs.remove(&id) {
                self.watch.remove(mode, name, now);
                shrink_sparse(&mut channel.subs);
            }
            if channel.subs.is_empty() && channel.empty_since.is_none() {
                channel.empty_since = Some(now);
                self.lingering.push_back((now, name.clone()));
            }
        }
    }

    /// Response credits returned by the connmgr for several held streams of one worker, in
    /// order (what [`crate::session::SessionSpawner::held_credits`] receives): one call, so one
    /// lock of the hub, for the thousands of credits a large fan-out brings back.
    pub fn credits(
        &mut self,
        worker: &WorkerId,
        credits: &[(StreamId, u32)],
        now: Instant,
        fx: &mut Effects,
    ) {
        for &(id, bytes) in credits {
            let key = SessionKey {
                worker: worker.clone(),
                id,
            };
            self.credit(&key, bytes, now, fx);
        }
    }

    /// Response credits returned by the connmgr for a held stream.
    pub fn credit(&mut self, key: &SessionKey, bytes: u32, now: Instant, fx: &mut Effects) {
        let Some(id) = self.by_key.get(key).copied() else {
            return;
        };
        let Some(held) = self.sessions.get_mut(&id) else {
            return;
        };
        let chunks = held.flow.add_credits(u64::from(bytes));
        let sent = !chunks.is_empty();
        for data in chunks {
            fx.msgs.push((
                held.key.worker.clone(),
                ToConnmgr::Body(Body {
                    id: held.key.id,
                    data,
                    more: true,
                }),
            ));
        }
        if sent {
            held.output_sent(now);
        }
        if matches!(held.state, State::Ending) && held.flow.is_idle() {
            self.finish(id, now, fx);
        }
    }

    /// Ends a held stream whose queue has drained: the final empty body, then release.
    fn finish(&mut self, id: u64, now: Instant, fx: &mut Effects) {
        if let Some(held) = self.remove(id, now) {
            fx.msgs.push((
                held.key.worker.clone(),
                ToConnmgr::Body(Body {
                    id: held.key.id,
                    data: Bytes::new(),
                    more: false,
                }),
            ));
            fx.released.push((held.key, held.serial));
        }
    }

    /// The client side of a held stream ended; its table entry is already gone. Returns the
    /// held request's origin (for its gone link), if it was held.
    pub fn closed(&mut self, key: &SessionKey, now: Instant) -> Option<Arc<Origin>> {
        let id = self.by_key.get(key).copied()?;
        self.remove(id, now).and_then(|held| held.origin)
    }

    /// Publishes one validated item: dedup, sequencing, delivery. Returns the number of
    /// receivers (for the `publish channel=<c> receivers=<n>` log line).
    pub fn publish(&mut self, item: Item, now: Instant, fx: &mut Effects) -> usize {
        if self
            .dedup
            .is_duplicate(&item.channel, item.id.as_deref(), now)
        {
            tracing::debug!(
                "publish channel={} id={:?}: duplicate, dropped",
                item.channel,
                item.id
            );
            self.watch.observers().emit(Event::Dropped {
                reason: DropReason::Duplicate,
                count: 1,
            });
            return 0;
        }
        let ready = match self.channels.get_mut(item.channel.as_str()) {
            Some(channel) if !channel.subs.is_empty() => {
                let name: Arc<str> = Arc::from(item.channel.as_str());
                let ready = channel.seq.offer(item, now);
                if channel.seq.has_pending() {
                    self.sequencing.insert(name);
                }
                ready
            }
            _ => vec![item],
        };
        let receivers = ready.into_iter().map(|i| self.deliver(&i, now, fx)).sum();
        if self.limiter.is_some() {
            self.drain_limiter(now, fx);
        }
        receivers
    }

    /// How often the ticker must call [`Hub::tick`] for the delivery limiter (`None`: no
    /// limiter, or no rate).
    pub fn limiter_interval(&self) -> Option<Duration> {
        self.limiter.as_ref().and_then(|l| l.interval())
    }

    fn deliver(&mut self, item: &Item, now: Instant, fx: &mut Effects) -> usize {
        let name = item.channel.as_str();
        match &item.id {
            Some(id) => {
                if self.last_ids.len() >= LAST_IDS_CAPACITY && !self.last_ids.contains_key(name) {
                    self.last_ids.clear();
                }
                self.last_ids.insert(Arc::from(name), id.clone());
            }
            None => {
                self.last_ids.remove(name);
            }
        }
        let ids: Vec<u64> = match self.channels.get(name) {
            Some(c) => c.subs.keys().copied().collect(),
            None => Vec::new(),
        };
        if self.limiter.is_some() {
            return self.enqueue(ids, item, now);
        }
        let reached = self.deliver_to(ids, item, now, fx);
        if reached.total() > 0 {
            self.counters.delivered += 1;
            self.report_delivery(item, reached);
        }
        self.warn_drops(now);
        reached.total()
    }

    /// Queues the deliveries of `item` to `ids` in the limiter. Returns the receivers the
    /// item applies to, dropped ones included (as Pushpin's log line counts them).
    fn enqueue(&mut self, ids: Vec<u64>, item: &Item, now: Instant) -> usize {
        let Some(limiter) = self.limiter.as_mut() else {
            return 0;
        };
        let shared = Arc::new(item.clone());
        let mut receivers: usize = 0;
        let mut dropped: u64 = 0;
        for id in ids {
            let Some(held) = self.sessions.get(&id) else {
                continue;
            };
            if !applies_to(&held.state, item) {
                continue;
            }
            receivers += 1;
            if !limiter.add(&held.route, (id, shared.clone())) {
                dropped += 1;
            }
        }
        if receivers as u64 > dropped {
            self.counters.delivered += 1;
        }
        if dropped > 0 {
            self.note_dropped(DropReason::Hwm, dropped);
            let due = self
                .last_hwm_warning
                .is_none_or(|t| now.saturating_duration_since(t) >= DROP_WARN_INTERVAL);
            if due {
                tracing::warn!(
                    "exceeded publish hwm ({}), dropped {} deliveries ({} in total)",
                    self.cfg.message_hwm.unwrap_or(0),
                    self.hwm_dropped_since_warning,
                    self.counters.hwm_dropped
                );
                self.hwm_dropped_since_warning = 0;
                self.last_hwm_warning = Some(now);
            }
        }
        receivers
    }

    /// Runs the deliveries the limiter lets through at `now`.
    fn drain_limiter(&mut self, now: Instant, fx: &mut Effects) {
        let mut due = Vec::new();
        match self.limiter.as_mut() {
            Some(limiter) if !limiter.is_empty() => limiter.take_due(now, &mut due),
            _ => return,
        }
        // Consecutive actions for the same item are delivered together (one fan-out per
        // worker); a session sits in one bucket, so its items keep their order.
        let mut actions = due.into_iter().peekable();
        while let Some((id, item)) = actions.next() {
            let mut ids = vec![id];
            while let Some((next, _)) = actions.next_if(|(_, i)| Arc::ptr_eq(i, &item)) {
                ids.push(next);
            }
            let reached = self.deliver_to(ids, &item, now, fx);
            if reached.total() > 0 {
                self.report_delivery(&item, reached);
            }
        }
        self.warn_drops(now);
    }

    /// Sends a response hold's final response (built from its timeout response by `build`).
    fn complete_with(
        &mut self,
        id: u64,
        build: impl FnOnce(&Reply) -> Reply,
        now: Instant,
        fx: &mut Effects,
    ) {
        let Some(held) = self.sessions.get_mut(&id) else {
            return;
        };
        let State::Response { reply, jsonp } = &held.state else {
            return;
        };
        let mut reply = build(reply);
        if let Some(jsonp) = jsonp {
            reply = jsonp.wrap_held(reply);
        }
        reply
            .headers
            .push(Header::new("Content-Length", reply.body.len().to_string()));
        let first = held.flow.split_first(reply.body);
        let more = !held.flow.is_idle();
        fx.msgs.push((
            held.key.worker.clone(),
            ToConnmgr::Response(ResponseHead {
                id: held.key.id,
                code: reply.code,
                reason: reply.reason,
                headers: reply.headers,
                body: first,
                more,
            }),
        ));
        held.state = State::Ending;
        held.deadline = None;
        let subs = std::mem::take(&mut held.subs);
        if more {
            // Unsubscribe now; the record stays until the body drained.
            for sub in &subs {
                self.unsubscribe(id, &sub.name, now);
            }
        } else if let Some(held) = self.remove(id, now) {
            for sub in &subs {
                self.unsubscribe(id, &sub.name, now);
            }
            fx.released.push((held.key, held.serial));
        }
    }

    /// `action: close` on a stream: end it once its queue drained.
    fn end_stream(&mut self, id: u64, now: Instant, fx: &mut Effects) {
        let Some(held) = self.sessions.get_mut(&id) else {
            return;
        };
        held.state = State::Ending;
        held.deadline = None;
        let subs = std::mem::take(&mut held.subs);
        for sub in &subs {
            self.unsubscribe(id, &sub.name, now);
        }
        let idle = self.sessions.get(&id).is_some_and(|h| h.flow.is_idle());
        if idle {
            self.finish(id, now, fx);
        }
    }

    /// Retry (response hold) or next-link fetch (stream with a next link); a stream without a
    /// next link has nothing to recover from and keeps going.
    fn recover(&mut self, id: u64, now: Instant, fx: &mut Effects) {
        let Some(held) = self.sessions.get(&id) else {
            return;
        };
        let kind = match &held.state {
            State::Response { .. } => ResumeKind::Retry,
            State::Stream {
                next_link: Some(url),
                ..
            } => {
                if !held.flow.is_idle() {
                    // Pushpin drops the queue on a hint; the fetch appends after what was sent.
                    tracing::debug!("stream {}: hint drops queued items", held.key.id);
                }
                ResumeKind::NextLink(url.clone())
            }
            _ => return,
        };
        let Some(mut held) = self.remove(id, now) else {
            return;
        };
        let Some(origin) = held.origin.take() else {
            return;
        };
        held.flow.clear();
        let grip_last = held
            .subs
            .iter()
            .filter_map(|s| {
                let last = s
                    .prev_id
                    .clone()
                    .or_else(|| self.last_ids.get(&s.name).cloned())?;
                Some((s.unprefixed().to_string(), last))
            })
            .collect();
        fx.resumes.push(Resume {
            key: held.key,
            serial: held.serial,
            credits: held.flow.credits(),
            origin,
            grip_last,
            kind,
        });
    }

    /// Forgets every last id and re-requests every held request (`POST /recover`).
    pub fn recover_all(&mut self, now: Instant, fx: &mut Effects) {
        self.last_ids.clear();
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.recover(id, now, fx);
        }
    }

    /// Counts `count` messages dropped for `reason` (totals and the next warning's tally) and
    /// reports them once.
    fn note_dropped(&mut self, reason: DropReason, count: u64) {
        if count == 0 {
            return;
        }
        match reason {
            DropReason::Hwm => {
                self.counters.hwm_dropped += count;
                self.hwm_dropped_since_warning += count;
            }
            _ => {
                self.counters.dropped += count;
                self.dropped_since_warning += count;
            }
        }
        self.watch
            .observers()
            .emit(Event::Dropped { reason, count });
    }

    fn warn_drops(&mut self, now: Instant) {
        if self.dropped_since_warning == 0 {
            return;
        }
        let due = self
            .last_drop_warning
            .is_none_or(|t| now.saturating_duration_since(t) >= DROP_WARN_INTERVAL);
        if due {
            tracing::warn!(
                "dropped {} deliveries to slow subscribers (queue of {} items full; {} in total)",
                self.dropped_since_warning,
                outflow::MAX_QUEUED_ITEMS,
                self.counters.dropped
            );
            self.dropped_since_warning = 0;
            self.last_drop_warning = Some(now);
        }
    }

    /// Deliveries dropped so far.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped
    }
}

#[cfg(test)]
mod tests;
