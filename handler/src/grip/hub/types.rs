//! The hub's public vocabulary: settings, what a proxy task hands in ([`Hold`], [`Sub`],
//! [`HoldMode`]) and what a hub operation asks the caller to do ([`Effects`], [`Resume`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use holdfast_proto::internal::{Fanout, ToConnmgr};

use super::{Filters, Reply};
use crate::grip::keepalive::KeepAlive;
use crate::grip::Origin;
use crate::ipc::WorkerId;
use crate::proxy::jsonp::Jsonp;
use crate::session::SessionKey;

/// Hub settings (`[handler]` keys).
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// `update_on_first_subscription`.
    pub update_on_first_subscription: bool,
    /// `subscription_linger`: how long an emptied channel keeps its state (and, later, its SUB
    /// subscription and stats entry).
    pub subscription_linger: Duration,
    /// `message_wait`.
    pub message_wait: Duration,
    /// `id_cache_ttl`.
    pub id_cache_ttl: Duration,
    /// `connection_subscription_max`.
    pub connection_subscription_max: usize,
    /// `message_rate`: deliveries per second overall (`None`: unlimited).
    pub message_rate: Option<u32>,
    /// `message_hwm`: deliveries a route's bucket may hold (`None`: unbounded).
    pub message_hwm: Option<u32>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            update_on_first_subscription: true,
            subscription_linger: Duration::from_secs(60),
            message_wait: Duration::from_millis(5000),
            id_cache_ttl: Duration::ZERO,
            connection_subscription_max: 20,
            message_rate: None,
            message_hwm: None,
        }
    }
}

/// One channel subscription of a held request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sub {
    /// Channel name with the route prefix.
    pub name: Arc<str>,
    /// Length of the route prefix at the start of `name`.
    pub prefix_len: usize,
    /// Delivery filters.
    pub filters: Filters,
    /// The id the client last saw (`prev-id`), updated as items are delivered.
    pub prev_id: Option<String>,
}

impl Sub {
    /// The channel name as the origin knows it (without the route prefix).
    pub fn unprefixed(&self) -> &str {
        self.name.get(self.prefix_len..).unwrap_or(&self.name)
    }
}

/// The kind of a hold handed to the hub.
#[derive(Clone, Debug)]
pub enum HoldMode {
    /// Long-poll: `reply` is the timeout response.
    Response {
        /// Timeout.
        timeout: Duration,
        /// Sent on timeout; the base of responses built from publishes.
        reply: Arc<Reply>,
        /// JSON-P wrapping of whatever is sent (§4.7).
        jsonp: Option<Arc<Jsonp>>,
    },
    /// Streaming.
    Stream {
        /// The head and initial body to send; `None` when the head already went out (the hold
        /// follows a next link).
        head: Option<Reply>,
        /// Keep-alive.
        keep_alive: Option<Arc<KeepAlive>>,
        /// `Grip-Link rel=next` URL.
        next_link: Option<Arc<str>>,
        /// The link's `timeout=`: without a message on every channel within it, the link is
        /// fetched (§4.5 "Next-link timeout"). Ignored without a link.
        link_timeout: Duration,
    },
}

/// A request handed to the hub by a proxy task.
#[derive(Clone, Debug)]
pub struct Hold {
    /// The stream.
    pub key: SessionKey,
    /// Its session-table incarnation.
    pub serial: u64,
    /// Response credits the task held.
    pub credits: u64,
    /// Subscriptions.
    pub subs: Vec<Sub>,
    /// Subscription meta (`Grip-Set-Meta`, instruct `hold.meta`), for filters.
    pub meta: Option<Arc<BTreeMap<String, String>>>,
    /// The original request, for retries.
    pub origin: Arc<Origin>,
    /// The route's explicit id: the delivery limiter's bucket (`None`: the shared bucket).
    pub route: Option<Arc<str>>,
    /// What kind of hold.
    pub mode: HoldMode,
}

/// Why a held request goes back to a proxy task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResumeKind {
    /// Re-request the original request (response holds).
    Retry,
    /// Fetch the next link and append it to the stream (stream holds; the head is sent).
    NextLink(Arc<str>),
}

/// A held request to hand back to a proxy task.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The stream.
    pub key: SessionKey,
    /// Its table incarnation.
    pub serial: u64,
    /// Credits the hub held.
    pub credits: u64,
    /// The original request.
    pub origin: Arc<Origin>,
    /// `Grip-Last` values: (unprefixed channel, last id).
    pub grip_last: Vec<(String, String)>,
    /// Retry or next link.
    pub kind: ResumeKind,
}

/// What the caller must do after a hub operation.
#[derive(Debug, Default)]
pub struct Effects {
    /// Messages for the connmgr, in order.
    pub msgs: Vec<(WorkerId, ToConnmgr)>,
    /// Held requests to give back to proxy tasks.
    pub resumes: Vec<Resume>,
    /// Session-table entries to remove (the hub is done with them).
    pub released: Vec<(SessionKey, u64)>,
}

/// Largest payload [`Effects::push_fanout`] builds by merging.
pub const FANOUT_MERGE_MAX: usize = 64 * 1024;

/// How far back [`Effects::push_fanout`] looks for the worker's last message (the fanouts of
/// one item are pushed one per worker, so the previous item's sit this far back at most when
/// there are this many workers).
const FANOUT_MERGE_LOOKBACK: usize = 16;

impl Effects {
    /// Queues a stream `Fanout` for `worker`. When the last message queued for that worker is
    /// a `Fanout` to exactly the same streams (the previous item of a run published to one
    /// channel), the payload is appended to it instead: the connmgr then writes the run to
    /// each stream once, and a stream body is a byte sequence, so the client cannot tell.
    pub fn push_fanout(&mut self, worker: &WorkerId, fanout: Fanout) {
        let last = self
            .msgs
            .iter_mut()
            .rev()
            .take(FANOUT_MERGE_LOOKBACK)
            .find(|(w, _)| w == worker);
        if let Some((_, ToConnmgr::Fanout(prev))) = last {
            if prev.ids == fanout.ids && prev.data.len() + fanout.data.len() <= FANOUT_MERGE_MAX {
                prev.data = append(std::mem::take(&mut prev.data), &fanout.data);
                return;
            }
        }
        self.msgs.push((worker.clone(), ToConnmgr::Fanout(fanout)));
    }
}

/// `data` followed by `more`, reusing `data`'s buffer when it is not shared (from the second
/// merge on), so a run of merges copies each payload about once.
fn append(data: Bytes, more: &[u8]) -> Bytes {
    let mut buf = match data.try_into_mut() {
        Ok(buf) => buf,
        Err(shared) => {
            let mut buf = BytesMut::with_capacity((shared.len() + more.len()) * 4);
            buf.extend_from_slice(&shared);
            buf
        }
    };
    buf.extend_from_slice(more);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use holdfast_proto::internal::{Body, StreamId};

    use super::*;

    fn fanout(ids: &[u64], data: &'static [u8]) -> Fanout {
        Fanout {
            ids: ids.iter().map(|&i| StreamId(i)).collect(),
            data: Bytes::from_static(data),
        }
    }

    fn payloads(fx: &Effects) -> Vec<(&[u8], Vec<u8>)> {
        fx.msgs
            .iter()
            .map(|(w, m)| match m {
                ToConnmgr::Fanout(f) => (w.as_bytes(), f.data.to_vec()),
                _ => (w.as_bytes(), b"<other>".to_vec()),
            })
            .collect()
    }

    #[test]
    fn fanouts_to_the_same_streams_merge_per_worker_in_order() {
        let (w0, w1) = (WorkerId::new("w0"), WorkerId::new("w1"));
        let mut fx = Effects::default();
        let shared = Bytes::from_static(b"a");
        for (w, ids) in [(&w0, [1, 2]), (&w1, [7, 8])] {
            let f = Fanout {
                ids: ids.iter().map(|&i| StreamId(i)).collect(),
                data: shared.clone(),
            };
            fx.push_fanout(w, f);
        }
        fx.push_fanout(&w0, fanout(&[1, 2], b"b"));
        fx.push_fanout(&w1, fanout(&[7, 8], b"b"));
        fx.push_fanout(&w0, fanout(&[1, 2], b"c"));
        assert_eq!(
            payloads(&fx),
            vec![(&b"w0"[..], b"abc".to_vec()), (&b"w1"[..], b"ab".to_vec())]
        );
        // The payload other workers share is never written into.
        assert_eq!(&shared[..], b"a");
    }

    #[test]
    fn fanouts_stay_apart_when_streams_differ_or_another_message_intervenes() {
        let w0 = WorkerId::new("w0");
        let mut fx = Effects::default();
        fx.push_fanout(&w0, fanout(&[1, 2], b"a"));
        fx.push_fanout(&w0, fanout(&[1], b"b"));
        fx.msgs.push((
            w0.clone(),
            ToConnmgr::Body(Body {
                id: StreamId(1),
                data: Bytes::from_static(b"q"),
                more: true,
            }),
        ));
        fx.push_fanout(&w0, fanout(&[1], b"c"));
        let big = vec![b'x'; FANOUT_MERGE_MAX];
        fx.push_fanout(
            &w0,
            Fanout {
                ids: vec![StreamId(1)],
                data: Bytes::from(big),
            },
        );
        let lens: Vec<usize> = payloads(&fx).iter().map(|(_, d)| d.len()).collect();
        assert_eq!(lens, vec![1, 1, 7, 1, FANOUT_MERGE_MAX]);
    }
}
