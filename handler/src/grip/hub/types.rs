//! The hub's public vocabulary: settings, what a proxy task hands in ([`Hold`], [`Sub`],
//! [`HoldMode`]) and what a hub operation asks the caller to do ([`Effects`], [`Resume`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::internal::ToConnmgr;

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
