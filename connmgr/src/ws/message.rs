//! From frames to messages: the receiving half of a WebSocket connection.
//!
//! An [`Assembler`] is fed the frames of one connection in order, each as a header (from
//! [`frame::parse_header`](super::frame::parse_header)) followed by its unmasked payload, and
//! returns each message when its last frame ends:
//!
//! - text and binary messages, reassembled from a first frame and its continuations;
//! - control frames (Ping, Pong, Close), which may arrive between the fragments of a data
//!   message and never interrupt it;
//! - permessage-deflate messages (RSV1 on the first frame), decompressed as they arrive.
//!
//! It enforces what the frame header alone cannot: continuation sequencing, the message size
//! limit (checked before buffering whenever the size is known, and while decompressing),
//! UTF-8 for text (incrementally, failing as soon as a fragment cannot be valid, a character
//! split across frames being fine), and the Close payload rules. Every error carries the close
//! code to fail the connection with ([`MessageError::close_code`]).
//!
//! # Driving it
//!
//! For each frame: [`Assembler::begin_frame`] with the header, [`Assembler::push_payload`] with
//! the unmasked payload bytes as they arrive (any number of calls, [`Assembler::remaining`]
//! bytes in all), then [`Assembler::end_frame`], which returns the message the frame completed,
//! if any. [`Assembler::handle_frame`] does the three for a payload that is already whole.
//! After an error the connection must be failed; the assembler is not used again.

use bytes::Bytes;

use super::close::{self, CloseError, CloseFrame};
use super::deflate::{self, DeflateError, Inflater};
use super::extension::DeflateParams;
use super::frame::{FrameError, FrameHeader, OpCode, MAX_CONTROL_PAYLOAD};
use super::utf8::Utf8Validator;
use super::Limits;

/// Most memory reserved for a message before its bytes have arrived: a header may announce 16
/// MiB, but only what is received is allocated (beyond this first reservation).
const INITIAL_RESERVE_MAX: usize = 64 * 1024;

/// A complete message from the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message: the bytes are valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A Ping, to be answered with a Pong carrying the same payload.
    Ping(Bytes),
    /// A Pong (an answer, or unsolicited heartbeat).
    Pong(Bytes),
    /// A Close: `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

/// Why the client's frames cannot form messages. Every variant fails the connection with
/// [`MessageError::close_code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// An invalid Close payload.
    #[error(transparent)]
    Close(#[from] CloseError),
    /// The compressed data of a message is invalid (1007) or decompresses to more than the
    /// limit (1009).
    #[error(transparent)]
    Deflate(#[from] DeflateError),
    /// A new text or binary frame while a fragmented message is still in progress.
    #[error("new data message while a fragmented message is in progress")]
    ExpectedContinuation,
    /// A frame header the assembler refuses (it re-checks the rules it relies on, for headers
    /// not made by the parser).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A text message that is not UTF-8 (close code 1007).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The assembler was driven out of order (a bug in the caller; close code 1011).
    #[error("WebSocket assembler misuse: {0}")]
    Misuse(&'static str),
    /// The message is larger than [`Limits::max_message_size`] (close code 1009).
    #[error("message exceeds the limit of {max} bytes")]
    TooBig {
        /// The limit.
        max: usize,
    },
    /// A continuation frame with no fragmented message in progress.
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
}

impl MessageError {
    /// The close code to fail the connection with: 1007 for invalid UTF-8 or corrupt
    /// compressed data, 1009 for a message over the limit, 1011 for caller misuse, 1002
    /// (protocol error) otherwise.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Close(e) => e.close_code(),
            Self::Deflate(e) => e.close_code(),
            Self::Frame(e) => e.close_code(),
            Self::InvalidUtf8 => close::INVALID_PAYLOAD,
            Self::Misuse(_) => close::INTERNAL_ERROR,
            Self::TooBig { .. } => close::MESSAGE_TOO_BIG,
            Self::ExpectedContinuation | Self::UnexpectedContinuation => close::PROTOCOL_ERROR,
        }
    }
}

/// Reassembles one connection's frames into messages.
#[derive(Debug)]
pub struct Assembler {
    limits: Limits,
    /// Present when permessage-deflate was negotiated.
    inflater: Option<Inflater>,
    /// The frame being received.
    current: Current,
    /// The data message in progress (between its first frame and its last).
    data: Option<Partial>,
    /// Payload of the control frame being received.
    control: [u8; MAX_CONTROL_PAYLOAD],
    control_len: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Current {
    /// Between frames.
    Idle,
    /// A text, binary or continuation frame.
    Data { remaining: u64, fin: bool },
    /// A control frame (its payload fits `control`).
    Control { opcode: OpCode, remaining: usize },
}

#[derive(Debug)]
struct Partial {
    text: bool,
    compressed: bool,
    buf: Vec<u8>,
    utf8: Utf8Validator,
}

impl Assembler {
    /// An assembler for a connection with these limits and, if it was negotiated,
    /// permessage-deflate.
    pub fn new(limits: Limits, deflate: Option<&DeflateParams>) -> Self {
        Self {
            limits,
            inflater: deflate.map(|p| Inflater::new(p.client_no_context_takeover)),
            current: Current::Idle,
            data: None,
            control: [0; MAX_CONTROL_PAYLOAD],
            control_len: 0,
        }
    }

    /// Starts a frame whose header was parsed (its payload comes next).
    pub fn begin_frame(&mut self, header: &FrameHeader) -> Result<(), MessageError> {
        if self.current != Current::Idle {
            return Err(MessageError::Misuse(
                "frame started before the previous one ended",
            ));
        }
        if header.opcode.is_control() {
            if header.rsv1 {
                return Err(FrameError::ReservedBits.into());
            }
            if !header.fin {
                return Err(FrameError::FragmentedControl.into());
            }
            let remaining = usize::try_from(header.payload_len)
                .ok()
                .filter(|&n| n <= MAX_CONTROL_PAYLOAD)
                .ok_or(FrameError::ControlTooLong)?;
            self.control_len = 0;
            self.current = Current::Control {
                opcode: header.opcode,
                remaining,
            };
            return Ok(());
        }
        if header.payload_len > self.limits.max_frame_size {
            return Err(FrameError::FrameTooBig {
                len: header.payload_len,
                max: self.limits.max_frame_size,
            }
            .into());
        }
        let max = self.limits.max_message_size;
        let partial = match (header.opcode, &mut self.data) {
            (OpCode::Continuation, None) => return Err(MessageError::UnexpectedContinuation),
            (OpCode::Continuation, Some(partial)) => {
                if header.rsv1 {
                    return Err(FrameError::ReservedBits.into());
                }
                partial
            }
            (_, Some(_)) => return Err(MessageError::ExpectedContinuation),
            (opcode, data @ None) => {
                if header.rsv1 && self.inflater.is_none() {
                    return Err(FrameError::ReservedBits.into());
                }
                let reserve = usize::try_from(header.payload_len)
                    .unwrap_or(usize::MAX)
                    .min(max)
                    .min(INITIAL_RESERVE_MAX);
                data.insert(Partial {
                    text: opcode == OpCode::Text,
                    compressed: header.rsv1,
                    // Compressed data grows past its payload: let it grow as it is inflated.
                    buf: Vec::with_capacity(if header.rsv1 { 0 } else { reserve }),
                    utf8: Utf8Validator::new(),
                })
            }
        };
        if !partial.compressed {
            let total = (partial.buf.len() as u64).saturating_add(header.payload_len);
            if total > max as u64 {
                return Err(MessageError::TooBig { max });
            }
        }
        self.current = Current::Data {
            remaining: header.payload_len,
            fin: header.fin,
        };
        Ok(())
    }

    /// Payload bytes of the current frame still expected.
    pub fn remaining(&self) -> u64 {
        match self.current {
            Current::Idle => 0,
            Current::Data { remaining, .. } => remaining,
            Current::Control { remaining, .. } => remaining as u64,
        }
    }

    /// True between messages: no frame or fragmented message is in progress, so the connection
    /// holds no message buffer.
    pub fn is_idle(&self) -> bool {
        self.current == Current::Idle && self.data.is_none()
    }

    /// Feeds the next unmasked payload bytes of the current frame (at most
    /// [`remaining`](Self::remaining)).
    pub fn push_payload(&mut self, bytes: &[u8]) -> Result<(), MessageError> {
        match &mut self.current {
            Current::Idle => Err(MessageError::Misuse("payload outside a frame")),
            Current::Control { remaining, .. } => {
                if bytes.len() > *remaining {
                    return Err(MessageError::Misuse(
                        "more payload than the frame announced",
                    ));
                }
                *remaining -= bytes.len();
                self.control[self.control_len..self.control_len + bytes.len()]
                    .copy_from_slice(bytes);
                self.control_len += bytes.len();
                Ok(())
            }
            Current::Data { remaining, .. } => {
                if bytes.len() as u64 > *remaining {
                    return Err(MessageError::Misuse(
                        "more payload than the frame announced",
                    ));
                }
                *remaining -= bytes.len() as u64;
                let Some(partial) = &mut self.data else {
                    return Err(MessageError::Misuse("data frame without a message"));
                };
                let max = self.limits.max_message_size;
                let start = partial.buf.len();
                if partial.compressed {
                    let Some(inflater) = &mut self.inflater else {
                        return Err(MessageError::Misuse("compressed message without deflate"));
                    };
                    inflater.push(bytes, &mut partial.buf, max)?;
                } else {
                    // begin_frame checked that the whole frame fits the limit.
                    deflate::reserve_bounded(&mut partial.buf, bytes.len(), max);
                    partial.buf.extend_from_slice(bytes);
                }
                if partial.text {
                    partial
                        .utf8
                        .feed(&partial.buf[start..])
                        .map_err(|_| MessageError::InvalidUtf8)?;
                }
                Ok(())
            }
        }
    }

    /// Ends the current frame once its whole payload was pushed, returning the message it
    /// completed, if any.
    pub fn end_frame(&mut self) -> Result<Option<Message>, MessageError> {
        if self.remaining() != 0 {
            return Err(MessageError::Misuse("frame ended before its payload"));
        }
        match std::mem::replace(&mut self.current, Current::Idle) {
            Current::Idle => Err(MessageError::Misuse("frame ended without a start")),
            Current::Control { opcode, .. } => {
                let payload = &self.control[..self.control_len];
                Ok(Some(match opcode {
                    OpCode::Ping => Message::Ping(Bytes::copy_from_slice(payload)),
                    OpCode::Pong => Message::Pong(Bytes::copy_from_slice(payload)),
                    _ => Message::Close(close::parse_payload(payload)?),
                }))
            }
            Current::Data { fin: false, .. } => Ok(None),
            Current::Data { fin: true, .. } => {
                let Some(mut partial) = self.data.take() else {
                    return Err(MessageError::Misuse("data frame without a message"));
                };
                if partial.compressed {
                    let Some(inflater) = &mut self.inflater else {
                        return Err(MessageError::Misuse("compressed message without deflate"));
                    };
                    let start = partial.buf.len();
                    inflater.finish(&mut partial.buf, self.limits.max_message_size)?;
                    if partial.text {
                        partial
                            .utf8
                            .feed(&partial.buf[start..])
                            .map_err(|_| MessageError::InvalidUtf8)?;
                    }
                }
                let bytes = Bytes::from(partial.buf);
                if partial.text {
                    partial
                        .utf8
                        .finish()
                        .map_err(|_| MessageError::InvalidUtf8)?;
                    Ok(Some(Message::Text(bytes)))
                } else {
                    Ok(Some(Message::Binary(bytes)))
                }
            }
        }
    }

    /// Handles a frame whose whole unmasked payload is at hand: [`begin_frame`],
    /// [`push_payload`] and [`end_frame`] in one call.
    ///
    /// [`begin_frame`]: Self::begin_frame
    /// [`push_payload`]: Self::push_payload
    /// [`end_frame`]: Self::end_frame
    pub fn handle_frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
    ) -> Result<Option<Message>, MessageError> {
        if payload.len() as u64 != header.payload_len {
            return Err(MessageError::Misuse(
                "payload length differs from the header",
            ));
        }
        self.begin_frame(header)?;
        self.push_payload(payload)?;
        self.end_frame()
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
