//! Holdfast's command-line tools.
//!
//! - [`runner`]: the `holdfast` command, which reads `pushpin.conf`, starts `holdfast-handler`
//!   and `holdfast-connmgr` with explicit flags, merges or files their logs, relays signals and
//!   stops everything if one of them dies.
//! - [`log`]: the one-line log format the runner writes.
//! - [`publish`]: the `holdfast-publish` command, a drop-in for `pushpin-publish`.
//! - [`loadgen`]: the `holdfast-loadgen` command, the end-to-end load generator and GRIP backend.
#![deny(unsafe_code)]

pub mod loadgen;
pub mod log;
pub mod publish;
pub mod runner;
