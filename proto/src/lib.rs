//! The contract between Holdfast's processes and the home of every pure codec.
//!
//! Nothing in this crate performs I/O, reads the clock or touches a socket: every function takes
//! bytes or text and returns values, so each one can be unit-tested and fuzzed on its own.
//!
//! Layout:
//!
//! - [`internal`]: the messages `holdfast-connmgr` and `holdfast-handler` exchange over ZeroMQ
//!   (msgpack via rmp-serde), with golden-byte tests pinning the encoding.
//! - [`config`]: `pushpin.conf` parsing (INI, `include`, placeholders, `port_offset`) into a
//!   validated [`config::Config`].
//! - [`routes`]: the `routes` file syntax and route selection (reference §7.3).
//! - [`tnetstring`]: the TNetString encoding of Pushpin's ZeroMQ publish and command sockets
//!   (reference §2.1).
//! - [`grip`]: GRIP instructions in origin responses: `Grip-*` headers and the
//!   `application/grip-instruct` body (reference §4.1–4.6), with Pushpin's exact error texts.
//! - [`publish`]: publish items from the HTTP control API (JSON) and the ZeroMQ PULL/SUB and
//!   command sockets (JSON or tnetstring), with Pushpin's exact error texts, and JSON Patch for
//!   `body-patch` (reference §6.1–6.4).
//! - [`logfmt`]: the log line format all processes share.
//! - [`jwt`]: `Grip-Sig` tokens: signing requests to origins and trusting upstream proxies
//!   (reference §4.10).
//! - [`wsevents`]: the `application/websocket-events` body of WebSocket-over-HTTP, with the
//!   bytes and request headers Pushpin 1.36 was observed to send (reference §5.3).
//! - [`wscontrol`]: GRIP on WebSockets: the `grip` extension, classifying origin messages, and
//!   the `c:` control messages with Pushpin's exact error texts (reference §5.2, §5.4).
#![forbid(unsafe_code)]

pub mod config;
pub mod grip;
pub mod internal;
pub mod jwt;
pub mod logfmt;
pub mod publish;
pub mod routes;
pub mod tnetstring;
pub mod wscontrol;
pub mod wsevents;
