//! The state of one request/response exchange and the two pure steps that move its bodies:
//! taking request body bytes out of the read buffer within the handler's credits
//! ([`take_body`]), and framing response body bytes from the handler into the write queue
//! within the credits the connection granted ([`push_body`], and [`push_fanout`] for a payload
//! shared by many streams). No socket is touched here.

use bytes::Bytes;
use holdfast_proto::internal::{HttpVersion, StreamId};
use tracing::warn;

use super::ctx::Ctx;
use super::write_queue::{Segment, WriteQueue};
use crate::http1::chunked::{ChunkError, ChunkedDecoder};
use crate::http1::response::{self, Framing, LAST_CHUNK};
use crate::ws::handshake::Accepted;

#[derive(Debug)]
/// How much request body is still to come.
pub(super) enum RequestBody {
    /// All of it has been forwarded (or there was none).
    Done,
    /// This many bytes of a Content-Length body.
    Length(u64),
    /// A chunked body, until its decoder reports the end.
    Chunked(ChunkedDecoder),
}

/// Where the response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resp {
    /// No response head yet.
    Waiting,
    /// Head sent; `remaining` counts down a Content-Length body.
    Sending {
        /// How the body is delimited.
        framing: Framing,
        /// Bytes still owed for a `Length` body.
        remaining: u64,
        /// The connection can be reused afterwards.
        persistent: bool,
    },
    /// The handler finished the response (it may still be queued for the socket).
    Done {
        /// The connection can be reused afterwards.
        persistent: bool,
    },
}

/// The open request/response exchange of an `Active` connection.
#[derive(Debug)]
pub(super) struct Stream {
    /// The id the handler knows it by.
    pub(super) id: StreamId,
    /// The request's HTTP version.
    pub(super) version: HttpVersion,
    /// The request allows keeping the connection afterwards.
    pub(super) persistent: bool,
    /// The request was `HEAD`.
    pub(super) is_head: bool,
    /// Request body still to forward.
    pub(super) body: RequestBody,
    /// Request body bytes the handler will still accept.
    pub(super) req_credits: u32,
    /// Response progress.
    pub(super) resp: Resp,
    /// Response body bytes the handler may still send.
    pub(super) resp_avail: u32,
    /// Response body bytes written (or discarded) but not yet credited back.
    pub(super) resp_unacked: u32,
    /// The worker's sequence number of the last [`Fanout`] appended to this stream, so an id
    /// listed twice in one fanout gets the payload once (0: none yet).
    ///
    /// [`Fanout`]: holdfast_proto::internal::Fanout
    pub(super) last_fanout: u64,
    /// Registered for the worker's fanout write flush at the end of the loop pass (see the
    /// `fanout` module); set while fanout bytes wait unwritten, so several fanouts in one pass
    /// cost one write and one `Credit`.
    pub(super) credit_deferred: bool,
    /// A valid WebSocket upgrade waiting for the handler's `WsAccept` (or its rejection).
    pub(super) upgrade: Option<Box<Accepted>>,
}

impl Stream {
    /// The handler still owes (part of) the response.
    pub(super) fn in_flight(&self) -> bool {
        !matches!(self.resp, Resp::Done { .. })
    }
}

/// What a [`push_fanout`] did with one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FanoutOutcome {
    /// The payload was framed and queued (or, for a body-less response, discarded and credited
    /// back, as a `Body` would be).
    Queued,
    /// Skipped: this fanout already reached the stream (its id was listed twice).
    Duplicate,
    /// Skipped: the response head has not been sent yet.
    NotStarted,
    /// Skipped: the response body is complete.
    Finished,
    /// The payload exceeds the stream's credits: a handler protocol violation, nothing queued.
    OverCredit,
}

impl FanoutOutcome {
    /// A short name for logs.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Duplicate => "duplicate id",
            Self::NotStarted => "response not started",
            Self::Finished => "response finished",
            Self::OverCredit => "beyond credits",
        }
    }
}

/// Appends the payload of fanout number `seq` (non-zero, increasing per worker) to one stream,
/// exactly as a `Body` with `more: true` would be. `data` is shared, never copied: each stream's
/// queue holds a refcounted handle to the same bytes between its own framing segments (chunk
/// header inline, static CRLF), which the write queue sends with one `writev`.
pub(super) fn push_fanout(
    stream: &mut Stream,
    wq: &mut WriteQueue,
    data: &Bytes,
    seq: u64,
    cx: &mut Ctx,
) -> FanoutOutcome {
    if stream.last_fanout == seq {
        return FanoutOutcome::Duplicate;
    }
    match stream.resp {
        Resp::Waiting => return FanoutOutcome::NotStarted,
        Resp::Done { .. } => return FanoutOutcome::Finished,
        Resp::Sending { .. } => {}
    }
    if data.len() > stream.resp_avail as usize {
        return FanoutOutcome::OverCredit;
    }
    stream.last_fanout = seq;
    // The stream is `Sending` and the payload within its credits: push_body cannot refuse it.
    match push_body(stream, wq, data.clone(), true, cx) {
        Ok(()) => FanoutOutcome::Queued,
        Err(_) => FanoutOutcome::OverCredit,
    }
}

/// Takes request body bytes from `input` (at most `credits` of them), returning the body bytes
/// and how much input they used (framing included). Marks the body done when it ends.
pub(super) fn take_body(
    input: &[u8],
    body: &mut RequestBody,
    credits: u32,
) -> Result<(Bytes, usize), ChunkError> {
    match body {
        RequestBody::Done => Ok((Bytes::new(), 0)),
        RequestBody::Length(remaining) => {
            let n = (input.len() as u64).min(*remaining).min(u64::from(credits));
            // n <= input.len()
            let n = n as usize;
            let data = Bytes::copy_from_slice(&input[..n]);
            *remaining -= n as u64;
            if *remaining == 0 {
                *body = RequestBody::Done;
            }
            Ok((data, n))
        }
        RequestBody::Chunked(decoder) => {
            let mut out = Vec::new();
            let mut consumed = 0;
            let mut credit = credits as usize;
            loop {
                let rest = &input[consumed..];
                let decoded = decoder.decode(rest, credit)?;
                out.extend_from_slice(&rest[decoded.data.clone()]);
                credit -= decoded.data.len();
                consumed += decoded.consumed;
                if decoded.done {
                    *body = RequestBody::Done;
                    break;
                }
                if decoded.consumed == 0 {
                    break;
                }
            }
            Ok((Bytes::from(out), consumed))
        }
    }
}

/// Frames response body bytes from the handler into the write queue, enforcing its credits.
/// Returns the violation if the handler broke the protocol.
pub(super) fn push_body(
    stream: &mut Stream,
    wq: &mut WriteQueue,
    data: Bytes,
    more: bool,
    cx: &mut Ctx,
) -> Result<(), &'static str> {
    let len = data.len();
    let Resp::Sending {
        framing,
        remaining,
        persistent,
    } = &mut stream.resp
    else {
        return Err(match stream.resp {
            Resp::Waiting => "response body before its head",
            _ => "response body after its end",
        });
    };
    if len > stream.resp_avail as usize {
        return Err("response body beyond credits");
    }
    // len <= resp_avail, a u32.
    stream.resp_avail -= len as u32;
    match *framing {
        Framing::NoBody => stream.resp_unacked = stream.resp_unacked.saturating_add(len as u32),
        Framing::Length(_) => {
            let n = (len as u64).min(*remaining) as usize;
            wq.push(Segment::Body(data.slice(..n)), &mut cx.deques);
            *remaining -= n as u64;
            if n < len {
                warn!(stream = %stream.id, "handler sent more body than its Content-Length; truncated");
                *persistent = false;
                stream.resp_unacked = stream.resp_unacked.saturating_add((len - n) as u32);
            }
        }
        Framing::Chunked => {
            if len > 0 {
                let (header, header_len) = response::chunk_header(len as u64);
                wq.push(Segment::inline(&header[..header_len]), &mut cx.deques);
                wq.push(Segment::Body(data), &mut cx.deques);
                wq.push(
                    Segment::Framing(Bytes::from_static(b"\r\n")),
                    &mut cx.deques,
                );
            }
        }
        Framing::CloseDelimited => wq.push(Segment::Body(data), &mut cx.deques),
    }
    if !more {
        match *framing {
            Framing::Chunked => {
                wq.push(
                    Segment::Framing(Bytes::from_static(LAST_CHUNK)),
                    &mut cx.deques,
                );
            }
            Framing::Length(_) if *remaining > 0 => {
                // Shorter than announced: only closing the connection tells the client.
                *persistent = false;
            }
            _ => {}
        }
        stream.resp = Resp::Done {
            persistent: *persistent,
        };
        cx.stream_settled();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::pool::DequePool;

    fn cx() -> Ctx {
        Ctx::new(Instant::now(), 1024, 100, Duration::from_secs(1))
    }

    fn stream(framing: Framing, remaining: u64) -> Stream {
        Stream {
            id: StreamId::new(1, 1),
            version: HttpVersion::Http11,
            persistent: true,
            is_head: false,
            body: RequestBody::Done,
            req_credits: 0,
            resp: Resp::Sending {
                framing,
                remaining,
                persistent: true,
            },
            resp_avail: 100,
            resp_unacked: 0,
            last_fanout: 0,
            credit_deferred: false,
            upgrade: None,
        }
    }

    /// Everything queued, written to a vector.
    fn drain(wq: &mut WriteQueue) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let written = wq.write_to(&mut out, &mut DequePool::new(1)).unwrap();
        (out, written.body)
    }

    #[test]
    fn length_body_respects_credits_and_remaining() {
        let mut body = RequestBody::Length(10);
        let (data, used) = take_body(b"abcdefghijklmnop", &mut body, 4).unwrap();
        assert_eq!((&data[..], used), (&b"abcd"[..], 4));
        let (data, used) = take_body(b"efghijklmnop", &mut body, 100).unwrap();
        assert_eq!((&data[..], used), (&b"efghij"[..], 6));
        assert!(matches!(body, RequestBody::Done));
        let (data, used) = take_body(b"klmnop", &mut body, 100).unwrap();
        assert!(data.is_empty() && used == 0);
    }

    #[test]
    fn chunked_body_joins_chunks_within_credits() {
        let mut body = RequestBody::Chunked(ChunkedDecoder::new());
        let input = b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\nNEXT";
        let (data, used) = take_body(input, &mut body, 5).unwrap();
        assert_eq!(&data[..], b"abcde");
        let (data, used2) = take_body(&input[used..], &mut body, 5).unwrap();
        assert_eq!(&data[..], b"fg");
        assert!(matches!(body, RequestBody::Done));
        assert_eq!(&input[used + used2..], b"NEXT");
        let mut bad = RequestBody::Chunked(ChunkedDecoder::new());
        assert_eq!(
            take_body(b"g\r\n", &mut bad, 5),
            Err(ChunkError::InvalidSize)
        );
    }

    #[test]
    fn chunked_response_framing() {
        let mut cx = cx();
        let mut wq = WriteQueue::default();
        let mut s = stream(Framing::Chunked, 0);
        push_body(&mut s, &mut wq, Bytes::from_static(b"hello"), true, &mut cx).unwrap();
        push_body(&mut s, &mut wq, Bytes::new(), true, &mut cx).unwrap();
        push_body(&mut s, &mut wq, Bytes::from_static(b"!"), false, &mut cx).unwrap();
        assert_eq!(s.resp, Resp::Done { persistent: true });
        assert_eq!(s.resp_avail, 94);
        let (out, body) = drain(&mut wq);
        assert_eq!(out, b"5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n");
        assert_eq!(body, 6);
    }

    #[test]
    fn length_response_truncates_overflow_and_notes_short_bodies() {
        let mut cx = cx();
        let mut wq = WriteQueue::default();
        let mut s = stream(Framing::Length(3), 3);
        push_body(&mut s, &mut wq, Bytes::from_static(b"abcd"), false, &mut cx).unwrap();
        assert_eq!(s.resp, Resp::Done { persistent: false });
        assert_eq!(s.resp_unacked, 1, "the dropped byte is credited back");
        assert_eq!(drain(&mut wq).0, b"abc");

        let mut s = stream(Framing::Length(3), 3);
        push_body(&mut s, &mut wq, Bytes::from_static(b"ab"), false, &mut cx).unwrap();
        assert_eq!(
            s.resp,
            Resp::Done { persistent: false },
            "short body: close to signal it"
        );
        assert_eq!(drain(&mut wq).0, b"ab");
    }

    #[test]
    fn no_body_discards_and_credits_back() {
        let mut cx = cx();
        let mut wq = WriteQueue::default();
        let mut s = stream(Framing::NoBody, 0);
        push_body(
            &mut s,
            &mut wq,
            Bytes::from_static(b"ignored"),
            true,
            &mut cx,
        )
        .unwrap();
        assert!(wq.is_empty());
        assert_eq!(s.resp_unacked, 7);
    }

    #[test]
    fn protocol_violations() {
        let mut cx = cx();
        let mut wq = WriteQueue::default();
        let mut s = stream(Framing::CloseDelimited, 0);
        let too_much = Bytes::from(vec![0u8; 101]);
        assert_eq!(
            push_body(&mut s, &mut wq, too_much, true, &mut cx),
            Err("response body beyond credits")
        );
        s.resp = Resp::Waiting;
        assert_eq!(
            push_body(&mut s, &mut wq, Bytes::new(), true, &mut cx),
            Err("response body before its head")
        );
        s.resp = Resp::Done { persistent: true };
        assert_eq!(
            push_body(&mut s, &mut wq, Bytes::new(), true, &mut cx),
            Err("response body after its end")
        );
    }

    /// The queue's segments as (kind, bytes, payload pointer for body segments).
    fn segments(wq: &WriteQueue) -> Vec<(&'static str, Vec<u8>, Option<*const u8>)> {
        wq.segments()
            .map(|s| match s {
                Segment::Body(b) => ("body", b.to_vec(), Some(b.as_ptr())),
                Segment::Framing(b) => ("framing", b.to_vec(), None),
                Segment::Inline { buf, start, end } => (
                    "inline",
                    buf[usize::from(*start)..usize::from(*end)].to_vec(),
                    None,
                ),
            })
            .collect()
    }

    #[test]
    fn fanout_chunked_shares_the_payload_between_framing_segments() {
        let mut cx = cx();
        let data = Bytes::from(b"hello".to_vec());
        let mut queues = [WriteQueue::default(), WriteQueue::default()];
        let mut streams = [stream(Framing::Chunked, 0), stream(Framing::Chunked, 0)];
        for (s, wq) in streams.iter_mut().zip(queues.iter_mut()) {
            assert_eq!(push_fanout(s, wq, &data, 1, &mut cx), FanoutOutcome::Queued);
            assert_eq!(s.resp_avail, 95);
            assert_eq!(
                s.resp,
                Resp::Sending {
                    framing: Framing::Chunked,
                    remaining: 0,
                    persistent: true
                }
            );
            assert_eq!(
                segments(wq),
                vec![
                    ("inline", b"5\r\n".to_vec(), None),
                    ("body", b"hello".to_vec(), Some(data.as_ptr())),
                    ("framing", b"\r\n".to_vec(), None),
                ],
                "chunk header, the shared payload itself, CRLF"
            );
        }
        for wq in &mut queues {
            let (out, body) = drain(wq);
            assert_eq!(out, b"5\r\nhello\r\n");
            assert_eq!(body, 5, "only payload bytes count as credit");
        }
        // A larger payload gets a multi-digit hex size.
        let big = Bytes::from(vec![b'x'; 0x5a]);
        let mut s = stream(Framing::Chunked, 0);
        let mut wq = WriteQueue::default();
        push_fanout(&mut s, &mut wq, &big, 1, &mut cx);
        assert_eq!(segments(&wq)[0].1, b"5a\r\n");
    }

    #[test]
    fn fanout_close_delimited_is_raw_and_length_is_bounded() {
        let mut cx = cx();
        let data = Bytes::from(b"abcde".to_vec());
        let mut wq = WriteQueue::default();
        let mut s = stream(Framing::CloseDelimited, 0);
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 7, &mut cx),
            FanoutOutcome::Queued
        );
        assert_eq!(
            segments(&wq),
            vec![("body", b"abcde".to_vec(), Some(data.as_ptr()))]
        );
        assert_eq!(drain(&mut wq).0, b"abcde");

        // A known length takes what it still owes, exactly like a Body.
        let mut s = stream(Framing::Length(8), 8);
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 1, &mut cx),
            FanoutOutcome::Queued
        );
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 2, &mut cx),
            FanoutOutcome::Queued
        );
        let segs = segments(&wq);
        assert_eq!(segs[1], ("body", b"abc".to_vec(), Some(data.as_ptr())));
        assert_eq!(
            s.resp,
            Resp::Sending {
                framing: Framing::Length(8),
                remaining: 0,
                persistent: false
            }
        );
        assert_eq!(s.resp_unacked, 2, "the cut bytes are credited back");
        assert_eq!(drain(&mut wq).0, b"abcdeabc");
    }

    #[test]
    fn fanout_skips_and_refusals() {
        let mut cx = cx();
        let mut wq = WriteQueue::default();
        let data = Bytes::from_static(b"0123456789");

        let mut s = stream(Framing::Chunked, 0);
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 3, &mut cx),
            FanoutOutcome::Queued
        );
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 3, &mut cx),
            FanoutOutcome::Duplicate
        );
        assert_eq!(s.resp_avail, 90, "a duplicate id costs nothing");
        wq.release(&mut cx.deques);

        s.resp_avail = 9;
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 4, &mut cx),
            FanoutOutcome::OverCredit
        );
        assert!(
            wq.is_empty() && s.resp_avail == 9,
            "nothing queued beyond credits"
        );

        s.resp = Resp::Waiting;
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 5, &mut cx),
            FanoutOutcome::NotStarted
        );
        s.resp = Resp::Done { persistent: true };
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 6, &mut cx),
            FanoutOutcome::Finished
        );
        assert!(wq.is_empty());

        // An empty payload must not become a zero-size chunk (that would end the body).
        let mut s = stream(Framing::Chunked, 0);
        assert_eq!(
            push_fanout(&mut s, &mut wq, &Bytes::new(), 1, &mut cx),
            FanoutOutcome::Queued
        );
        assert!(wq.is_empty());
        assert_eq!(
            s.resp,
            Resp::Sending {
                framing: Framing::Chunked,
                remaining: 0,
                persistent: true
            }
        );

        // A body-less response (HEAD) discards it and credits it back, like a Body.
        let mut s = stream(Framing::NoBody, 0);
        assert_eq!(
            push_fanout(&mut s, &mut wq, &data, 1, &mut cx),
            FanoutOutcome::Queued
        );
        assert!(wq.is_empty());
        assert_eq!(s.resp_unacked, 10);
    }
}
