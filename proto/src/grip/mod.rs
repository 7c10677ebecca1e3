//! GRIP over HTTP responses (reference §4): deciding whether an origin response carries
//! instructions, and parsing them into an [`Instruct`] the handler can act on.
//!
//! Everything here is pure and matches Pushpin 1.36's behaviour and error texts, which were
//! checked against a running 1.36 (cases marked **[observed 1.36]** in the docs and tests):
//!
//! - [`headers`]: the header-value syntax shared by every `Grip-*` header.
//! - [`Instruct::parse`]: headers plus the optional `application/grip-instruct` JSON body.
//! - [`reason_phrase`]: Pushpin's reason-phrase table, used here and by publishing.
//! - [`base64`]: Pushpin's lenient decoder (and the strict URL-safe one JWTs use).
//! - [`url`]: `Grip-Link` validation and RFC 3986 resolution against the request URI.
//!
//! [`FieldError`] is the shared vocabulary for malformed JSON/tnetstring fields
//! (`<object> contains '<field>' with wrong type` and friends), used by instruct and publish
//! parsing alike.

pub mod base64;
pub mod headers;
mod instruct;
mod instruct_json;
mod status;
pub mod url;
pub(crate) mod variant;

pub use instruct::{
    decode_cstring, is_grip_response, is_instruct_content_type, Channel, HoldMode, Instruct,
    InstructError, InstructResponse, KeepAlive, KeepAliveMode, NextLink, OriginResponse,
    DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_NEXT_LINK_TIMEOUT, DEFAULT_TIMEOUT, DROPPED_HEADERS,
    MINIMUM_KEEP_ALIVE_TIMEOUT, MINIMUM_TIMEOUT,
};
pub use status::reason_phrase;
pub use variant::FieldError;

#[cfg(test)]
mod tests;
