//! Delivery of one item to its channel's receivers: the per-receiver loop of [`Hub::publish`]
//! (filters, `prev-id` checks, credits and queues, WebSocket sinks), grouped into one
//! `Fanout`/`WsFanout` per connmgr worker.

use std::sync::Arc;
use std::time::Instant;

use holdfast_proto::internal::{Fanout, StreamId, ToConnmgr, WsFanout};

use super::filters::passes_filters;
use super::outflow::Offer;
use super::respond::build_response;
use super::{Effects, Hub, State};
use crate::grip::item::{Item, ResponseAction, StreamFormat, WsFormat};
use crate::grip::wssink::{Outgoing, SinkOffer};
use crate::ipc::WorkerId;
use crate::observe::{DropReason, Event, Transport};

/// Receivers one delivery reached, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Reached {
    response: usize,
    stream: usize,
    ws: usize,
}

impl Reached {
    pub(super) fn total(self) -> usize {
        self.response + self.stream + self.ws
    }

    fn count(&mut self, state: &State) {
        match state {
            State::Response { .. } => self.response += 1,
            State::Stream { .. } => self.stream += 1,
            State::Ws { .. } => self.ws += 1,
            State::Ending => {}
        }
    }
}

impl Hub {
    /// Delivers `item` to the held requests `ids` (subscribers of its channel). Returns the
    /// receivers reached.
    pub(super) fn deliver_to(
        &mut self,
        ids: Vec<u64>,
        item: &Item,
        now: Instant,
        fx: &mut Effects,
    ) -> Reached {
        let name = item.channel.as_str();
        // Subscriptions share the channel's own name (see `subscribe`): a pointer comparison
        // finds them without reading the string.
        let shared = self.channels.get_key_value(name).map(|(k, _)| k.clone());
        let mut groups = WorkerGroups::with_capacity(ids.len());
        let mut ws_groups = WorkerGroups::with_capacity(0);
        let mut reached = Reached::default();
        let mut completed = Vec::new();
        let mut ending = Vec::new();
        // Receivers whose queue was full: counted and reported once, after the loop.
        let mut queue_full: u64 = 0;
        for id in ids {
            let Some(held) = self.sessions.get_mut(&id) else {
                continue;
            };
            let Some(sub_idx) = held.subs.iter().position(|s| {
                shared.as_ref().is_some_and(|k| Arc::ptr_eq(k, &s.name)) || &*s.name == name
            }) else {
                continue;
            };
            let is_stream = matches!(held.state, State::Stream { .. });
            if !applies_to(&held.state, item) || !passes_filters(held, sub_idx, item) {
                continue;
            }
            reached.count(&held.state);
            if let State::Ws { sink, .. } = &held.state {
                match &item.ws {
                    Some(WsFormat::Send(kind, data)) => match sink.offer(*kind, data, now) {
                        SinkOffer::SendNow => ws_groups.push(&held.key.worker, held.key.id),
                        SinkOffer::Queued => {}
                        SinkOffer::Dropped => queue_full += 1,
                    },
                    Some(WsFormat::Close(code, reason)) => {
                        sink.push_control(Outgoing::Close(*code, reason.clone()));
                    }
                    Some(WsFormat::Refresh) => sink.push_control(Outgoing::Refresh),
                    None => {}
                }
                continue;
            }
            let sub = &mut held.subs[sub_idx];
            if let (Some(have), Some(prev)) = (&sub.prev_id, &item.prev_id) {
                if have != prev {
                    // The client missed something: recover instead of delivering.
                    completed.push((id, Recovery::Recover));
                    continue;
                }
            }
            if sub.prev_id.is_some() {
                sub.prev_id.clone_from(&item.id);
            }
            if sub_idx < 64 {
                held.link_seen |= 1 << sub_idx;
            }
            if is_stream {
                match &item.stream {
                    Some(StreamFormat::Send(data)) => match held.flow.offer(data) {
                        Offer::SendNow => {
                            groups.push(&held.key.worker, held.key.id);
                            held.output_sent(now);
                        }
                        Offer::Queued => {}
                        Offer::Dropped => queue_full += 1,
                    },
                    Some(StreamFormat::Close) => ending.push(id),
                    Some(StreamFormat::Hint) => completed.push((id, Recovery::Recover)),
                    None => {}
                }
            } else if let Some(fmt) = &item.response {
                match fmt.action {
                    ResponseAction::Send => completed.push((id, Recovery::Respond)),
                    ResponseAction::Hint => completed.push((id, Recovery::Recover)),
                    ResponseAction::Ignore => {}
                }
            }
        }
        self.note_dropped(DropReason::QueueFull, queue_full);
        if let Some(StreamFormat::Send(data)) = &item.stream {
            for (worker, ids) in groups.into_groups() {
                fx.push_fanout(
                    &worker,
                    Fanout {
                        ids,
                        data: data.clone(),
                    },
                );
            }
        }
        if let Some(WsFormat::Send(kind, data)) = &item.ws {
            for (worker, ids) in ws_groups.into_groups() {
                fx.msgs.push((
                    worker,
                    ToConnmgr::WsFanout(WsFanout {
                        ids,
                        kind: *kind,
                        data: data.clone(),
                    }),
                ));
            }
        }
        for (id, what) in completed {
            match what {
                Recovery::Respond => {
                    if let Some(fmt) = &item.response {
                        self.complete_with(id, |reply| build_response(reply, fmt), now, fx);
                    }
                }
                Recovery::Recover => self.recover(id, now, fx),
            }
        }
        for id in ending {
            self.end_stream(id, now, fx);
        }
        reached
    }

    /// Stats `message` events: one per transport that reached anybody.
    pub(super) fn report_delivery(&self, item: &Item, reached: Reached) {
        let observers = self.watch.observers();
        if observers.is_empty() {
            return;
        }
        let channel: Arc<str> = Arc::from(item.channel.as_str());
        let item_id: Option<Arc<str>> = item.id.as_deref().map(Arc::from);
        let stream_bytes = match &item.stream {
            Some(StreamFormat::Send(data)) => data.len(),
            _ => 0,
        };
        let ws_bytes = match &item.ws {
            Some(WsFormat::Send(_, data)) => data.len(),
            _ => 0,
        };
        for (transport, count, bytes) in [
            (Transport::HttpStream, reached.stream, stream_bytes),
            (Transport::HttpResponse, reached.response, 0),
            (Transport::WsMessage, reached.ws, ws_bytes),
        ] {
            if count > 0 {
                observers.emit(Event::Delivered {
                    channel: channel.clone(),
                    item_id: item_id.clone(),
                    transport,
                    count,
                    bytes,
                });
            }
        }
    }
}

pub(super) enum Recovery {
    Respond,
    Recover,
}

/// The stream ids one delivery reaches, grouped by connmgr worker (one `Fanout` each).
///
/// There are a handful of workers and consecutive receivers are often on the same one, so a
/// short list with the last match remembered beats hashing the worker identity per receiver.
struct WorkerGroups {
    groups: Vec<(WorkerId, Vec<StreamId>)>,
    last: usize,
    /// Capacity for each new group's id list.
    hint: usize,
}

impl WorkerGroups {
    fn with_capacity(receivers: usize) -> Self {
        Self {
            groups: Vec::new(),
            last: 0,
            hint: receivers,
        }
    }

    fn push(&mut self, worker: &WorkerId, id: StreamId) {
        let index = match self.groups.get(self.last) {
            Some((w, _)) if w == worker => self.last,
            _ => match self.groups.iter().position(|(w, _)| w == worker) {
                Some(i) => i,
                None => {
                    // Each later group is smaller: halve the hint so a few workers do not
                    // reserve many times the receivers.
                    let ids = Vec::with_capacity(self.hint);
                    self.hint /= 2;
                    self.groups.push((worker.clone(), ids));
                    self.groups.len() - 1
                }
            },
        };
        self.last = index;
        if let Some((_, ids)) = self.groups.get_mut(index) {
            ids.push(id);
        }
    }

    fn into_groups(self) -> Vec<(WorkerId, Vec<StreamId>)> {
        self.groups
    }
}

/// True when `item` has a format for a receiver in `state`.
pub(super) fn applies_to(state: &State, item: &Item) -> bool {
    match state {
        State::Response { .. } => item.response.is_some(),
        State::Stream { .. } => item.stream.is_some(),
        State::Ws { .. } => item.ws.is_some(),
        State::Ending => false,
    }
}
