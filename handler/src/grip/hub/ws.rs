//! WebSocket connections in the hub (reference §5.2, §5.4): a connection registers once
//! accepted, then subscribes and unsubscribes as its origin's control messages (or the route's
//! `sub=`) say. Publishes reach it through its [`WsSink`] (see [`super::Hub::publish`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::outflow::Outflow;
use super::{Held, Hub, State, Sub};
use crate::grip::wssink::{Outgoing, WsSink};
use crate::observe::SubMode;
use crate::session::SessionKey;

/// What [`Hub::ws_subscribe`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsSubscribed {
    /// A new subscription.
    Added,
    /// The connection already had it (its filters are replaced).
    Already,
    /// The connection is at `connection_subscription_max`: ignored.
    AtLimit,
    /// The connection is not registered.
    Unknown,
}

impl Hub {
    /// Registers an accepted WebSocket connection (no subscriptions yet).
    pub fn ws_open(
        &mut self,
        key: SessionKey,
        cid: Arc<str>,
        sink: Arc<WsSink>,
        route: Option<Arc<str>>,
        now: Instant,
    ) {
        if let Some(old) = self.by_key.get(&key).copied() {
            self.remove(old, now);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.by_key.insert(key.clone(), id);
        self.ws_cids.insert(cid.clone(), id);
        self.sessions.insert(
            id,
            Held {
                key,
                serial: 0,
                flow: Outflow::new(0),
                subs: Vec::new(),
                meta: None,
                origin: None,
                route,
                state: State::Ws { sink, cid },
                deadline: None,
                timer_at: None,
                link_deadline: None,
                link_timeout: std::time::Duration::ZERO,
                link_seen: 0,
            },
        );
    }

    fn ws_id(&self, key: &SessionKey) -> Option<u64> {
        let id = self.by_key.get(key).copied()?;
        matches!(self.sessions.get(&id)?.state, State::Ws { .. }).then_some(id)
    }

    /// Subscribes a connection to `sub.name` (already prefixed as it should be).
    pub fn ws_subscribe(&mut self, key: &SessionKey, sub: Sub, now: Instant) -> WsSubscribed {
        let Some(id) = self.ws_id(key) else {
            return WsSubscribed::Unknown;
        };
        let max = self.cfg.connection_subscription_max;
        let Some(held) = self.sessions.get_mut(&id) else {
            return WsSubscribed::Unknown;
        };
        if let Some(existing) = held.subs.iter_mut().find(|s| s.name == sub.name) {
            existing.filters = sub.filters;
            return WsSubscribed::Already;
        }
        if held.subs.len() >= max {
            return WsSubscribed::AtLimit;
        }
        let name = sub.name.clone();
        let index = held.subs.len();
        held.subs.push(sub);
        let shared = self.subscribe(id, &name, SubMode::Ws, now);
        if let Some(sub) = self
            .sessions
            .get_mut(&id)
            .and_then(|held| held.subs.get_mut(index))
        {
            sub.name = shared;
        }
        WsSubscribed::Added
    }

    /// Unsubscribes a connection from `name`; false if it was not subscribed.
    pub fn ws_unsubscribe(&mut self, key: &SessionKey, name: &str, now: Instant) -> bool {
        let Some(id) = self.ws_id(key) else {
            return false;
        };
        let Some(held) = self.sessions.get_mut(&id) else {
            return false;
        };
        let Some(pos) = held.subs.iter().position(|s| &*s.name == name) else {
            return false;
        };
        let sub = held.subs.remove(pos);
        self.unsubscribe(id, &sub.name, now);
        true
    }

    /// Sets (or, with `None`, deletes) a subscription meta value of a connection, for filters.
    pub fn ws_set_meta(&mut self, key: &SessionKey, name: String, value: Option<String>) {
        let Some(id) = self.ws_id(key) else {
            return;
        };
        let Some(held) = self.sessions.get_mut(&id) else {
            return;
        };
        let meta = Arc::make_mut(held.meta.get_or_insert_with(|| Arc::new(BTreeMap::new())));
        match value {
            Some(value) => {
                meta.insert(name, value);
            }
            None => {
                meta.remove(&name);
            }
        }
    }

    /// The connection ended: unsubscribes it and forgets it.
    pub fn ws_close(&mut self, key: &SessionKey, now: Instant) {
        if let Some(id) = self.ws_id(key) {
            self.remove(id, now);
        }
    }

    /// The `refresh` command for one connection; false if no connection has that id.
    pub fn ws_refresh_cid(&mut self, cid: &str) -> bool {
        let Some(id) = self.ws_cids.get(cid).copied() else {
            return false;
        };
        match self.sessions.get(&id).map(|h| &h.state) {
            Some(State::Ws { sink, .. }) => {
                sink.push_control(Outgoing::Refresh);
                true
            }
            _ => false,
        }
    }

    /// The `refresh` command for every connection subscribed to `channel`; returns how many.
    pub fn ws_refresh_channel(&mut self, channel: &str) -> usize {
        let Some(c) = self.channels.get(channel) else {
            return 0;
        };
        let mut n = 0;
        for id in c.subs.keys() {
            if let Some(State::Ws { sink, .. }) = self.sessions.get(id).map(|h| &h.state) {
                sink.push_control(Outgoing::Refresh);
                n += 1;
            }
        }
        n
    }

    /// Number of registered WebSocket connections.
    pub fn ws_connections(&self) -> usize {
        self.ws_cids.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use holdfast_proto::internal::{StreamId, ToConnmgr, WsKind};

    use super::*;
    use crate::grip::hub::{Effects, Filters, HubConfig};
    use crate::grip::item::{Item, WsFormat};
    use crate::ipc::WorkerId;
    use crate::session::Inbox;

    fn key(worker: &str, id: u64) -> SessionKey {
        SessionKey {
            worker: WorkerId::new(worker.as_bytes().to_vec()),
            id: StreamId(id),
        }
    }

    fn sub(name: &str, filters: &[&str]) -> Sub {
        Sub {
            name: Arc::from(name),
            prefix_len: 0,
            filters: Filters::from_names(filters),
            prev_id: None,
        }
    }

    fn item(channel: &str, ws: WsFormat, sender: Option<&str>) -> Item {
        Item {
            channel: channel.into(),
            id: None,
            prev_id: None,
            no_seq: false,
            meta: sender
                .map(|s| vec![("sender".to_string(), s.to_string())])
                .unwrap_or_default(),
            response: None,
            stream: None,
            ws: Some(ws),
        }
    }

    fn text(s: &'static str) -> WsFormat {
        WsFormat::Send(WsKind::Text, Bytes::from_static(s.as_bytes()))
    }

    /// Registers a connection with a window of `credits`, `in_flight` of them taken (as if
    /// not yet returned by the connmgr), and returns its sink.
    fn open_with(
        hub: &mut Hub,
        k: &SessionKey,
        credits: u32,
        in_flight: usize,
        now: Instant,
    ) -> Arc<WsSink> {
        let inbox = Arc::new(Inbox::new(Bytes::new(), false, credits));
        assert_eq!(inbox.try_take_credits(in_flight), in_flight);
        let sink = Arc::new(WsSink::new(inbox, now));
        let cid: Arc<str> = Arc::from(format!("cid-{}", k.id.0).as_str());
        hub.ws_open(k.clone(), cid, sink.clone(), None, now);
        sink
    }

    fn open(hub: &mut Hub, k: &SessionKey, credits: u32, now: Instant) -> Arc<WsSink> {
        open_with(hub, k, credits, 0, now)
    }

    fn hub() -> Hub {
        Hub::new(HubConfig {
            update_on_first_subscription: false,
            connection_subscription_max: 2,
            ..HubConfig::default()
        })
    }

    fn fanouts(fx: &Effects) -> Vec<(String, Vec<u64>, Bytes)> {
        let mut out: Vec<_> = fx
            .msgs
            .iter()
            .filter_map(|(w, m)| match m {
                ToConnmgr::WsFanout(f) => Some((
                    String::from_utf8_lossy(w.as_bytes()).into_owned(),
                    {
                        let mut ids: Vec<u64> = f.ids.iter().map(|i| i.0).collect();
                        ids.sort_unstable();
                        ids
                    },
                    f.data.clone(),
                )),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn one_fanout_per_worker_for_connections_with_credits() {
        let mut hub = hub();
        let now = Instant::now();
        let (a, b, c) = (key("w0", 1), key("w0", 2), key("w1", 3));
        for k in [&a, &b, &c] {
            open(&mut hub, k, 100, now);
            assert_eq!(
                hub.ws_subscribe(k, sub("room", &[]), now),
                WsSubscribed::Added
            );
        }
        let mut fx = Effects::default();
        assert_eq!(hub.publish(item("room", text("hi"), None), now, &mut fx), 3);
        assert_eq!(
            fanouts(&fx),
            vec![
                ("w0".into(), vec![1, 2], Bytes::from_static(b"hi")),
                ("w1".into(), vec![3], Bytes::from_static(b"hi")),
            ]
        );
    }

    #[test]
    fn without_credits_messages_queue_in_order_then_drop() {
        let mut hub = hub();
        let now = Instant::now();
        let k = key("w0", 1);
        // A window of 10 with 7 bytes in flight: 3 credits left.
        let sink = open_with(&mut hub, &k, 10, 7, now);
        hub.ws_subscribe(&k, sub("room", &[]), now);
        let mut fx = Effects::default();
        hub.publish(item("room", text("12345"), None), now, &mut fx);
        hub.publish(item("room", text("ab"), None), now, &mut fx);
        // "ab" fits the credits but must not overtake the queued message.
        assert!(fanouts(&fx).is_empty());
        assert_eq!(
            sink.pop(),
            Some(Outgoing::Message(
                WsKind::Text,
                Bytes::from_static(b"12345")
            ))
        );
        for _ in 0..crate::grip::wssink::MAX_QUEUED + 5 {
            hub.publish(item("room", text("x"), None), now, &mut fx);
        }
        // "ab" plus 99 of them fill the queue of 100.
        assert_eq!(hub.counters().dropped, 6);
        hub.publish(
            item("room", WsFormat::Close(Some(4000), "bye".into()), None),
            now,
            &mut fx,
        );
        let mut last = None;
        while let Some(o) = sink.pop() {
            last = Some(o);
        }
        assert_eq!(last, Some(Outgoing::Close(Some(4000), "bye".into())));
    }

    #[test]
    fn subscription_limit_unsubscribe_and_close() {
        let mut hub = hub();
        let now = Instant::now();
        let k = key("w0", 1);
        open(&mut hub, &k, 100, now);
        assert_eq!(
            hub.ws_subscribe(&k, sub("a", &[]), now),
            WsSubscribed::Added
        );
        assert_eq!(
            hub.ws_subscribe(&k, sub("a", &[]), now),
            WsSubscribed::Already
        );
        assert_eq!(
            hub.ws_subscribe(&k, sub("b", &[]), now),
            WsSubscribed::Added
        );
        assert_eq!(
            hub.ws_subscribe(&k, sub("c", &[]), now),
            WsSubscribed::AtLimit
        );
        assert_eq!(hub.subscribers("a"), 1);
        assert!(hub.ws_unsubscribe(&k, "a", now));
        assert!(!hub.ws_unsubscribe(&k, "a", now));
        assert_eq!(hub.subscribers("a"), 0);
        assert!(hub.ws_refresh_cid("cid-1"));
        assert_eq!(hub.ws_refresh_channel("b"), 1);
        hub.ws_close(&k, now + Duration::from_secs(1));
        assert_eq!(hub.subscribers("b"), 0);
        assert!(!hub.ws_refresh_cid("cid-1"));
        assert_eq!(hub.ws_connections(), 0);
        assert_eq!(
            hub.ws_subscribe(&k, sub("a", &[]), now),
            WsSubscribed::Unknown
        );
    }

    #[test]
    fn skip_self_uses_set_meta_user() {
        let mut hub = hub();
        let now = Instant::now();
        let (alice, bob) = (key("w0", 1), key("w0", 2));
        for (k, user) in [(&alice, "alice"), (&bob, "bob")] {
            open(&mut hub, k, 100, now);
            hub.ws_set_meta(k, "user".into(), Some(user.into()));
            hub.ws_subscribe(k, sub("chat", &["skip-self"]), now);
        }
        let mut fx = Effects::default();
        assert_eq!(
            hub.publish(item("chat", text("m"), Some("alice")), now, &mut fx),
            1
        );
        assert_eq!(fanouts(&fx)[0].1, vec![2]);
        // Deleting the meta makes alice a receiver again.
        hub.ws_set_meta(&alice, "user".into(), None);
        let mut fx = Effects::default();
        assert_eq!(
            hub.publish(item("chat", text("m"), Some("alice")), now, &mut fx),
            2
        );
    }
}
