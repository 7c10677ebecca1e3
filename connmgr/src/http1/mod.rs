//! Sans-IO HTTP/1.0 and HTTP/1.1 server codec.
//!
//! Nothing here touches a socket, a clock or the handler: every function takes bytes (or values)
//! and returns values, so the rules that decide what a client sees can be unit-tested exhaustively
//! and fuzzed on their own. The worker ([`crate::worker`]) owns the sockets and calls into these
//! modules:
//!
//! - [`request`]: a request head (request line + headers) into a typed [`request::Request`],
//!   including the body framing decision and the request-smuggling checks.
//! - [`chunked`]: an incremental, zero-copy decoder for `Transfer-Encoding: chunked` request
//!   bodies (the handler only ever sees plain body bytes).
//! - [`response`]: how a response from the handler is framed for this client (Content-Length,
//!   chunked, close-delimited, no body), the serialised head, chunk headers and the text/plain
//!   error responses the connection manager generates itself.

pub mod chunked;
pub mod request;
pub mod response;
