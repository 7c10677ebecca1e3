//! The WebSocket-over-HTTP connection state machine (reference §5.3): pure, time passed in, so
//! request scheduling, retries, keep-alives, metas and GRIP classification are unit-tested
//! without sockets. The driver in [`super::session`] does the I/O.
//!
//! Rules implemented:
//!
//! - one request in flight; a request is due when a client event is pending, or when the
//!   keep-alive interval (`Keep-Alive-Interval`, raised to 20 s) passed since the last request
//!   (empty body);
//! - a request carries every pending event (at most [`MAX_PENDING_CONTENT`] bytes of content,
//!   at least one event), or exactly one with `one_event`; `DISCONNECT` and `OPEN` go alone;
//! - a failed delivery (connect, TLS, timeout) of a non-OPEN request is retried up to
//!   [`MAX_RETRIES`] times after `1000·2^n + rand(0..999)` ms, with the same body;
//! - replies must be `200` + `application/websocket-events`; `Set-Meta-*` updates the metas
//!   (empty value deletes); in GRIP mode TEXT/BINARY go through
//!   [`holdfast_proto::wscontrol::classify_woh`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{Header, WsKind};
use holdfast_proto::wscontrol::{classify_woh, GripExtension, OriginMessage};
use holdfast_proto::wsevents::{
    self, Event, EventsError, MAX_PENDING_CONTENT, MIN_KEEP_ALIVE_INTERVAL,
};

use super::headers::is_events_reply;

/// Retries of one failed request.
pub const MAX_RETRIES: u32 = 5;

/// What the driver must do for the client after a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a message to the client.
    Send(WsKind, Bytes),
    /// Send a close frame to the client.
    Close(Option<u16>, String),
    /// Drop the client connection (`DISCONNECT` from the origin).
    Disconnect,
    /// A GRIP control message (the JSON after `c:`).
    Control(Bytes),
}

/// Why the connection failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WohError {
    /// The reply was not `200` + `application/websocket-events`.
    #[error("origin replied {0} without websocket-events")]
    BadReply(u16),
    /// The reply body did not parse.
    #[error(transparent)]
    Events(#[from] EventsError),
    /// An `OPEN` in a later reply.
    #[error("OPEN event in a later reply")]
    UnexpectedOpen,
    /// Too many failed attempts.
    #[error("request failed after {0} retries")]
    RetriesExhausted(u32),
}

/// One connection's state.
#[derive(Debug)]
pub struct Woh {
    pending: VecDeque<Event>,
    pending_content: usize,
    in_flight: Option<Bytes>,
    one_event: bool,
    meta: Vec<(String, String)>,
    keep_alive: Option<Duration>,
    last_request: Instant,
    grip: Option<GripExtension>,
    failures: u32,
    retry_at: Option<Instant>,
    /// A `DISCONNECT` was queued: nothing else is sent.
    disconnecting: bool,
    /// A refresh asked for a request now (even an empty one).
    refresh: bool,
}

fn content_len(event: &Event) -> usize {
    match event {
        Event::Text(c) | Event::Binary(c) | Event::Ping(c) | Event::Pong(c) => c.len(),
        Event::Close(Some((_, r))) => 2 + r.len(),
        _ => 0,
    }
}

/// Reads `Keep-Alive-Interval`: `Some(None)` disables, `Some(Some(d))` sets, `None` keeps.
fn keep_alive_interval(headers: &[Header]) -> Option<Option<Duration>> {
    let h = headers.iter().find(|h| h.is("Keep-Alive-Interval"))?;
    let secs = std::str::from_utf8(&h.1)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    if secs <= 0 {
        return Some(None);
    }
    let secs = u64::try_from(secs)
        .unwrap_or(u64::MAX)
        .max(u64::from(MIN_KEEP_ALIVE_INTERVAL));
    Some(Some(Duration::from_secs(secs)))
}

impl Woh {
    /// A new connection; the first request is `OPEN` (see [`Woh::open_body`]).
    pub fn new(one_event: bool, now: Instant) -> Self {
        Self {
            pending: VecDeque::new(),
            pending_content: 0,
            in_flight: None,
            one_event,
            meta: Vec::new(),
            keep_alive: None,
            last_request: now,
            grip: None,
            failures: 0,
            retry_at: None,
            disconnecting: false,
            refresh: false,
        }
    }

    /// The OPEN request's body.
    pub fn open_body() -> Bytes {
        Bytes::from_static(b"OPEN\r\n")
    }

    /// The metas to send (`Meta-<name>`).
    pub fn meta(&self) -> &[(String, String)] {
        &self.meta
    }

    /// GRIP mode, if the OPEN reply turned it on.
    pub fn grip(&self) -> Option<&GripExtension> {
        self.grip.as_ref()
    }

    /// Pending content bytes (the driver stops taking client messages at
    /// [`MAX_PENDING_CONTENT`]).
    pub fn pending_content(&self) -> usize {
        self.pending_content
    }

    /// True while a request is in flight or waiting for its retry.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True when nothing is pending or in flight.
    pub fn idle(&self) -> bool {
        self.in_flight.is_none() && self.pending.is_empty()
    }

    /// Asks for a request as soon as none is in flight (`refresh` command, `ws-message`
    /// `action: refresh`); pending events, if any, ride along.
    pub fn refresh(&mut self) {
        if !self.disconnecting {
            self.refresh = true;
        }
    }

    /// Queues an event from the client.
    pub fn push(&mut self, event: Event) {
        if self.disconnecting {
            return;
        }
        if event == Event::Disconnect {
            self.disconnecting = true;
        }
        self.pending_content += content_len(&event);
        self.pending.push_back(event);
    }

    /// Handles the OPEN reply: `Ok(true)` accepts (then call [`Woh::on_reply`]'s actions from
    /// the returned list), `Ok(false)` rejects the handshake with the reply.
    pub fn on_open_reply(
        &mut self,
        code: u16,
        headers: &[Header],
        body: &[u8],
        grip_enabled: bool,
        now: Instant,
    ) -> Result<Option<Vec<Action>>, WohError> {
        if !is_events_reply(code, headers) {
            return Ok(None);
        }
        let events = wsevents::decode(body)?;
        if events.first() != Some(&Event::Open) {
            return Err(WohError::BadReply(code));
        }
        if grip_enabled {
            self.grip = holdfast_proto::wscontrol::parse_grip_extension(headers);
        }
        self.last_request = now;
        self.apply_headers(headers);
        self.actions(events.into_iter().skip(1)).map(Some)
    }

    fn apply_headers(&mut self, headers: &[Header]) {
        if let Some(ka) = keep_alive_interval(headers) {
            self.keep_alive = ka;
        }
        for h in headers {
            let Some(name) =
                h.0.get(..9)
                    .filter(|p| p.eq_ignore_ascii_case("Set-Meta-"))
                    .map(|_| &h.0[9..])
            else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let value = String::from_utf8_lossy(&h.1).into_owned();
            self.meta.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if !value.is_empty() {
                self.meta.push((name.to_string(), value));
            }
        }
    }

    fn actions(&self, events: impl Iterator<Item = Event>) -> Result<Vec<Action>, WohError> {
        let mut out = Vec::new();
        for event in events {
            let (kind, data) = match event {
                Event::Open => return Err(WohError::UnexpectedOpen),
                Event::Text(d) => (WsKind::Text, d),
                Event::Binary(d) => (WsKind::Binary, d),
                Event::Ping(d) => (WsKind::Ping, d),
                Event::Pong(d) => (WsKind::Pong, d),
                Event::Close(c) => {
                    let (code, reason) = match c {
                        Some((code, reason)) => (Some(code), reason),
                        None => (None, String::new()),
                    };
                    out.push(Action::Close(code, reason));
                    continue;
                }
                Event::Disconnect => {
                    out.push(Action::Disconnect);
                    continue;
                }
            };
            match &self.grip {
                Some(ext) => match classify_woh(ext, kind, &data) {
                    OriginMessage::Control(json) => out.push(Action::Control(json)),
                    OriginMessage::Deliver(d) => out.push(Action::Send(kind, d)),
                    OriginMessage::Drop => tracing::debug!("dropping unprefixed message"),
                },
                None => out.push(Action::Send(kind, data)),
            }
        }
        Ok(out)
    }

    /// The next request body if one is due now (and marks it in flight).
    pub fn poll_request(&mut self, now: Instant) -> Option<Bytes> {
        if self.in_flight.is_some() {
            return match self.retry_at {
                Some(at) if now >= at => {
                    self.retry_at = None;
                    self.last_request = now;
                    self.in_flight.clone()
                }
                _ => None,
            };
        }
        if !self.pending.is_empty() {
            let mut body = Vec::new();
            let mut content = 0;
            while let Some(event) = self.pending.front() {
                let len = content_len(event);
                let alone = matches!(event, Event::Disconnect | Event::Open);
                if !body.is_empty() && (alone || content + len > MAX_PENDING_CONTENT) {
                    break;
                }
                let event = self.pending.pop_front()?;
                content += len;
                event.encode_into(&mut body);
                if alone || self.one_event {
                    break;
                }
            }
            self.pending_content -= content;
            self.refresh = false;
            let body = Bytes::from(body);
            self.in_flight = Some(body.clone());
            self.last_request = now;
            return Some(body);
        }
        if self.refresh && !self.disconnecting {
            self.refresh = false;
            self.in_flight = Some(Bytes::new());
            self.last_request = now;
            return Some(Bytes::new());
        }
        if let Some(ka) = self.keep_alive {
            if !self.disconnecting && now >= self.last_request + ka {
                self.in_flight = Some(Bytes::new());
                self.last_request = now;
                return Some(Bytes::new());
            }
        }
        None
    }

    /// When [`Woh::poll_request`] may next return something without new client input.
    pub fn next_wakeup(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return self.retry_at;
        }
        if self.refresh {
            return Some(self.last_request);
        }
        self.keep_alive.map(|ka| self.last_request + ka)
    }

    /// The in-flight request could not be delivered: schedules a retry or gives up.
    pub fn on_failure(&mut self, now: Instant) -> Result<Instant, WohError> {
        if self.failures >= MAX_RETRIES {
            return Err(WohError::RetriesExhausted(self.failures));
        }
        let delay = 1000u64 * (1u64 << self.failures) + rand::random::<u64>() % 1000;
        self.failures += 1;
        let at = now + Duration::from_millis(delay);
        self.retry_at = Some(at);
        Ok(at)
    }

    /// The in-flight request's reply.
    pub fn on_reply(
        &mut self,
        code: u16,
        headers: &[Header],
        body: &[u8],
    ) -> Result<Vec<Action>, WohError> {
        self.in_flight = None;
        self.retry_at = None;
        self.failures = 0;
        if !is_events_reply(code, headers) {
            return Err(WohError::BadReply(code));
        }
        let events = wsevents::decode(body)?;
        self.apply_headers(headers);
        self.actions(events.into_iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_headers(extra: &[(&str, &str)]) -> Vec<Header> {
        let mut h = vec![Header::new("Content-Type", wsevents::CONTENT_TYPE)];
        h.extend(extra.iter().map(|(n, v)| Header::new(*n, v.to_string())));
        h
    }

    fn text(s: &'static str) -> Event {
        Event::Text(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn open_rejected_or_accepted() {
        let now = Instant::now();
        let mut w = Woh::new(false, now);
        assert_eq!(w.on_open_reply(403, &[], b"no", true, now), Ok(None));
        let acts = w
            .on_open_reply(
                200,
                &ok_headers(&[("Set-Meta-User", "alice")]),
                b"OPEN\r\nTEXT 2\r\nhi\r\n",
                true,
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            acts,
            [Action::Send(WsKind::Text, Bytes::from_static(b"hi"))]
        );
        assert_eq!(w.meta(), [("User".to_string(), "alice".to_string())]);
        assert!(w.grip().is_none());
        assert!(w
            .on_open_reply(200, &ok_headers(&[]), b"TEXT 2\r\nhi\r\n", true, now)
            .is_err());
    }

    #[test]
    fn batching_one_in_flight_and_one_event() {
        let now = Instant::now();
        let mut w = Woh::new(false, now);
        w.push(text("a"));
        w.push(text("b"));
        assert_eq!(
            w.poll_request(now).unwrap().as_ref(),
            b"TEXT 1\r\na\r\nTEXT 1\r\nb\r\n"
        );
        w.push(text("c"));
        assert_eq!(w.poll_request(now), None, "one request in flight");
        let acts = w
            .on_reply(
                200,
                &ok_headers(&[("Set-Meta-User", "")]),
                b"CLOSE 3\r\n\x03\xe8x\r\n",
            )
            .unwrap();
        assert_eq!(acts, [Action::Close(Some(1000), "x".into())]);
        assert_eq!(w.poll_request(now).unwrap().as_ref(), b"TEXT 1\r\nc\r\n");

        let mut one = Woh::new(true, now);
        one.push(text("a"));
        one.push(text("b"));
        assert_eq!(one.poll_request(now).unwrap().as_ref(), b"TEXT 1\r\na\r\n");
        one.on_reply(200, &ok_headers(&[]), b"").unwrap();
        assert_eq!(one.poll_request(now).unwrap().as_ref(), b"TEXT 1\r\nb\r\n");
    }

    #[test]
    fn disconnect_goes_alone_and_last() {
        let now = Instant::now();
        let mut w = Woh::new(false, now);
        w.push(text("a"));
        w.push(Event::Disconnect);
        w.push(text("ignored"));
        assert_eq!(w.poll_request(now).unwrap().as_ref(), b"TEXT 1\r\na\r\n");
        w.on_reply(200, &ok_headers(&[]), b"").unwrap();
        assert_eq!(w.poll_request(now).unwrap().as_ref(), b"DISCONNECT\r\n");
        w.on_reply(200, &ok_headers(&[]), b"").unwrap();
        assert!(w.idle());
    }

    #[test]
    fn keep_alive_requests_after_interval() {
        let now = Instant::now();
        let mut w = Woh::new(false, now);
        w.on_open_reply(
            200,
            &ok_headers(&[("Keep-Alive-Interval", "5")]),
            b"OPEN\r\n",
            false,
            now,
        )
        .unwrap();
        assert_eq!(w.next_wakeup(), Some(now + Duration::from_secs(20)));
        assert_eq!(w.poll_request(now + Duration::from_secs(19)), None);
        assert_eq!(
            w.poll_request(now + Duration::from_secs(20)),
            Some(Bytes::new())
        );
        w.on_reply(200, &ok_headers(&[("Keep-Alive-Interval", "0")]), b"")
            .unwrap();
        assert_eq!(w.next_wakeup(), None);
    }

    #[test]
    fn retries_back_off_then_give_up() {
        let now = Instant::now();
        let mut w = Woh::new(false, now);
        w.push(text("a"));
        let body = w.poll_request(now).unwrap();
        for n in 0..MAX_RETRIES {
            let at = w.on_failure(now).unwrap();
            let delay = at - now;
            let base = Duration::from_millis(1000 << n);
            assert!(delay >= base && delay < base + Duration::from_millis(1000));
            assert_eq!(w.poll_request(at - Duration::from_millis(1)), None);
            assert_eq!(w.poll_request(at), Some(body.clone()));
        }
        assert_eq!(w.on_failure(now), Err(WohError::RetriesExhausted(5)));
    }

    #[test]
    fn grip_mode_classifies_messages() {
        let now = Instant::now();
        let mut w = Woh::new(false, now);
        let acts = w
            .on_open_reply(
                200,
                &ok_headers(&[("Sec-WebSocket-Extensions", "grip")]),
                b"OPEN\r\nTEXT 4\r\nm:hi\r\nTEXT 2\r\nno\r\nTEXT 4\r\nc:{}\r\nPING\r\n",
                true,
                now,
            )
            .unwrap()
            .unwrap();
        assert_eq!(
            acts,
            [
                Action::Send(WsKind::Text, Bytes::from_static(b"hi")),
                Action::Control(Bytes::from_static(b"{}")),
                Action::Send(WsKind::Ping, Bytes::new()),
            ]
        );
        assert!(w.grip().is_some());
        assert_eq!(
            w.on_reply(200, &ok_headers(&[]), b"OPEN\r\n"),
            Err(WohError::UnexpectedOpen)
        );
    }
}
