//! The Prometheus HTTP endpoint: any request gets the exposition, then the connection closes.
//! At most [`MAX_CONNECTIONS`] at once (Pushpin's limit), [`IO_TIMEOUT`] per request, request
//! heads up to [`MAX_HEAD`] bytes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use holdfast_proto::config::MetricsListen;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::Semaphore;

use super::{render, Metrics};

/// Concurrent connections.
pub const MAX_CONNECTIONS: usize = 16;

/// Time allowed to receive a request and send the answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head read.
pub const MAX_HEAD: usize = 16 * 1024;

/// A bound metrics listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix socket (the path is removed when the server stops).
    Unix(UnixListener, PathBuf),
}

/// Binds `listen` (an `ipc://` path replaces a stale socket file).
pub async fn bind(listen: &MetricsListen) -> std::io::Result<Listener> {
    match listen {
        MetricsListen::Tcp(addr) => Ok(Listener::Tcp(TcpListener::bind(addr).await?)),
        MetricsListen::Ipc(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let _ = std::fs::remove_file(path);
            Ok(Listener::Unix(UnixListener::bind(path)?, path.clone()))
        }
    }
}

/// Serves until the task is aborted.
pub async fn run(listener: Listener, metrics: Arc<Metrics>, prefix: String) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let prefix: Arc<str> = prefix.into();
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let metrics = metrics.clone();
        let prefix = prefix.clone();
        let accepted = match &listener {
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = tokio::time::timeout(IO_TIMEOUT, serve(s, &metrics, &prefix)).await;
                });
            }),
            Listener::Unix(l, _) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = tokio::time::timeout(IO_TIMEOUT, serve(s, &metrics, &prefix)).await;
                });
            }),
        };
        if let Err(err) = accepted {
            tracing::debug!("metrics accept failed: {err}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, metrics: &Metrics, prefix: &str) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 2048];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_HEAD {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                )
                .await;
            return;
        }
    }
    let head_only = buf.starts_with(b"HEAD ");
    let _ = sock
        .write_all(&answer(&render(metrics, prefix), head_only))
        .await;
    let _ = sock.shutdown().await;
}

/// The response bytes.
fn answer(body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Self::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_has_length_and_type() {
        let a = String::from_utf8(answer("x 1\n", false)).unwrap();
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(a.contains("Content-Length: 4\r\n"));
        assert!(a.ends_with("\r\n\r\nx 1\n"));
        assert!(String::from_utf8(answer("x 1\n", true))
            .unwrap()
            .ends_with("\r\n\r\n"));
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let listener = bind(&MetricsListen::Tcp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let Listener::Tcp(l) = &listener else {
            panic!()
        };
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(run(listener, Arc::new(Metrics::default()), "p_".into()));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.contains("p_request_received 0\n"), "{out}");
        task.abort();
    }
}
