//! The HTTP control API (reference §6.2) on `push_in_http_addr:push_in_http_port`:
//! `POST /publish/`, `POST /recover`, `GET /`.
//!
//! A small HTTP/1 server on tokio ([`http`] holds the pure framing): one request per
//! connection (every answer says `Connection: close`), head ≤ `push_in_http_max_headers_size`,
//! body ≤ `push_in_http_max_body_size`, at most [`MAX_CONNECTIONS`] connections at once, and
//! [`IO_TIMEOUT`] to receive a request. A publish is validated whole (proto's
//! `parse_publish_body`) before any item is delivered.

pub mod check;
pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::publish::{parse_publish_body, PublishError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use self::http::{check_framing, negotiate, normalize_path, parse_head, Answer, Refusal};
use crate::grip::GripRuntime;
use crate::observe::PublishInput;

/// Concurrent control connections (Pushpin's limit).
pub const MAX_CONNECTIONS: usize = 128;

/// Time allowed to receive a request and send the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

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
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (sock, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::debug!("control API accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let server = server.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if tokio::time::timeout(IO_TIMEOUT, server.serve(sock))
                    .await
                    .is_err()
                {
                    tracing::debug!("control API connection timed out");
                }
            });
        }
    }

    async fn serve(&self, mut sock: TcpStream) {
        let mut buf = Vec::with_capacity(1024);
        let head = loop {
            let mut chunk = [0u8; 4096];
            let n = match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            match parse_head(&buf, self.max_headers_size) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(Refusal(code, text)) => {
                    let _ = sock.write_all(&Answer::text(code, text).encode()).await;
                    return;
                }
            }
        };
        let (answer, items) = match check_framing(&head, self.max_body_size) {
            Err(Refusal(code, text)) => (Answer::text(code, text), None),
            Ok(len) => {
                let mut body = buf.split_off(head.len);
                body.truncate(len);
                while body.len() < len {
                    let mut chunk = vec![0u8; (len - body.len()).min(65536)];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                self.answer(&head.method, &head.path, head.accept.as_deref(), &body)
                    .await
            }
        };
        let mut line = format!(
            "control: {} {} code={} {}",
            head.method,
            head.path,
            answer.code,
            answer.body.len()
        );
        if let Some(n) = items {
            line.push_str(&format!(" items={n}"));
        }
        tracing::info!("{line}");
        let _ = sock.write_all(&answer.encode()).await;
        let _ = sock.shutdown().await;
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
