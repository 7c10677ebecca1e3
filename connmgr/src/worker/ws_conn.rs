//! A WebSocket connection: the upgrade handshake with the handler, then frames both ways.
//!
//! # Handshake
//!
//! A request head whose `Upgrade` lists `websocket` never becomes a plain HTTP request. An
//! invalid handshake gets [`handshake::rejection_response`] (`400`, Pushpin's text) and the
//! connection closes. A valid one goes to the handler as [`ToHandler::Upgrade`] (same fields as
//! a `Request`; response credits as for HTTP) and the connection waits in its HTTP `Active`
//! phase. A [`ToConnmgr::Response`](holdfast_proto::internal::ToConnmgr::Response) rejects it:
//! it is written as an ordinary HTTP response (without the handshake headers) and the connection
//! closes. A [`WsAccept`] writes the `101` ([`handshake::write_switching_protocols`], with
//! permessage-deflate when `--compression` is on and the client offered it) and the connection
//! switches to its WebSocket phase, keeping whatever the client already sent.
//!
//! # Reading
//!
//! Frame headers are parsed with the server rules, payloads are unmasked in the read buffer and
//! fed to the [`Assembler`] as they arrive, so the read buffer never has to hold a whole frame.
//! A complete message goes to the handler as [`ToHandler::WsMessage`]; its payload counts
//! against the handler's credits ([`INITIAL_REQUEST_CREDITS`] plus its `Credit` grants), like
//! request body bytes. A message that does not fit the credits waits (alone: reading stops until
//! credit arrives), except that a message larger than the whole initial window is sent once
//! nothing is outstanding, so a message up to `--max-message-size` can never deadlock. A client
//! therefore makes its connection hold at most one read buffer, one message being assembled and
//! one message waiting. Pings are answered with a Pong at once *and* forwarded (Pushpin forwards
//! ping and pong to the backend); pongs are forwarded.
//!
//! Any protocol error (frame rules, UTF-8, sizes, deflate data) fails the connection: a Close
//! with the error's code (1002, 1007, 1009), [`ToHandler::Closed`] with
//! [`CloseReason::BadRequest`], then the TCP connection closes once the Close is written.
//!
//! # Writing
//!
//! A handler message is framed with its header in a 10-byte stack buffer ahead of the payload
//! `Bytes` (never copied), compressed first when deflate was negotiated. A
//! [`WsFanout`](holdfast_proto::internal::WsFanout) is framed once per worker ([`OutFrame`]),
//! compressed at most once (every deflate connection negotiated `server_no_context_takeover`,
//! so one compressed payload suits them all), and the same `Bytes` is queued on each
//! connection. Payload bytes count against the credits the handler was granted; they are
//! credited back as each whole message reaches the socket. A message larger than the whole
//! window costs exactly the window, so the handler can send it only when it holds every credit
//! (nothing outstanding) and the connection then holds that one message alone; its credit comes
//! back, the whole window at once, when its last byte reaches the socket. A message beyond a
//! stream's credits aborts only that stream.
//!
//! # Closing
//!
//! - The client closes first: its code and reason go to the handler as [`ToHandler::WsClose`]
//!   and further input is discarded; the handler's [`WsClose`] answer is written and the
//!   connection closes. Without an answer within [`CLOSE_GRACE`] the client's code is echoed,
//!   the handler gets `Closed(Timeout)` and the connection closes.
//! - The handler closes first: its Close is written and the connection waits up to
//!   [`CLOSE_GRACE`] for the client's, which goes to the handler as a `WsClose` (the stream has
//!   then ended on both sides).
//! - Shutdown: a Close with 1001 (going away) and `Closed(Shutdown)` for the handler.
//! - TCP gone without a Close: `Closed(ClientGone)`. `--stream-timeout` applies as for HTTP:
//!   reads and writes refresh it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::internal::{
    CloseReason, HttpVersion, RequestHead, StreamId, ToHandler, WsAccept, WsClose, WsKind,
    WsMessage, INITIAL_REQUEST_CREDITS,
};
use tracing::{debug, warn};

use super::conn::{Conn, Phase, Status};
use super::ctx::Ctx;
use super::stream::{FanoutOutcome, RequestBody, Resp, Stream};
use super::write_queue::{Segment, WriteQueue};
use crate::http1::request::Request;
use crate::ws::close::{self, INTERNAL_ERROR};
use crate::ws::frame::{self, HeaderBuf, OpCode, ParseRules, Parsed, MAX_CONTROL_PAYLOAD};
use crate::ws::handshake::{self, Accepted};
use crate::ws::mask::apply_mask;
use crate::ws::message::{Assembler, Message};

/// How long a closing WebSocket waits for the other side's Close.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Output (beyond the response window) a connection may have unwritten before it stops reading
/// the client: bounds the Pongs a client that pings without reading can pile up.
const OUTPUT_SLACK: u64 = 64 * 1024;

/// One handler message framed for the wire, shareable by any number of connections.
#[derive(Debug)]
pub struct OutFrame {
    opcode: OpCode,
    /// The payload as the handler sent it: what it costs in credits.
    data: Bytes,
    plain: HeaderBuf,
    /// Header and payload compressed once, on first use: `None` until then, and `Some(None)`
    /// when the message is not compressed (control frames, empty or failed compression).
    compressed: Option<Option<(HeaderBuf, Bytes)>>,
}

impl OutFrame {
    /// Frames a message of `kind`; refuses a Ping or Pong longer than a control frame allows.
    pub fn new(kind: WsKind, data: Bytes) -> Result<Self, &'static str> {
        let opcode = match kind {
            WsKind::Text => OpCode::Text,
            WsKind::Binary => OpCode::Binary,
            WsKind::Ping => OpCode::Ping,
            WsKind::Pong => OpCode::Pong,
        };
        if opcode.is_control() && data.len() > MAX_CONTROL_PAYLOAD {
            return Err("ping or pong payload longer than 125 bytes");
        }
        Ok(Self {
            opcode,
            plain: frame::encode_header(true, false, opcode, data.len()),
            data,
            compressed: None,
        })
    }

    /// Payload bytes, as counted against credits.
    pub fn credit_len(&self) -> usize {
        self.data.len()
    }

    /// The header and payload for a connection with (`deflate`) or without permessage-deflate.
    pub fn wire(&mut self, deflate: bool, cx: &mut Ctx) -> (HeaderBuf, Bytes) {
        if deflate && !self.opcode.is_control() && !self.data.is_empty() {
            let opcode = self.opcode;
            let data = &self.data;
            let compressed = self.compressed.get_or_insert_with(|| {
                match cx.ws.compressor().compress(data) {
                    Ok(payload) => Some((
                        frame::encode_header(true, true, opcode, payload.len()),
                        payload,
                    )),
                    Err(e) => {
                        warn!(error = %e, "cannot compress a WebSocket message; sent uncompressed");
                        None
                    }
                }
            });
            if let Some((header, payload)) = compressed {
                return (*header, payload.clone());
            }
        }
        (self.plain, self.data.clone())
    }
}

/// Where the closing handshake is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Closing {
    /// Neither side sent a Close.
    Open,
    /// The client's Close went to the handler; waiting for the handler's until `until`.
    ByClient { until: Instant, echo: Option<u16> },
    /// The handler's Close was written; waiting for the client's until `until`.
    ByServer { until: Instant },
}

/// What reading the client's input led to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Nothing that ends the connection.
    Continue,
    /// Fail the connection with this close code (RFC 6455 §7.1.7).
    Fail(u16, String),
    /// The client answered our Close: the WebSocket is over on both sides.
    Done,
}

/// The WebSocket state of a connection (present while the handler has the stream).
#[derive(Debug)]
pub(super) struct WsSession {
    /// The stream id the handler knows it by.
    pub(super) id: StreamId,
    rules: ParseRules,
    assembler: Assembler,
    deflate: bool,
    /// Masking key and payload offset of the frame being read.
    frame: Option<([u8; 4], usize)>,
    /// A complete client message waiting for credits.
    pending: Option<(WsKind, Bytes)>,
    /// Message bytes the handler still accepts (negative after an oversized message).
    in_credits: i64,
    /// Message bytes the handler may still send.
    out_avail: u32,
    /// The response window the handler was granted (the `credits` of the `Upgrade`): a larger
    /// message costs exactly this much and is only accepted when `out_avail` is all of it.
    window: u32,
    /// Message bytes written but not yet credited back.
    out_unacked: u32,
    /// A fanout queued bytes here that the worker writes in its flush at the end of the pass
    /// (see the `fanout` module): the credit return waits for that flush, so the fanouts of
    /// one pass cost one `Credit`.
    pub(super) credit_deferred: bool,
    /// Sequence number of the last fanout queued (see `Stream::last_fanout`).
    last_fanout: u64,
    /// Bytes queued on the write queue and written from it since the switch.
    queued: u64,
    written: u64,
    /// (queue position where a message ends, its credit), oldest first.
    acks: VecDeque<(u64, u32)>,
    closing: Closing,
    /// The client sent its Close: later input is discarded.
    input_closed: bool,
}

impl WsSession {
    /// A session for stream `id` that negotiated `accepted`, with `window` response credits and
    /// `queued` bytes (the `101`) already on the write queue.
    pub(super) fn new(
        id: StreamId,
        accepted: &Accepted,
        window: u32,
        queued: usize,
        cx: &Ctx,
    ) -> Self {
        let limits = cx.ws.limits;
        let deflate = accepted.deflate.is_some();
        Self {
            id,
            rules: ParseRules::new(&limits, deflate),
            assembler: Assembler::new(limits, accepted.deflate.as_ref()),
            deflate,
            frame: None,
            pending: None,
            in_credits: i64::from(INITIAL_REQUEST_CREDITS),
            out_avail: window,
            window,
            out_unacked: 0,
            credit_deferred: false,
            last_fanout: 0,
            queued: queued as u64,
            written: 0,
            acks: VecDeque::new(),
            closing: Closing::Open,
            input_closed: false,
        }
    }

    /// When the closing handshake gives up waiting, if one is under way.
    pub(super) fn grace_deadline(&self) -> Option<Instant> {
        match self.closing {
            Closing::Open => None,
            Closing::ByClient { until, .. } | Closing::ByServer { until } => Some(until),
        }
    }

    /// The handler grants `bytes` more message bytes.
    pub(super) fn add_credit(&mut self, bytes: u32) {
        self.in_credits = self.in_credits.saturating_add(i64::from(bytes));
    }

    /// `n` bytes of the write queue reached the socket.
    pub(super) fn on_written(&mut self, n: usize) {
        self.written += n as u64;
        while let Some(&(end, credit)) = self.acks.front() {
            if end > self.written {
                break;
            }
            self.out_unacked = self.out_unacked.saturating_add(credit);
            self.acks.pop_front();
        }
    }

    /// Credit that [`Self::take_credit`] would return now (0: none).
    pub(super) fn credit_due(&self) -> u32 {
        if self.credit_deferred {
            0
        } else {
            self.out_unacked
        }
    }

    /// Credit to return to the handler now, if any.
    pub(super) fn take_credit(&mut self) -> Option<u32> {
        if self.credit_due() == 0 {
            return None;
        }
        let bytes = std::mem::take(&mut self.out_unacked);
        self.out_avail = self.out_avail.saturating_add(bytes);
        Some(bytes)
    }

    /// Consumes client input (unmasking it in place), sending complete messages to the handler
    /// and answering pings. Returns the bytes consumed, whether anything moved, and the step.
    pub(super) fn process(
        &mut self,
        input: &mut [u8],
        wq: &mut WriteQueue,
        cx: &mut Ctx,
    ) -> (usize, bool, Step) {
        let mut used = 0;
        let mut moved = false;
        loop {
            if self.input_closed {
                return (input.len(), moved || !input.is_empty(), Step::Continue);
            }
            match self.flush_pending(cx) {
                Some(true) => moved = true,
                Some(false) => break,
                None => {}
            }
            let unwritten = self.queued.saturating_sub(self.written);
            if unwritten > u64::from(cx.response_window) + OUTPUT_SLACK {
                break;
            }
            let rest = &mut input[used..];
            let Some((mask, offset)) = self.frame else {
                if rest.is_empty() {
                    break;
                }
                match frame::parse_header(rest, &self.rules) {
                    Ok(Parsed::Partial) => break,
                    Ok(Parsed::Complete(header, n)) => {
                        used += n;
                        moved = true;
                        if let Err(e) = self.assembler.begin_frame(&header) {
                            return (used, true, Step::Fail(e.close_code(), e.to_string()));
                        }
                        self.frame = Some((header.mask, 0));
                    }
                    Err(e) => return (used, true, Step::Fail(e.close_code(), e.to_string())),
                }
                continue;
            };
            let remaining = self.assembler.remaining();
            // At most rest.len(), which is a usize.
            let take = (rest.len() as u64).min(remaining) as usize;
            if take == 0 && remaining > 0 {
                break;
            }
            let chunk = &mut rest[..take];
            apply_mask(chunk, mask, offset);
            if let Err(e) = self.assembler.push_payload(chunk) {
                return (used, true, Step::Fail(e.close_code(), e.to_string()));
            }
            used += take;
            moved = true;
            if take as u64 != remaining {
                self.frame = Some((mask, offset + take));
                continue;
            }
            self.frame = None;
            match self.assembler.end_frame() {
                Ok(Some(message)) => {
                    let step = self.on_message(message, wq, cx);
                    if step != Step::Continue {
                        return (used, true, step);
                    }
                }
                Ok(None) => {}
                Err(e) => return (used, true, Step::Fail(e.close_code(), e.to_string())),
            }
        }
        (used, moved, Step::Continue)
    }

    fn on_message(&mut self, message: Message, wq: &mut WriteQueue, cx: &mut Ctx) -> Step {
        match message {
            Message::Text(data) => self.deliver(WsKind::Text, data, cx),
            Message::Binary(data) => self.deliver(WsKind::Binary, data, cx),
            Message::Ping(data) => {
                if self.closing == Closing::Open {
                    self.push_control(wq, OpCode::Pong, &data, cx);
                }
                self.deliver(WsKind::Ping, data, cx);
            }
            Message::Pong(data) => self.deliver(WsKind::Pong, data, cx),
            Message::Close(frame) => {
                let (code, reason) = match frame {
                    Some(f) => (Some(f.code), f.reason),
                    None => (None, String::new()),
                };
                debug!(stream = %self.id, ?code, "client closed the WebSocket");
                self.input_closed = true;
                cx.send(ToHandler::WsClose(WsClose {
                    id: self.id,
                    code,
                    reason,
                }));
                match self.closing {
                    Closing::ByServer { .. } => return Step::Done,
                    _ => {
                        self.closing = Closing::ByClient {
                            until: cx.now + CLOSE_GRACE,
                            echo: code,
                        }
                    }
                }
            }
        }
        Step::Continue
    }

    /// Sends a client message to the handler if its credits allow, else keeps it pending.
    fn deliver(&mut self, kind: WsKind, data: Bytes, cx: &mut Ctx) {
        debug_assert!(self.pending.is_none());
        self.pending = Some((kind, data));
        self.flush_pending(cx);
    }

    /// `None`: nothing pending; `Some(sent)` otherwise.
    fn flush_pending(&mut self, cx: &mut Ctx) -> Option<bool> {
        let len = self.pending.as_ref()?.1.len() as i64;
        let everything_back = self.in_credits >= i64::from(INITIAL_REQUEST_CREDITS);
        if len > self.in_credits && !everything_back {
            return Some(false);
        }
        let (kind, data) = self.pending.take()?;
        self.in_credits -= len;
        cx.send(ToHandler::WsMessage(WsMessage {
            id: self.id,
            kind,
            data,
        }));
        Some(true)
    }

    /// Queues a handler message. `Err` if it breaks the handler's credits; `Ok(false)` if it
    /// was dropped because the WebSocket is closing.
    pub(super) fn push_message(
        &mut self,
        out: &mut OutFrame,
        wq: &mut WriteQueue,
        cx: &mut Ctx,
    ) -> Result<bool, &'static str> {
        // A message larger than the window costs the whole window (the rule of
        // `internal::WsMessage`): the handler may send it only when it holds every credit.
        let cost = out.credit_len().min(self.window as usize);
        if cost > self.out_avail as usize {
            return Err("WebSocket message beyond credits");
        }
        if matches!(self.closing, Closing::ByServer { .. }) {
            return Ok(false);
        }
        // cost <= out_avail, a u32.
        let cost = cost as u32;
        self.out_avail -= cost;
        let (header, payload) = out.wire(self.deflate, cx);
        self.push(wq, header.as_bytes(), payload, cx);
        if cost > 0 {
            self.acks.push_back((self.queued, cost));
        }
        Ok(true)
    }

    /// Queues fanout number `seq` (see [`OutFrame`]).
    pub(super) fn push_fanout(
        &mut self,
        out: &mut OutFrame,
        seq: u64,
        wq: &mut WriteQueue,
        cx: &mut Ctx,
    ) -> FanoutOutcome {
        if self.last_fanout == seq {
            return FanoutOutcome::Duplicate;
        }
        if matches!(self.closing, Closing::ByServer { .. }) {
            return FanoutOutcome::Finished;
        }
        self.last_fanout = seq;
        match self.push_message(out, wq, cx) {
            Ok(true) => FanoutOutcome::Queued,
            Ok(false) => FanoutOutcome::Finished,
            Err(_) => FanoutOutcome::OverCredit,
        }
    }

    /// The handler's Close. Returns true if the WebSocket is over (the client closed first).
    pub(super) fn handler_close(
        &mut self,
        code: Option<u16>,
        reason: &str,
        wq: &mut WriteQueue,
        cx: &mut Ctx,
    ) -> bool {
        match self.closing {
            Closing::ByServer { .. } => false,
            Closing::ByClient { .. } => {
                self.push_close(wq, code, reason, cx);
                true
            }
            Closing::Open => {
                self.push_close(wq, code, reason, cx);
                self.closing = Closing::ByServer {
                    until: cx.now + CLOSE_GRACE,
                };
                false
            }
        }
    }

    /// The grace period ran out: echoes the client's Close if it is the one waiting.
    pub(super) fn grace_expired(&mut self, wq: &mut WriteQueue, cx: &mut Ctx) {
        if let Closing::ByClient { echo, .. } = self.closing {
            self.push_close(wq, echo, "", cx);
        }
    }

    /// Queues a Close frame (`None`: without a status code).
    pub(super) fn push_close(
        &mut self,
        wq: &mut WriteQueue,
        code: Option<u16>,
        reason: &str,
        cx: &mut Ctx,
    ) {
        let mut payload = Vec::with_capacity(MAX_CONTROL_PAYLOAD);
        if let Some(code) = code {
            close::encode_payload(&mut payload, code, reason);
        }
        self.push_control(wq, OpCode::Close, &payload, cx);
    }

    fn push_control(&mut self, wq: &mut WriteQueue, opcode: OpCode, payload: &[u8], cx: &mut Ctx) {
        let mut bytes = Vec::with_capacity(2 + payload.len());
        frame::encode_frame(&mut bytes, true, false, opcode, payload);
        self.queued += bytes.len() as u64;
        wq.push(Segment::Framing(bytes.into()), &mut cx.deques);
    }

    fn push(&mut self, wq: &mut WriteQueue, header: &[u8], payload: Bytes, cx: &mut Ctx) {
        self.queued += (header.len() + payload.len()) as u64;
        wq.push(Segment::inline(header), &mut cx.deques);
        wq.push(Segment::Body(payload), &mut cx.deques);
    }
}

/// The handshake headers a rejection of an upgrade must not carry.
pub(super) fn is_handshake_header(name: &str) -> bool {
    [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

impl Conn {
    /// A request head asking for WebSocket: refuse it with `400`, or announce it to the handler.
    pub(super) fn open_upgrade(&mut self, slot: usize, req: Request, cx: &mut Ctx) {
        let options = cx.ws.deflate_options();
        let accepted =
            match handshake::validate(&req.method, req.version, &req.headers, options.as_ref()) {
                Ok(accepted) => accepted,
                Err(e) => {
                    debug!(peer = %self.peer, error = %e, "invalid WebSocket upgrade");
                    let bytes = handshake::rejection_response(req.version, &e);
                    self.wq.push(Segment::Framing(bytes.into()), &mut cx.deques);
                    self.phase = Phase::Finishing;
                    return;
                }
            };
        let stream = Box::new(Stream {
            id: cx.next_stream_id(slot),
            version: HttpVersion::Http11,
            persistent: false,
            is_head: false,
            body: RequestBody::Done,
            req_credits: INITIAL_REQUEST_CREDITS,
            resp: Resp::Waiting,
            resp_avail: cx.response_window,
            resp_unacked: 0,
            last_fanout: 0,
            credit_deferred: false,
            upgrade: Some(Box::new(accepted)),
        });
        debug!(
            stream = %stream.id,
            peer = %self.peer,
            target = %req.target,
            "WebSocket upgrade"
        );
        cx.send(ToHandler::Upgrade(RequestHead {
            id: stream.id,
            method: req.method,
            target: req.target,
            version: req.version,
            headers: req.headers,
            peer_addr: self.peer.addr_text(),
            peer_port: self.peer.port(),
            secure: self.is_secure(),
            local_port: self.local_port,
            body: Bytes::new(),
            more: false,
            credits: cx.response_window,
        }));
        cx.stream_opened();
        self.stream = Some(stream);
        self.phase = Phase::Active;
    }

    /// The handler accepts the upgrade: write the `101` and switch to WebSocket.
    pub fn on_ws_accept(&mut self, slot: usize, accept: WsAccept, cx: &mut Ctx) -> Status {
        let Some(stream) = self.stream.as_mut() else {
            return Status::Open;
        };
        let accepted = match (&stream.resp, stream.upgrade.take()) {
            (Resp::Waiting, Some(accepted)) => accepted,
            _ => {
                return self.handler_violation(slot, "WsAccept for a stream that is no upgrade", cx)
            }
        };
        let mut head = Vec::with_capacity(256);
        let reason = "Switching Protocols";
        if let Err(e) =
            handshake::write_switching_protocols(&mut head, &accepted, reason, &accept.headers)
        {
            warn!(stream = %stream.id, error = %e, "unusable WsAccept from the handler");
            return self.handler_violation(slot, "unusable WsAccept headers", cx);
        }
        let id = stream.id;
        let window = stream.resp_avail;
        self.stream = None;
        let queued = head.len();
        self.wq.push(Segment::Framing(head.into()), &mut cx.deques);
        let ws = WsSession::new(id, &accepted, window, queued, cx);
        debug!(stream = %id, deflate = ws.deflate, "WebSocket open");
        self.ws = Some(Box::new(ws));
        self.phase = Phase::WebSocket;
        self.drive(slot, cx)
    }

    /// Reads what the client sent (the WebSocket phase of [`Conn::drive`]): `Ok(progress)`, or
    /// the status to return at once.
    pub(super) fn ws_step(&mut self, cx: &mut Ctx) -> Result<bool, Status> {
        let Some(ws) = self.ws.as_mut() else {
            return Err(Status::Close);
        };
        let input: &mut [u8] = match self.rbuf.as_mut() {
            Some(buf) => &mut buf[self.rstart..self.rend],
            None => &mut [],
        };
        let (used, moved, step) = ws.process(input, &mut self.wq, cx);
        self.rstart += used;
        match step {
            Step::Continue => {}
            Step::Fail(code, reason) => {
                debug!(stream = %ws.id, code, %reason, "failing the WebSocket");
                ws.push_close(&mut self.wq, Some(code), "", cx);
                self.end_stream(Some(CloseReason::BadRequest), cx);
                self.phase = Phase::Finishing;
            }
            Step::Done => {
                // The handler sent its Close and has the client's: nothing more to tell it.
                self.end_stream(None, cx);
                self.phase = Phase::Finishing;
            }
        }
        Ok(moved)
    }

    /// A message from the handler for the client.
    pub fn on_ws_message(&mut self, slot: usize, msg: WsMessage, cx: &mut Ctx) -> Status {
        let Some(ws) = self.ws.as_mut() else {
            return self.not_a_websocket(slot, "WsMessage", cx);
        };
        let mut out = match OutFrame::new(msg.kind, msg.data) {
            Ok(out) => out,
            Err(what) => return self.ws_violation(what, cx),
        };
        if let Err(what) = ws.push_message(&mut out, &mut self.wq, cx) {
            return self.ws_violation(what, cx);
        }
        self.drive(slot, cx)
    }

    /// The handler's Close for the client.
    pub fn on_ws_close(&mut self, slot: usize, close: WsClose, cx: &mut Ctx) -> Status {
        let Some(ws) = self.ws.as_mut() else {
            return self.not_a_websocket(slot, "WsClose", cx);
        };
        debug!(stream = %ws.id, code = ?close.code, "handler closed the WebSocket");
        if ws.handler_close(close.code, &close.reason, &mut self.wq, cx) {
            self.end_stream(None, cx);
            self.phase = Phase::Finishing;
        }
        self.drive(slot, cx)
    }

    /// The timer fired past the deadline of a WebSocket: the closing handshake's grace period
    /// or the inactivity timeout.
    pub(super) fn ws_timeout(&mut self, slot: usize, cx: &mut Ctx) -> Status {
        let grace_over = self
            .ws
            .as_ref()
            .and_then(|ws| ws.grace_deadline())
            .is_some_and(|t| cx.now >= t);
        if let (true, Some(ws)) = (grace_over, self.ws.as_mut()) {
            debug!(stream = %ws.id, "WebSocket closing handshake timed out");
            ws.grace_expired(&mut self.wq, cx);
            self.end_stream(Some(CloseReason::Timeout), cx);
            self.phase = Phase::Finishing;
            return self.drive(slot, cx);
        }
        debug!(peer = %self.peer, "WebSocket timed out");
        self.end_stream(Some(CloseReason::Timeout), cx);
        Status::Close
    }

    /// The handler is gone: close the WebSocket with 1011 and tell the handler why.
    pub(super) fn ws_fail(&mut self, slot: usize, reason: CloseReason, cx: &mut Ctx) -> Status {
        if let Some(ws) = self.ws.as_mut() {
            ws.push_close(&mut self.wq, Some(INTERNAL_ERROR), "", cx);
        }
        self.end_stream(Some(reason), cx);
        self.phase = Phase::Finishing;
        self.drive(slot, cx)
    }

    /// An open WebSocket (the handler has its stream).
    pub fn is_websocket(&self) -> bool {
        self.ws.is_some()
    }

    /// Shutdown: close the WebSocket with 1001 (going away) and tell the handler; the
    /// connection closes once the Close is written.
    pub fn ws_going_away(&mut self, slot: usize, cx: &mut Ctx) -> Status {
        if let Some(ws) = self.ws.as_mut() {
            if ws.grace_deadline().is_none() {
                ws.push_close(&mut self.wq, Some(close::GOING_AWAY), "", cx);
            } else {
                ws.grace_expired(&mut self.wq, cx);
            }
        }
        self.end_stream(Some(CloseReason::Shutdown), cx);
        self.phase = Phase::Finishing;
        self.drive(slot, cx)
    }

    /// The handler broke the protocol on an open WebSocket: abort it (only this one).
    fn ws_violation(&mut self, what: &str, cx: &mut Ctx) -> Status {
        if let Some(ws) = self.ws.as_ref() {
            warn!(stream = %ws.id, "handler protocol violation: {what}; aborting the WebSocket");
        }
        self.end_stream(Some(CloseReason::BackendError), cx);
        Status::Close
    }

    /// A WebSocket message for a stream that is not (yet) a WebSocket.
    fn not_a_websocket(&mut self, slot: usize, kind: &str, cx: &mut Ctx) -> Status {
        match self.stream.as_ref() {
            Some(stream) if stream.upgrade.is_some() => {
                let what = format!("{kind} before WsAccept");
                self.handler_violation(slot, &what, cx)
            }
            Some(_) => self.handler_violation(slot, "WebSocket message for an HTTP stream", cx),
            None => Status::Open,
        }
    }
}

#[cfg(test)]
#[path = "ws_conn_tests.rs"]
mod tests;
