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
#![forbid(unsafe_code)]

pub mod config;
pub mod internal;
pub mod routes;
