//! The HTTP control API (reference §6.2) on `push_in_http_addr:push_in_http_port`:
//! `POST /publish/`, `POST /recover`, `GET /`.
//!
//! A small HTTP/1 server on tokio ([`http`] holds the pure framing): one request per
//! connection (the answer says `Connection: close`, as Pushpin's always does) unless the
//! client asks with `Connection: keep-alive`, then one after another; head ≤
//! `push_in_http_max_headers_size`, body ≤ `push_in_http_max_body_size`, at most
//! [`MAX_CONNECTIONS`] connections at once, and [`IO_TIMEOUT`] to receive a request. A publish is validated whole (proto's
//! `parse_publish_body`) before any item is delivered.

pub mod check;
pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::publish::{parse_publish_body, PublishError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use self::http::{check_framing, negotiate, normalize_path, parse_head, Answer, Refusal};
use crate::grip::GripRuntime;
use crate::observe::PublishInput;

/// Concurrent control connections (Pushpin's limit).
pub const MAX_CONNECTIONS: usize = 128;

/// Time allowed to receive a request and send the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a kept-alive connection may wait for its next request.
pub const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(30);

/// How one request of a connection ended.
enum Exchange {
    /// Answered; the client asked to keep the connection.
    Kept,
    /// Answered (or refused); the connection is closed now.
    Close,
    /// The client went away or the connection failed.
    Gone,
}

/// Limits and collaborators of the control server.
#[derive(Clone, Debug)]
pub struct ControlServer {
    /// The hub.
    pub grip: Arc<GripRuntime>,
    /// `push_in_http_max_headers_size`.
    pub max_headers_size: usize,
    /// `push_in_http_max_body_size`.
    pub max_body_size: usize,
}

impl ControlServer {
    /// Binds `addr`; the error is the caller's to report.
    pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    /// Serves connections until the task is aborted.
    pub async fn run(self, listener: TcpListener) {
        let server = Arc::new(self);
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        // Idle kept-alive connections give their place up when every permit is taken.
        let crowded = Arc::new(Notify::new());
        loop {
            let permit = match permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    crowded.notify_waiters();
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        return;
                    };
                    permit
                }
            };
            let (sock, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!("control API accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (server, crowded) = (server.clone(), crowded.clone());
            tokio::spawn(async move {
                let _permit = permit;
                server.serve(sock, &crowded).await;
            });
        }
    }

    /// Answers the requests of one connection: one, or, while the client asks to keep the
    /// connection, one after another. Each request has [`IO_TIMEOUT`] to arrive and be
    /// answered; between requests the connection waits at most [`KEEP_ALIVE_IDLE`], and not
    /// at all once `crowded` says another client waits for a place.
    async fn serve(&self, mut sock: TcpStream, crowded: &Notify) {
        let mut buf = Vec::with_capacity(1024);
        loop {
            match tokio::time::timeout(IO_TIMEOUT, self.exchange(&mut sock, &mut buf)).await {
                Err(_) => {
                    tracing::debug!("control API connection timed out");
                    return;
                }
                Ok(Exchange::Kept) => {}
                Ok(Exchange::Close) => {
                    let _ = sock.shutdown().await;
                    return;
                }
                Ok(Exchange::Gone) => return,
            }
            if buf.is_empty() {
                let crowded = crowded.notified();
                tokio::select! {
                    ready = tokio::time::timeout(KEEP_ALIVE_IDLE, sock.readable()) => {
                        if !matches!(ready, Ok(Ok(()))) {
                            return;
                        }
                    }
                    () = crowded => return,
                }
            }
        }
    }

    /// Reads one request (its first bytes may already be in `buf`), answers it, and leaves in
    /// `buf` whatever the client sent after it.
    async fn exchange(&self, sock: &mut TcpStream, buf: &mut Vec<u8>) -> Exchange {
        let head = loop {
            if !buf.is_empty() {
                match parse_head(buf, self.max_headers_size) {
                    Ok(Some(head)) => break head,
                    Ok(None) => {}
                    Err(Refusal(code, text)) => {
                        let _ = sock.write_all(&Answer::text(code, text).encode()).await;
                        return Exchange::Close;
                    }
                }
            }
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return Exchange::Gone,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let (answer, items) = match check_framing(&head, self.max_body_size) {
            // The body's extent is unknown: the connection cannot carry another request.
            Err(Refusal(code, text)) => (Answer::text(code, text), None),
            Ok(len) => {
                let mut body = buf.split_off(head.len);
                while body.len() < len {
                    let mut chunk = vec![0u8; (len - body.len()).min(65536)];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return Exchange::Gone,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                *buf = body.split_off(len);
                let mut answered = self
                    .answer(&head.method, &head.path, head.accept.as_deref(), &body)
                    .await;
                answered.0.keep_alive = head.keep_alive;
                answered
            }
        };
        if tracing::enabled!(tracing::Level::INFO) {
            let items = items.map(|n| format!(" items={n}")).unwrap_or_default();
            tracing::info!(
                "control: {} {} code={} {}{items}",
                head.method,
                head.path,
                answer.code,
                answer.body.len()
            );
        }
        if sock.write_all(&answer.encode()).await.is_err() {
            return Exchange::Gone;
        }
        if answer.keep_alive {
            Exchange::Kept
        } else {
            Exchange::Close
        }
    }

    /// The answer for a complete request, and the number of items published.
    async fn answer(
        &self,
        method: &str,
        path: &str,
        accept: Option<&str>,
        body: &[u8],
    ) -> (Answer, Option<usize>) {
        let Some(format) = negotiate(accept) else {
            return (Answer::text(406, http::NOT_ACCEPTABLE), None);
        };
        match normalize_path(path) {
            "/" => (Answer::text(200, "Pushpin API"), None),
            "/publish" if method != "POST" => (Answer::method_not_allowed(method), None),
            "/publish" => match parse_publish_body(body).and_then(|items| {
                check::check_items(&items).map_err(PublishError::Item)?;
                Ok(items)
            }) {
                Err(err) => (Answer::text(400, &err.to_string()), None),
                Ok(items) => {
                    let n = items.len();
                    self.grip.publish(items, PublishInput::Http).await;
                    (Answer::message(format, "Published"), Some(n))
                }
            },
            "/recover" if method != "POST" => (Answer::method_not_allowed(method), None),
            "/recover" => {
                self.grip.recover();
                (Answer::message(format, "Updated"), None)
            }
            _ => (Answer::text(404, "Not Found"), None),
        }
    }
}
