//! One client connection: the HTTP/1 server state machine, driven by socket readiness and by the
//! handler's messages.
//!
//! # Phases
//!
//! - [`Phase::Head`]: no request open. Bytes are read and parsed until a head is complete; the
//!   request then goes to the handler and the connection becomes `Active`. A malformed or
//!   oversized head gets a `400` and the connection moves to `Finishing`.
//! - [`Phase::Active`]: one stream is open. Request body bytes go to the handler within its
//!   credits (reading stops while out of credit); response bytes from the handler are framed
//!   and queued. Further bytes from the client (a pipelined request) wait in the buffer. When
//!   the response is complete and written, the connection goes back to `Head` (persistent) or
//!   to `Finishing`.
//! - [`Phase::Finishing`]: the last bytes (a final response, an error) are being written; then
//!   the write side is shut down.
//! - [`Phase::WebSocket`]: the handler accepted a WebSocket upgrade; frames flow both ways
//!   (see [`super::ws_conn`]) until the closing handshake, a protocol error or a timeout moves
//!   the connection to `Finishing` or closes it.
//! - [`Phase::Linger`]: after shutting down the write side the connection reads and discards
//!   input for a short while before closing, so the client receives the last response instead of
//!   a reset caused by unread input (the "lingering close" of HTTP servers).
//!
//! # Readiness
//!
//! mio is edge-triggered: the connection remembers `readable`/`writable` until an operation
//! returns `WouldBlock`, and [`Conn::drive`] keeps working until nothing makes progress. Reading
//! simply pauses (while the buffer is full, the request body is out of credit, or a final
//! response is being written) and resumes from the remembered readiness.
//!
//! # Buffers
//!
//! The read buffer is taken from the worker's pool on the first read and returned as soon as it
//! is empty; the write queue likewise. An idle keep-alive connection holds neither, and neither
//! does a *held* one: a request waiting minutes for its response (GRIP response hold,
//! long-polling) or a streamed response waiting for its next publish (GRIP stream hold) keeps
//! only its [`Stream`] state once the request is consumed and the last bytes are written.
//!
//! # Timeouts
//!
//! Apart from the short linger after the last response and the header timeout below, the only
//! connection timer is the inactivity timeout (`--stream-timeout`, default 1800 s, as in
//! Pushpin). It restarts whenever
//! bytes are read from *or written to* the client socket (Pushpin refreshes on socket I/O too),
//! so a stream hold that gets a publish or a keep-alive now and then never expires, and a
//! response hold lasts until its response or this timeout. Nothing limits how long a request
//! waits for its response or how long a response lasts. Handler messages that do not reach the
//! socket (body queued behind a client that does not read) do not count as activity. The worker
//! also fails in-flight streams when the *handler* falls silent (see the worker module), which a
//! live handler prevents with its heartbeats.
//!
//! A request head must be complete within [`Ctx::header_timeout`] of its first byte
//! (`[runner] client_header_timeout`, 30 s by default; or the inactivity timeout, if shorter),
//! else the client gets a `408` and the connection closes.
//! Pushpin has no such limit: a client trickling one header byte now and then (slowloris) keeps
//! refreshing the inactivity timeout and holds its connection for hours. An idle keep-alive
//! connection that has sent nothing of a next request is not affected.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{
    Body, CloseReason, Closed, Credit, HttpVersion, RequestHead, ResponseHead, StreamId, ToHandler,
    INITIAL_REQUEST_CREDITS,
};
use tracing::{debug, warn};

use super::ctx::Ctx;
use super::stream::{push_body, take_body, RequestBody, Resp, Stream};
use super::transport::{Peer, Transport};
use super::write_queue::{Segment, WriteQueue};
use super::ws_conn::{is_handshake_header, WsSession};
use crate::http1::chunked::{ChunkError, ChunkedDecoder};
use crate::http1::request::{self, BodyFraming};
use crate::http1::response::{self, Framing, RequestInfo};
use crate::ws::handshake;

/// How long a closing connection keeps discarding client input after its last byte was sent.
pub const LINGER: Duration = Duration::from_secs(2);

/// Input discarded while lingering before the connection is simply closed.
const LINGER_MAX_DISCARD: usize = 64 * 1024;

/// The body of the `408` sent when a request head takes longer than [`Ctx::header_timeout`].
pub const HEADER_TIMEOUT_BODY: &str = "Request header not received in time.\n";

/// The body of the `502` sent when the handler cannot answer (reference §4.11).
pub const BAD_GATEWAY_BODY: &str = "Error while proxying to origin.\n";

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// What the worker should do with the connection after a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Status {
    /// Keep it.
    Open,
    /// Remove it (any `Closed` for the handler has already been queued).
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Head,
    Active,
    WebSocket,
    Finishing,
    Linger { until: Instant },
}

enum ReadOutcome {
    Data,
    Full,
    WouldBlock,
    Eof,
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    /// Plain TCP or TLS: the rest of the connection reads and writes plaintext through it.
    transport: Transport,
    pub(super) peer: Peer,
    pub(super) local_port: u16,
    uid: u64,
    pub(super) rbuf: Option<Box<[u8]>>,
    pub(super) rstart: usize,
    pub(super) rend: usize,
    pub(super) wq: WriteQueue,
    readable: bool,
    writable: bool,
    /// Written bytes wait in the worker's credit sweep (see [`Ctx::hold_credit`]).
    credit_held: bool,
    pub(super) phase: Phase,
    pub(super) stream: Option<Box<Stream>>,
    /// The open WebSocket (while the handler has its stream).
    pub(super) ws: Option<Box<WsSession>>,
    last_activity: Instant,
    /// When the first byte of the request head being read arrived (`Phase::Head` only).
    head_since: Option<Instant>,
    timer_tick: Option<u64>,
    discarded: usize,
}

impl Conn {
    /// A connection just accepted; `uid` is unique within the worker (it tells stale timer
    /// entries apart from the connection that reused their slot).
    pub fn new(transport: Transport, peer: Peer, local_port: u16, uid: u64, now: Instant) -> Self {
        Self {
            transport,
            peer,
            local_port,
            uid,
            rbuf: None,
            rstart: 0,
            rend: 0,
            wq: WriteQueue::default(),
            readable: false,
            writable: false,
            credit_held: false,
            phase: Phase::Head,
            stream: None,
            ws: None,
            last_activity: now,
            head_since: None,
            timer_tick: None,
            discarded: 0,
        }
    }

    /// The connection came in over TLS (`RequestHead::secure`).
    pub(super) fn is_secure(&self) -> bool {
        self.transport.is_secure()
    }

    /// See [`Self::new`].
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// The open stream, if any.
    pub fn stream_id(&self) -> Option<StreamId> {
        match (&self.stream, &self.ws) {
            (Some(s), _) => Some(s.id),
            (None, Some(ws)) => Some(ws.id),
            (None, None) => None,
        }
    }

    /// A stream is open and its response is not complete, or a WebSocket is open.
    pub fn in_flight(&self) -> bool {
        self.stream.as_ref().is_some_and(|s| s.in_flight()) || self.ws.is_some()
    }

    /// Nothing open and nothing to write: can be closed at shutdown without losing anything.
    pub fn is_idle(&self) -> bool {
        self.stream.is_none()
            && self.ws.is_none()
            && matches!(self.phase, Phase::Head | Phase::Linger { .. })
    }

    /// The wheel tick of this connection's pending timer entry.
    pub fn timer_tick(&self) -> Option<u64> {
        self.timer_tick
    }

    /// Records the wheel tick of a newly scheduled entry (`None` once it fired).
    pub fn set_timer_tick(&mut self, tick: Option<u64>) {
        self.timer_tick = tick;
    }

    /// When this connection times out if nothing happens.
    pub fn deadline(&self, cx: &Ctx) -> Instant {
        let inactive = self.last_activity + cx.stream_timeout;
        match self.phase {
            Phase::Linger { until } => until,
            Phase::WebSocket => self
                .ws
                .as_ref()
                .and_then(|ws| ws.grace_deadline())
                .map_or(inactive, |t| t.min(inactive)),
            Phase::Head => self.head_deadline(cx).map_or(inactive, |t| t.min(inactive)),
            _ => inactive,
        }
    }

    /// When the request head being read must be complete, if one has begun.
    fn head_deadline(&self, cx: &Ctx) -> Option<Instant> {
        self.head_since
            .map(|since| since + cx.header_timeout.min(cx.stream_timeout))
    }

    /// Socket readiness reported by the poller.
    pub fn on_ready(
        &mut self,
        slot: usize,
        readable: bool,
        writable: bool,
        cx: &mut Ctx,
    ) -> Status {
        self.readable |= readable;
        self.writable |= writable;
        self.drive(slot, cx)
    }

    /// Makes all the progress currently possible: writes, phase changes, reads, parsing, body;
    /// then credits written response bytes back to the handler.
    pub fn drive(&mut self, slot: usize, cx: &mut Ctx) -> Status {
        let status = self.drive_inner(slot, cx);
        if status == Status::Open {
            if self.rbuf.is_some() && self.rstart == self.rend {
                self.release_read_buffer(cx);
            }
            self.return_credit(slot, false, cx);
        }
        status
    }

    /// The worker's credit sweep: returns the credit this connection held back, whatever its
    /// size.
    pub fn release_held_credit(&mut self, slot: usize, cx: &mut Ctx) {
        self.credit_held = false;
        self.return_credit(slot, true, cx);
    }

    fn drive_inner(&mut self, slot: usize, cx: &mut Ctx) -> Status {
        loop {
            let mut progress = false;

            if self.writable && self.transport.has_pending_output() {
                match self.transport.flush_pending() {
                    Ok(flushed) => {
                        if flushed.bytes > 0 {
                            self.last_activity = cx.now;
                            progress = true;
                        }
                        if flushed.blocked {
                            self.writable = false;
                        }
                    }
                    Err(e) => {
                        debug!(peer = %self.peer, error = %e, "client write failed");
                        return self.client_gone(cx);
                    }
                }
            }

            if !self.wq.is_empty() && self.writable {
                match self.wq.write_to(&mut self.transport, &mut cx.deques) {
                    Ok(written) => {
                        if written.bytes > 0 {
                            self.last_activity = cx.now;
                            progress = true;
                        }
                        if written.blocked {
                            self.writable = false;
                        }
                        if let Some(ws) = self.ws.as_mut() {
                            ws.on_written(written.bytes);
                        }
                        if let Some(stream) = self.stream.as_mut() {
                            let body = u32::try_from(written.body).unwrap_or(u32::MAX);
                            stream.resp_unacked = stream.resp_unacked.saturating_add(body);
                        }
                    }
                    Err(e) => {
                        debug!(peer = %self.peer, error = %e, "client write failed");
                        return self.client_gone(cx);
                    }
                }
            }

            if self.wq.is_empty() {
                match self.phase {
                    Phase::Active if !self.in_flight() => {
                        self.finish_stream(cx);
                        progress = true;
                    }
                    // TLS records (the response's tail, then close_notify) go out before the
                    // write side is shut down.
                    Phase::Finishing if !self.transport.has_pending_output() => {
                        if self.transport.shutdown_write() {
                            self.phase = Phase::Linger {
                                until: cx.now + LINGER,
                            };
                        }
                        progress = true;
                    }
                    _ => {}
                }
            }

            if self.phase == Phase::Head && cx.draining {
                return Status::Close;
            }

            if self.readable && self.wants_read() {
                match self.read(cx) {
                    Ok(ReadOutcome::Data) => progress = true,
                    Ok(ReadOutcome::Full) => {}
                    Ok(ReadOutcome::WouldBlock) => self.readable = false,
                    Ok(ReadOutcome::Eof) => return self.on_eof(cx),
                    Err(e) if e.kind() == io::ErrorKind::InvalidData && self.is_secure() => {
                        debug!(peer = %self.peer, error = %e, "TLS error; closing the connection");
                        return self.on_eof(cx);
                    }
                    Err(e) => {
                        debug!(peer = %self.peer, error = %e, "client read failed");
                        return self.on_eof(cx);
                    }
                }
            }

            match self.phase {
                Phase::Head if self.rstart < self.rend => {
                    progress |= self.start_request(slot, cx);
                }
                Phase::Active => match self.pump_body(cx) {
                    Ok(moved) => progress |= moved,
                    Err(e) => return self.bad_body(slot, e, cx),
                },
                Phase::WebSocket => match self.ws_step(cx) {
                    Ok(moved) => progress |= moved,
                    Err(status) => return status,
                },
                Phase::Linger { .. } => {
                    self.discarded += self.rend - self.rstart;
                    self.rstart = 0;
                    self.rend = 0;
                    if self.discarded > LINGER_MAX_DISCARD {
                        return Status::Close;
                    }
                }
                _ => {}
            }

            if !progress {
                return Status::Open;
            }
        }
    }

    /// The response head from the handler.
    pub fn on_response(&mut self, slot: usize, mut head: ResponseHead, cx: &mut Ctx) -> Status {
        let Some(stream) = self.stream.as_mut() else {
            return Status::Open;
        };
        if stream.upgrade.is_some() {
            // A rejected WebSocket upgrade: an ordinary response, then the connection closes.
            if head.code == 101 {
                return self.handler_violation(
                    slot,
                    "101 Response to an upgrade (not WsAccept)",
                    cx,
                );
            }
            head.headers.retain(|h| !is_handshake_header(&h.0));
        }
        match stream.resp {
            Resp::Waiting => {}
            Resp::Done { .. } => {
                warn!(stream = %stream.id, "handler sent a response head after the end; ignored");
                return Status::Open;
            }
            Resp::Sending { .. } => {
                return self.handler_violation(slot, "second response head", cx);
            }
        }
        if head.body.len() > stream.resp_avail as usize {
            return self.handler_violation(slot, "response body beyond credits", cx);
        }
        let info = RequestInfo {
            version: stream.version,
            persistent: stream.persistent && !cx.draining,
            is_head: stream.is_head,
        };
        let plan = match response::plan(&info, head.code, &head.headers, head.body.len(), head.more)
        {
            Ok(plan) => plan,
            Err(e) => {
                warn!(stream = %stream.id, error = %e, "unusable response from the handler");
                let version = stream.version;
                self.end_stream(Some(CloseReason::BackendError), cx);
                self.send_error(version, 502, "Bad Gateway", BAD_GATEWAY_BODY, cx);
                return self.drive(slot, cx);
            }
        };
        debug!(stream = %stream.id, code = head.code, "response");
        let mut out = Vec::with_capacity(128);
        response::write_head(
            &mut out,
            stream.version,
            head.code,
            &head.reason,
            &head.headers,
            &plan,
        );
        self.wq.push(Segment::Framing(out.into()), &mut cx.deques);
        stream.resp = Resp::Sending {
            framing: plan.framing,
            remaining: match plan.framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            persistent: plan.persistent,
        };
        // Checked against the credits above, so this cannot fail.
        let _ = push_body(stream, &mut self.wq, head.body, head.more, cx);
        self.drive(slot, cx)
    }

    /// More response body from the handler.
    pub fn on_body(&mut self, slot: usize, body: Body, cx: &mut Ctx) -> Status {
        let Some(stream) = self.stream.as_mut() else {
            return Status::Open;
        };
        if matches!(stream.resp, Resp::Done { .. }) {
            // Late body after the end: a handler bug, but the response being written is fine.
            warn!(stream = %stream.id, "handler sent body after the end of the response; ignored");
            return Status::Open;
        }
        if let Err(what) = push_body(stream, &mut self.wq, body.data, body.more, cx) {
            return self.handler_violation(slot, what, cx);
        }
        self.drive(slot, cx)
    }

    /// True if the connection holds a pooled buffer (read buffer or write queue).
    #[cfg(test)]
    pub fn holds_buffers(&self) -> bool {
        self.rbuf.is_some() || self.wq.holds_buffer()
    }

    /// The handler accepts `bytes` more request body bytes.
    pub fn on_credit(&mut self, slot: usize, bytes: u32, cx: &mut Ctx) -> Status {
        if let Some(stream) = self.stream.as_mut() {
            stream.req_credits = stream.req_credits.saturating_add(bytes);
        }
        if let Some(ws) = self.ws.as_mut() {
            ws.add_credit(bytes);
        }
        self.drive(slot, cx)
    }

    /// The handler aborted the stream: close without writing anything more.
    pub fn on_close(&mut self, cx: &mut Ctx) -> Status {
        self.end_stream(None, cx);
        Status::Close
    }

    /// The connection's timer fired (it may have been refreshed since it was scheduled).
    pub fn on_timeout(&mut self, slot: usize, cx: &mut Ctx) -> Status {
        if cx.now < self.deadline(cx) {
            return Status::Open;
        }
        if self.phase == Phase::WebSocket {
            return self.ws_timeout(slot, cx);
        }
        if self.phase == Phase::Head && self.head_deadline(cx).is_some_and(|t| cx.now >= t) {
            debug!(peer = %self.peer, "request head not complete in time");
            self.head_since = None;
            self.send_error(
                HttpVersion::Http11,
                408,
                "Request Timeout",
                HEADER_TIMEOUT_BODY,
                cx,
            );
            return self.drive(slot, cx);
        }
        if self.in_flight() {
            debug!(peer = %self.peer, "stream timed out");
        }
        self.end_stream(Some(CloseReason::Timeout), cx);
        Status::Close
    }

    /// The handler is gone while this stream waits for it: answer `502` if nothing was sent
    /// yet, else close (the client sees a truncated response).
    pub fn fail(&mut self, slot: usize, reason: CloseReason, cx: &mut Ctx) -> Status {
        if self.ws.is_some() {
            return self.ws_fail(slot, reason, cx);
        }
        let Some(stream) = self.stream.as_ref() else {
            return Status::Open;
        };
        if !stream.in_flight() {
            return Status::Open;
        }
        let waiting = stream.resp == Resp::Waiting;
        let version = stream.version;
        self.end_stream(Some(reason), cx);
        if waiting {
            self.send_error(version, 502, "Bad Gateway", BAD_GATEWAY_BODY, cx);
            self.drive(slot, cx)
        } else {
            Status::Close
        }
    }

    /// Ends the open stream (telling the handler why, if `reason` is given and the stream was
    /// in flight); the caller then removes the connection.
    pub fn cancel(&mut self, reason: Option<CloseReason>, cx: &mut Ctx) {
        self.end_stream(reason, cx);
    }

    /// Gives the connection's buffers back; call before dropping it.
    pub fn release(&mut self, cx: &mut Ctx) {
        self.release_read_buffer(cx);
        self.wq.release(&mut cx.deques);
    }

    fn wants_read(&self) -> bool {
        match self.phase {
            Phase::Head | Phase::Active | Phase::WebSocket => {
                !(self.rstart == 0 && self.rbuf.as_ref().is_some_and(|b| self.rend == b.len()))
            }
            Phase::Linger { .. } => true,
            Phase::Finishing => false,
        }
    }

    fn read(&mut self, cx: &mut Ctx) -> io::Result<ReadOutcome> {
        let buf = self.rbuf.get_or_insert_with(|| cx.buffers.take());
        if self.rend == buf.len() {
            if self.rstart == 0 {
                return Ok(ReadOutcome::Full);
            }
            buf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        loop {
            let offered = buf.len() - self.rend;
            match self.transport.read(&mut buf[self.rend..]) {
                Ok(0) => return Ok(ReadOutcome::Eof),
                Ok(n) => {
                    self.rend += n;
                    self.last_activity = cx.now;
                    if n < offered && self.transport.short_read_drains() {
                        self.readable = false;
                    }
                    return Ok(ReadOutcome::Data);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(ReadOutcome::WouldBlock)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn release_read_buffer(&mut self, cx: &mut Ctx) {
        if let Some(buf) = self.rbuf.take() {
            cx.buffers.give(buf);
        }
        self.rstart = 0;
        self.rend = 0;
    }

    fn compact(&mut self) {
        if let Some(buf) = self.rbuf.as_mut() {
            if self.rstart > 0 {
                buf.copy_within(self.rstart..self.rend, 0);
                self.rend -= self.rstart;
                self.rstart = 0;
            }
        }
    }

    /// Parses a request head from the buffer; returns true if something happened (a request
    /// opened or an error response queued).
    fn start_request(&mut self, slot: usize, cx: &mut Ctx) -> bool {
        let Some(buf) = self.rbuf.as_ref() else {
            return false;
        };
        let parsed = request::parse(&buf[self.rstart..self.rend], cx.buffer_size);
        if !matches!(parsed, Ok(None)) {
            self.head_since = None;
        }
        match parsed {
            Ok(None) => {
                self.head_since.get_or_insert(cx.now);
                self.compact();
                false
            }
            Ok(Some((req, head_len))) => {
                self.rstart += head_len;
                self.open_stream(slot, req, cx);
                true
            }
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "bad request");
                let body = format!("{e}\n");
                self.send_error(HttpVersion::Http11, 400, "Bad Request", &body, cx);
                true
            }
        }
    }

    fn open_stream(&mut self, slot: usize, req: request::Request, cx: &mut Ctx) {
        if handshake::is_upgrade(&req.headers) {
            return self.open_upgrade(slot, req, cx);
        }
        let body = match req.body {
            BodyFraming::None => RequestBody::Done,
            BodyFraming::Length(n) => RequestBody::Length(n),
            BodyFraming::Chunked => RequestBody::Chunked(ChunkedDecoder::new()),
        };
        let mut stream = Box::new(Stream {
            id: cx.next_stream_id(slot),
            version: req.version,
            persistent: req.persistent,
            is_head: req.is_head(),
            body,
            req_credits: INITIAL_REQUEST_CREDITS,
            resp: Resp::Waiting,
            resp_avail: cx.response_window,
            resp_unacked: 0,
            last_fanout: 0,
            credit_deferred: false,
            upgrade: None,
        });
        let input = match self.rbuf.as_ref() {
            Some(buf) => &buf[self.rstart..self.rend],
            None => &[][..],
        };
        let first = match take_body(input, &mut stream.body, stream.req_credits) {
            Ok((data, consumed)) => {
                self.rstart += consumed;
                data
            }
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "bad chunked body");
                let text = format!("Failed to parse request: {e}\n");
                self.send_error(req.version, 400, "Bad Request", &text, cx);
                return;
            }
        };
        stream.req_credits -= first.len() as u32;
        let more = !matches!(stream.body, RequestBody::Done);
        if req.expect_continue && more {
            self.wq.push(
                Segment::Framing(Bytes::from_static(CONTINUE)),
                &mut cx.deques,
            );
        }
        debug!(
            stream = %stream.id,
            peer = %self.peer,
            method = %req.method,
            target = %req.target,
            "request"
        );
        cx.send(ToHandler::Request(RequestHead {
            id: stream.id,
            method: req.method,
            target: req.target,
            version: req.version,
            headers: req.headers,
            peer_addr: self.peer.addr_text(),
            peer_port: self.peer.port(),
            secure: self.transport.is_secure(),
            local_port: self.local_port,
            body: first,
            more,
            credits: cx.response_window,
        }));
        cx.stream_opened();
        self.stream = Some(stream);
        self.phase = Phase::Active;
    }

    /// Forwards buffered request body within the handler's credits; true if bytes moved.
    fn pump_body(&mut self, cx: &mut Ctx) -> Result<bool, ChunkError> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        // Once the response is complete the handler no longer wants the body; the connection
        // closes after the response instead of reusing a half-read request.
        if matches!(stream.body, RequestBody::Done) || !stream.in_flight() {
            return Ok(false);
        }
        let Some(buf) = self.rbuf.as_ref() else {
            return Ok(false);
        };
        if self.rstart == self.rend {
            return Ok(false);
        }
        let input = &buf[self.rstart..self.rend];
        let (data, consumed) = take_body(input, &mut stream.body, stream.req_credits)?;
        self.rstart += consumed;
        let done = matches!(stream.body, RequestBody::Done);
        if data.is_empty() && !done {
            return Ok(consumed > 0);
        }
        stream.req_credits -= data.len() as u32;
        cx.send(ToHandler::Body(Body {
            id: stream.id,
            data,
            more: !done,
        }));
        Ok(true)
    }

    fn bad_body(&mut self, slot: usize, e: ChunkError, cx: &mut Ctx) -> Status {
        debug!(peer = %self.peer, error = %e, "bad chunked body");
        let Some(stream) = self.stream.as_ref() else {
            return Status::Close;
        };
        let waiting = stream.resp == Resp::Waiting;
        let version = stream.version;
        self.end_stream(Some(CloseReason::BadRequest), cx);
        if waiting {
            let text = format!("Failed to parse request: {e}\n");
            self.send_error(version, 400, "Bad Request", &text, cx);
            self.drive(slot, cx)
        } else {
            Status::Close
        }
    }

    fn on_eof(&mut self, cx: &mut Ctx) -> Status {
        self.client_gone(cx)
    }

    fn client_gone(&mut self, cx: &mut Ctx) -> Status {
        if self.in_flight() {
            debug!(peer = %self.peer, "client gone during a stream");
        }
        self.end_stream(Some(CloseReason::ClientGone), cx);
        Status::Close
    }

    pub(super) fn handler_violation(&mut self, slot: usize, what: &str, cx: &mut Ctx) -> Status {
        let Some(stream) = self.stream.as_ref() else {
            return Status::Close;
        };
        warn!(stream = %stream.id, "handler protocol violation: {what}; aborting the stream");
        let waiting = stream.resp == Resp::Waiting;
        let in_flight = stream.in_flight();
        let version = stream.version;
        self.end_stream(Some(CloseReason::BackendError), cx);
        if waiting && in_flight {
            self.send_error(version, 502, "Bad Gateway", BAD_GATEWAY_BODY, cx);
            self.drive(slot, cx)
        } else {
            Status::Close
        }
    }

    /// Drops the stream; if it was waiting for the handler, settles it and (with a reason) tells
    /// the handler.
    pub(super) fn end_stream(&mut self, reason: Option<CloseReason>, cx: &mut Ctx) {
        if let Some(ws) = self.ws.take() {
            cx.stream_settled();
            if let Some(reason) = reason {
                cx.send(ToHandler::Closed(Closed { id: ws.id, reason }));
            }
        }
        if let Some(stream) = self.stream.take() {
            if stream.in_flight() {
                cx.stream_settled();
                if let Some(reason) = reason {
                    cx.send(ToHandler::Closed(Closed {
                        id: stream.id,
                        reason,
                    }));
                }
            }
        }
    }

    /// Queues a complete error response and closes after it.
    fn send_error(
        &mut self,
        version: HttpVersion,
        code: u16,
        reason: &str,
        body: &str,
        cx: &mut Ctx,
    ) {
        let bytes = response::error_response(version, code, reason, body);
        self.wq.push(Segment::Framing(bytes.into()), &mut cx.deques);
        self.phase = Phase::Finishing;
    }

    /// The response is complete and written: next request, or close.
    fn finish_stream(&mut self, cx: &mut Ctx) {
        let Some(stream) = self.stream.take() else {
            self.phase = Phase::Head;
            return;
        };
        let persistent = match stream.resp {
            Resp::Done { persistent } => persistent,
            _ => false,
        };
        let keep = persistent && matches!(stream.body, RequestBody::Done) && !cx.draining;
        self.phase = if keep { Phase::Head } else { Phase::Finishing };
    }

    /// Returns written response bytes to the handler as credit. Less than `cx.credit_batch`
    /// bytes wait for the worker's credit sweep unless `now` is set: the handler still holds
    /// three quarters of its window then, and a fan-out of small messages returns one
    /// `Credit` per stream per sweep instead of one per message.
    fn return_credit(&mut self, slot: usize, now: bool, cx: &mut Ctx) {
        let pending = if let Some(ws) = self.ws.as_ref() {
            ws.credit_due()
        } else {
            match self.stream.as_ref() {
                Some(stream) if matches!(stream.resp, Resp::Sending { .. }) => stream.resp_unacked,
                _ => 0,
            }
        };
        if pending == 0 {
            return;
        }
        if !now && pending < cx.credit_batch {
            if !self.credit_held {
                self.credit_held = true;
                cx.hold_credit(slot, self.uid);
            }
            return;
        }
        if let Some(ws) = self.ws.as_mut() {
            if let Some(bytes) = ws.take_credit() {
                cx.send(ToHandler::Credit(Credit { id: ws.id, bytes }));
            }
            return;
        }
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let bytes = stream.resp_unacked;
        stream.resp_unacked = 0;
        stream.resp_avail = stream.resp_avail.saturating_add(bytes);
        cx.send(ToHandler::Credit(Credit {
            id: stream.id,
            bytes,
        }));
    }
}
