//! The exchange with one backend target and the streaming of its response.
//!
//! Response body flow control: the connmgr grants response credits (initially
//! `RequestHead.credits`, then `Credit` messages). The session never sends more body than it
//! holds credits for, and it only asks hyper for the next body frame once the current one has
//! been sent, so a slow client slows the backend down through TCP instead of filling memory.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use holdfast_proto::internal::{CloseReason, Header};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::{Request, Response};

use super::headers::response_headers;
use super::log::{Outcome, RequestLog};
use super::request::BodyLength;
use super::response::{reason_phrase, Generated, PROXY_ERROR};
use super::TargetPlan;
use crate::client::{Client, Conn, RequestBody};
use crate::error::ProxyError;
use crate::ipc::OutboxClosed;
use crate::session::{Inbox, StreamOut};

/// What is sent to one target.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    /// Method.
    pub method: &'a str,
    /// Path with query (origin form).
    pub path: &'a str,
    /// Headers from [`super::headers::forward_headers`].
    pub headers: &'a [Header],
    /// Body framing.
    pub length: BodyLength,
    /// Host header and connection.
    pub plan: &'a TargetPlan,
}

/// Methods whose repetition has the same effect as one request (RFC 9110 §9.2.2).
fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// A response head received from a backend, with the connection it came on.
#[derive(Debug)]
pub struct Exchange {
    response: Response<Incoming>,
    conn: Conn,
    request_body_sent: Arc<AtomicBool>,
    target: String,
}

/// Builds the hyper request: origin-form URI, `Host` first, then the forwarded headers, then
/// the body framing (`Content-Length` from the client, or chunked when the length is unknown).
pub fn build_request(
    a: &Attempt<'_>,
    body: RequestBody,
) -> Result<Request<RequestBody>, ProxyError> {
    let method = http::Method::from_bytes(a.method.as_bytes())
        .map_err(|_| ProxyError::InvalidRequest(format!("invalid method '{}'", a.method)))?;
    let uri: http::Uri = a
        .path
        .parse()
        .map_err(|_| ProxyError::InvalidRequest(format!("invalid path '{}'", a.path)))?;
    let host = HeaderValue::from_str(&a.plan.host_header).map_err(|_| {
        ProxyError::InvalidRequest(format!("invalid host '{}'", a.plan.host_header))
    })?;
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_11;
    let map = req.headers_mut();
    map.insert(HOST, host);
    for header in a.headers {
        let name = HeaderName::from_bytes(header.0.as_bytes());
        let value = HeaderValue::from_maybe_shared(header.1.clone());
        match (name, value) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => tracing::debug!("dropping invalid request header {:?}", header.0),
        }
    }
    match a.length {
        BodyLength::Empty => {}
        BodyLength::Known(n) => {
            map.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
        BodyLength::Unknown => {
            map.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
    }
    Ok(req)
}

/// Connects (or reuses a pooled connection) and sends the request; returns once the response
/// head has arrived. Connect/TLS failures come back before any request body is consumed.
pub async fn exchange(
    client: &Client,
    a: &Attempt<'_>,
    inbox: &Arc<Inbox>,
    out: &StreamOut,
) -> Result<Exchange, ProxyError> {
    exchange_with_body(client, a, None, inbox, out).await
}

/// [`exchange`], sending `fixed` (when given) instead of the client's body (JSON-P).
pub async fn exchange_with_body(
    client: &Client,
    a: &Attempt<'_>,
    fixed: Option<Bytes>,
    inbox: &Arc<Inbox>,
    out: &StreamOut,
) -> Result<Exchange, ProxyError> {
    let key = &a.plan.key;
    let target = key.to_string();
    let length = match a.length {
        BodyLength::Empty => Some(0),
        BodyLength::Known(n) => Some(n),
        BodyLength::Unknown => None,
    };
    let body = match fixed {
        Some(data) => RequestBody::fixed(inbox.clone(), out.clone(), data),
        None => RequestBody::new(inbox.clone(), out.clone(), length),
    };
    let request_body_sent = body.finished_flag();
    let req = build_request(a, body)?;
    let mut conn = client.checkout(key).await?;
    let failed = match conn.send(req).await {
        Ok(response) => {
            return Ok(Exchange {
                response,
                conn,
                request_body_sent,
                target,
            })
        }
        Err(failed) => failed,
    };
    // A pooled connection the backend had closed: hyper returns the request unsent. Retry it
    // once on a fresh connection. If the backend's close raced with our write, hyper has
    // consumed the request; a bodiless request with an idempotent method is then rebuilt and
    // retried too (RFC 9110 §9.2.2), since the backend cannot have acted on it twice.
    let mut failed = failed;
    let unsent = failed.take_message();
    let unsent = match unsent {
        None if conn.is_reused() && length == Some(0) && is_idempotent(a.method) => Some(
            build_request(a, RequestBody::new(inbox.clone(), out.clone(), length))?,
        ),
        other => other,
    };
    match (conn.is_reused(), unsent) {
        (true, Some(req)) => {
            drop(conn);
            tracing::debug!("pooled connection to {target} was closed; reconnecting");
            let mut fresh = Box::pin(client.connect(key)).await?;
            match fresh.send(req).await {
                Ok(response) => Ok(Exchange {
                    response,
                    conn: fresh,
                    request_body_sent,
                    target,
                }),
                Err(err) => Err(ProxyError::Request {
                    target,
                    source: err.into_error(),
                }),
            }
        }
        _ => Err(ProxyError::Request {
            target,
            source: failed.into_error(),
        }),
    }
}

/// A backend response read completely (a GRIP instruction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffered {
    /// Status code.
    pub code: u16,
    /// Reason phrase.
    pub reason: String,
    /// Headers (hop-by-hop removed).
    pub headers: Vec<Header>,
    /// The whole body.
    pub body: Bytes,
}

/// Why a response could not be buffered.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// The body is longer than the limit.
    #[error("GRIP instruct response too large from {0}")]
    TooLarge(String),
    /// The body broke off.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

impl Exchange {
    /// The response headers as they would be sent on (hop-by-hop removed).
    pub fn headers(&self) -> Vec<Header> {
        response_headers(self.response.headers())
    }

    /// The target's `host:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Reads the whole response (at most `limit` body bytes) and returns the connection to
    /// the pool.
    pub async fn buffer(self, limit: usize) -> Result<Buffered, BufferError> {
        let Exchange {
            response,
            conn,
            request_body_sent,
            target,
        } = self;
        let (parts, mut body) = response.into_parts();
        let code = parts.status.as_u16();
        let reason = parts
            .extensions
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
            .unwrap_or_else(|| reason_phrase(code).to_string());
        let headers = response_headers(&parts.headers);
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| ProxyError::ResponseBody {
                target: target.clone(),
                source,
            })?;
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(BufferError::TooLarge(target));
                }
                buf.extend_from_slice(&data);
            }
        }
        if request_body_sent.load(Ordering::Acquire) {
            conn.release();
        }
        Ok(Buffered {
            code,
            reason,
            headers,
            body: buf.freeze(),
        })
    }
}

/// Streams a backend response to the connmgr within credits, then returns the connection to
/// the pool if the exchange completed cleanly.
pub async fn stream_response(
    exchange: Exchange,
    method: &str,
    inbox: &Inbox,
    out: &StreamOut,
    log: &mut RequestLog,
) {
    stream_response_with(exchange, method, inbox, out, log, None).await;
}

/// [`stream_response`], adding CORS headers (auto cross-origin) when `cors` is given.
pub async fn stream_response_with(
    exchange: Exchange,
    method: &str,
    inbox: &Inbox,
    out: &StreamOut,
    log: &mut RequestLog,
    cors: Option<&crate::grip::cors::CorsRequest>,
) {
    let Exchange {
        response,
        conn,
        request_body_sent,
        target,
    } = exchange;
    let (parts, mut body) = response.into_parts();
    let code = parts.status.as_u16();
    let reason = parts
        .extensions
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .unwrap_or_else(|| reason_phrase(code).to_string());
    let mut headers = response_headers(&parts.headers);
    if let Some(cors) = cors {
        cors.apply(&mut headers);
    }

    // Whatever body already arrived with the head goes out in the same message.
    let mut pending = Bytes::new();
    let mut ended = body.is_end_stream();
    if !ended {
        let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx))).await;
        match first {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    pending = data;
                }
                ended = body.is_end_stream();
            }
            Poll::Ready(None) => ended = true,
            Poll::Ready(Some(Err(err))) => {
                // Nothing sent yet: the client can still get a proper error.
                tracing::debug!(
                    "response body from {target} failed before the head was sent: {err}"
                );
                send_generated(Generated::text(502, PROXY_ERROR), method, inbox, out, log).await;
                return;
            }
            Poll::Pending => {}
        }
    }

    // The backend side is done as soon as its body ended: give the connection back before
    // the last bytes go to the client, so a follow-up request can already reuse it.
    let mut conn = Some(conn);
    let mut release = |ended: bool| {
        if ended && request_body_sent.load(Ordering::Acquire) {
            if let Some(conn) = conn.take() {
                conn.release();
            }
        }
    };
    release(ended);

    let n = inbox.try_take_credits(pending.len());
    let first = pending.split_to(n);
    let mut sent = first.len() as u64;
    let mut more = !(ended && pending.is_empty());
    if out
        .respond(code, reason, headers, first, more)
        .await
        .is_err()
    {
        return;
    }

    while more {
        if pending.is_empty() && !ended {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        pending = data;
                    }
                    ended = body.is_end_stream();
                }
                Some(Err(err)) => {
                    let err = ProxyError::ResponseBody {
                        target: target.clone(),
                        source: err,
                    };
                    tracing::debug!("stream {}: {err}", out.key().id);
                    out.close(CloseReason::BackendError);
                    return;
                }
                None => ended = true,
            }
            release(ended);
            continue;
        }
        let chunk = if pending.is_empty() {
            Bytes::new()
        } else {
            let n = inbox.take_credits(pending.len()).await;
            pending.split_to(n)
        };
        sent += chunk.len() as u64;
        more = !(ended && pending.is_empty());
        if out.body(chunk, more).await.is_err() {
            return;
        }
    }

    log.outcome = Outcome::Response {
        code,
        body_bytes: sent,
    };
}

/// Sends a handler-made response, within credits, and records it in the log line.
pub async fn send_generated(
    answer: Generated,
    method: &str,
    inbox: &Inbox,
    out: &StreamOut,
    log: &mut RequestLog,
) {
    let answer = answer.for_method(method);
    let code = answer.code;
    let body_bytes = answer.body.len() as u64;
    if send_complete(answer, inbox, out).await.is_ok() {
        log.outcome = Outcome::Response { code, body_bytes };
    }
}

async fn send_complete(
    answer: Generated,
    inbox: &Inbox,
    out: &StreamOut,
) -> Result<(), OutboxClosed> {
    let mut rest = answer.body;
    let n = inbox.try_take_credits(rest.len());
    let first = rest.split_to(n);
    out.respond(
        answer.code,
        answer.reason,
        answer.headers,
        first,
        !rest.is_empty(),
    )
    .await?;
    while !rest.is_empty() {
        let n = inbox.take_credits(rest.len()).await;
        let chunk = rest.split_to(n);
        out.body(chunk, !rest.is_empty()).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::PoolKey;
    use crate::ipc::WorkerId;
    use crate::session::SessionKey;
    use holdfast_proto::internal::StreamId;

    fn plan() -> TargetPlan {
        TargetPlan {
            host_header: "example.com:8000".into(),
            key: PoolKey {
                host: "127.0.0.1".into(),
                port: 1,
                tls: None,
            },
        }
    }

    fn body() -> RequestBody {
        let (outbox, _rx) = crate::ipc::outbox(1 << 20);
        let out = StreamOut::new(
            outbox,
            SessionKey {
                worker: WorkerId::new("w"),
                id: StreamId(1),
            },
        );
        RequestBody::new(Arc::new(Inbox::new(Bytes::new(), false, 0)), out, Some(0))
    }

    #[test]
    fn request_has_host_first_and_framing() {
        let plan = plan();
        let headers = vec![
            Header::new("X-One", "1"),
            Header::new("Bad Name", "x"),
            Header::new("X-Injected", "a\r\nEvil: 1"),
            Header::new("X-Two", "2"),
        ];
        let attempt = Attempt {
            method: "POST",
            path: "/a?b",
            headers: &headers,
            length: BodyLength::Known(5),
            plan: &plan,
        };
        let req = build_request(&attempt, body()).unwrap();
        let names: Vec<&str> = req.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["host", "x-one", "x-two", "content-length"]);
        assert_eq!(req.headers()[HOST], "example.com:8000");
        assert_eq!(req.uri(), "/a?b");
        assert_eq!(req.method(), "POST");

        let chunked = Attempt {
            length: BodyLength::Unknown,
            ..attempt
        };
        let req = build_request(&chunked, body()).unwrap();
        assert_eq!(req.headers()[TRANSFER_ENCODING], "chunked");
        assert!(req.headers().get(CONTENT_LENGTH).is_none());
    }

    #[test]
    fn invalid_method_or_path_is_the_clients_fault() {
        let plan = plan();
        let bad_method = Attempt {
            method: "GE T",
            path: "/",
            headers: &[],
            length: BodyLength::Empty,
            plan: &plan,
        };
        let err = build_request(&bad_method, body()).unwrap_err();
        assert_eq!(err.fault(), crate::error::Fault::Client);
        let bad_path = Attempt {
            method: "GET",
            path: "/a b",
            ..bad_method
        };
        assert!(build_request(&bad_path, body()).is_err());
    }
}
