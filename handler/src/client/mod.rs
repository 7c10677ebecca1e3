//! The backend HTTP/1.1 client: hyper's low-level `client::conn::http1` over our own small
//! connection pool.
//!
//! hyper-util's pooled client would hide the moment a connection is established; the proxy needs
//! it explicitly: it connects *first* and only then hands the request (and its streaming body)
//! to hyper, so a connect or TLS failure can fall through to the route's next target before a
//! single request body byte is consumed.
//!
//! # Pool
//!
//! Connections are keyed by [`PoolKey`] (connect host, port, and for TLS the verification name
//! and the `insecure` flag). A connection goes back to the pool only after a response was read
//! to its end and the request body was fully sent, and only once hyper says it is ready for
//! another request. Bounds:
//!
//! * at most [`MAX_IDLE_PER_TARGET`] idle connections per key and [`MAX_IDLE_TOTAL`] overall
//!   (the oldest idle connection is closed to make room);
//! * an idle connection older than [`IDLE_TIMEOUT`] is closed (checked at checkout and by
//!   [`Client::reap_idle`], which the handler runs every [`REAP_INTERVAL`]);
//! * busy connections are bounded by the number of sessions (one per session at most).
//!
//! A reused connection may turn out to be closed by the backend; hyper then hands the request
//! back unsent and the proxy retries once on a fresh connection.

pub mod body;
pub mod tls;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::client::conn::TrySendError;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

pub use self::body::RequestBody;
use self::tls::TlsConfigs;
use crate::error::ProxyError;

/// Time allowed for TCP connect plus TLS handshake to one target.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle connections kept per pool key. Sized above the number of requests a busy route has in
/// flight at once: with 50 concurrent clients and 32 kept, every round of answers closed 18
/// connections that the next round opened again (a TCP connect, an HTTP/1 handshake task and a
/// close per request beyond the 32nd: 3% of the handler's time in a `wrk -c50` profile).
pub const MAX_IDLE_PER_TARGET: usize = 256;

/// Idle connections kept in total.
pub const MAX_IDLE_TOTAL: usize = 1024;

/// An idle connection unused for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How often idle connections are swept.
pub const REAP_INTERVAL: Duration = Duration::from_secs(10);

/// How long a finished connection may take to become ready for the next request.
const READY_WAIT: Duration = Duration::from_secs(1);

/// Connection attempts in flight per target. A burst of hundreds of simultaneous connects
/// (every held long-poll re-requested at once) overflows a small backend's accept queue, and
/// the kernel then drops SYNs, costing each client seconds of retransmission backoff; a few
/// connects at a time plus reuse of returned connections serves the burst far faster.
pub const MAX_CONNECTS_PER_TARGET: usize = 4;

/// Targets whose connect limiter is remembered before idle limiters are forgotten.
const MAX_LIMITERS: usize = 1024;

/// Identifies interchangeable backend connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// Connect host (name or address; IPv6 without brackets).
    pub host: String,
    /// Connect port.
    pub port: u16,
    /// TLS parameters, `None` for plain HTTP.
    pub tls: Option<TlsKey>,
}

/// TLS parameters of a pooled connection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TlsKey {
    /// SNI and certificate verification name.
    pub server_name: String,
    /// Certificate verification disabled (`insecure`).
    pub insecure: bool,
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

struct Idle {
    sender: SendRequest<RequestBody>,
    task: AbortHandle,
    since: Instant,
}

#[derive(Default)]
struct IdleMap {
    by_key: HashMap<PoolKey, Vec<Idle>>,
    total: usize,
}

impl IdleMap {
    /// Takes the most recently used live connection for `key`, closing stale ones on the way.
    fn take(&mut self, key: &PoolKey, now: Instant) -> Option<Idle> {
        let list = self.by_key.get_mut(key)?;
        let mut found = None;
        while let Some(idle) = list.pop() {
            self.total -= 1;
            let fresh = now.saturating_duration_since(idle.since) < IDLE_TIMEOUT;
            if fresh && idle.sender.is_ready() && !idle.sender.is_closed() {
                found = Some(idle);
                break;
            }
            idle.task.abort();
        }
        if list.is_empty() {
            self.by_key.remove(key);
        }
        found
    }

    fn put(&mut self, key: PoolKey, idle: Idle) {
        if self.total >= MAX_IDLE_TOTAL {
            self.evict_oldest();
        }
        let list = self.by_key.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_TARGET {
            let oldest = list.remove(0);
            oldest.task.abort();
            self.total -= 1;
        }
        list.push(idle);
        self.total += 1;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .by_key
            .iter()
            .filter_map(|(k, list)| list.first().map(|i| (k.clone(), i.since)))
            .min_by_key(|(_, since)| *since)
            .map(|(k, _)| k);
        if let Some(key) = oldest {
            if let Some(list) = self.by_key.get_mut(&key) {
                let idle = list.remove(0);
                idle.task.abort();
                self.total -= 1;
                if list.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
    }

    fn reap(&mut self, now: Instant) -> usize {
        let mut closed = 0;
        self.by_key.retain(|_, list| {
            list.retain(|idle| {
                let keep = now.saturating_duration_since(idle.since) < IDLE_TIMEOUT
                    && !idle.sender.is_closed();
                if !keep {
                    idle.task.abort();
                    closed += 1;
                }
                keep
            });
            !list.is_empty()
        });
        self.total -= closed;
        closed
    }
}

struct ClientInner {
    tls: TlsConfigs,
    idle: Mutex<IdleMap>,
    connecting: Mutex<HashMap<PoolKey, Arc<tokio::sync::Semaphore>>>,
}

/// The backend client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

/// A connection checked out for one request.
pub struct Conn {
    key: PoolKey,
    sender: SendRequest<RequestBody>,
    task: TaskGuard,
    reused: bool,
    client: Client,
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("key", &self.key)
            .field("reused", &self.reused)
            .finish()
    }
}

/// Closes the connection (and so cancels its backend request) unless disarmed.
struct TaskGuard(Option<AbortHandle>);

impl TaskGuard {
    fn disarm(mut self) -> Option<AbortHandle> {
        self.0.take()
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        // Not released: the exchange did not finish cleanly (error, cancellation), so the
        // connection's state is unknown. Close it.
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Client {
    /// A client with an empty pool.
    pub fn new(tls: TlsConfigs) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                tls,
                idle: Mutex::new(IdleMap::default()),
                connecting: Mutex::default(),
            }),
        }
    }

    fn idle(&self) -> MutexGuard<'_, IdleMap> {
        // The map only holds handles; a poisoned lock still holds a usable map.
        self.inner
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The TLS client configurations of backend connections (also used by WebSocket
    /// passthrough, which makes its own connections).
    pub fn tls(&self) -> &TlsConfigs {
        &self.inner.tls
    }

    /// Number of idle pooled connections.
    pub fn idle_count(&self) -> usize {
        self.idle().total
    }

    /// Closes expired idle connections; returns how many.
    pub fn reap_idle(&self) -> usize {
        self.idle().reap(Instant::now())
    }

    /// An idle pooled connection for `key`, or a new one (at most
    /// [`MAX_CONNECTS_PER_TARGET`] connects in flight per target; waiting callers take a
    /// connection returned to the pool meanwhile).
    pub async fn checkout(&self, key: &PoolKey) -> Result<Conn, ProxyError> {
        if let Some(conn) = self.take_idle(key) {
            return Ok(conn);
        }
        let limiter = self.limiter(key);
        // The semaphore is never closed, so acquiring only fails if it were; connect anyway.
        let _permit = limiter.acquire().await.ok();
        if let Some(conn) = self.take_idle(key) {
            return Ok(conn);
        }
        // Boxed: connecting (TCP, TLS, handshake) is the rare path once the pool is warm, and
        // its state would otherwise sit in every request's task future.
        Box::pin(self.connect(key)).await
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Conn> {
        let idle = self.idle().take(key, Instant::now())?;
        Some(Conn {
            key: key.clone(),
            sender: idle.sender,
            task: TaskGuard(Some(idle.task)),
            reused: true,
            client: self.clone(),
        })
    }

    fn limiter(&self, key: &PoolKey) -> Arc<tokio::sync::Semaphore> {
        let mut map = self
            .inner
            .connecting
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_LIMITERS && !map.contains_key(key) {
            map.retain(|_, s| s.available_permits() < MAX_CONNECTS_PER_TARGET);
        }
        map.entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTS_PER_TARGET)))
            .clone()
    }

    /// A new connection for `key` (TCP, TLS if asked, HTTP/1 handshake).
    pub async fn connect(&self, key: &PoolKey) -> Result<Conn, ProxyError> {
        let target = key.to_string();
        let connect = async {
            let tcp = TcpStream::connect((key.host.as_str(), key.port))
                .await
                .map_err(|source| ProxyError::Connect {
                    target: target.clone(),
                    source,
                })?;
            // Small writes (heads, chunks) must not wait for Nagle.
            let _ = tcp.set_nodelay(true);
            match &key.tls {
                None => handshake(TokioIo::new(tcp), &target).await,
                Some(tls) => {
                    let name = ServerName::try_from(tls.server_name.clone()).map_err(|_| {
                        ProxyError::Tls {
                            target: target.clone(),
                            source: io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("invalid TLS server name '{}'", tls.server_name),
                            ),
                        }
                    })?;
                    let connector =
                        tokio_rustls::TlsConnector::from(self.inner.tls.for_target(tls.insecure));
                    let stream =
                        connector
                            .connect(name, tcp)
                            .await
                            .map_err(|source| ProxyError::Tls {
                                target: target.clone(),
                                source,
                            })?;
                    handshake(TokioIo::new(stream), &target).await
                }
            }
        };
        let (sender, task) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| ProxyError::ConnectTimeout {
                target: target.clone(),
            })??;
        Ok(Conn {
            key: key.clone(),
            sender,
            task: TaskGuard(Some(task)),
            reused: false,
            client: self.clone(),
        })
    }
}

async fn handshake<T>(
    io: T,
    target: &str,
) -> Result<(SendRequest<RequestBody>, AbortHandle), ProxyError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .title_case_headers(true)
        .handshake::<T, RequestBody>(io)
        .await
        .map_err(|source| ProxyError::Handshake {
            target: target.to_string(),
            source,
        })?;
    let target = target.to_string();
    let task = tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("backend connection to {target} ended: {err}");
        }
    });
    Ok((sender, task.abort_handle()))
}

impl Conn {
    /// True if the connection came from the pool (it may have been closed by the backend).
    pub fn is_reused(&self) -> bool {
        self.reused
    }

    /// Sends a request. If hyper could not start sending it (connection closed or not ready),
    /// the error carries the request back for a retry on another connection.
    pub async fn send(
        &mut self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<RequestBody>>> {
        self.sender.try_send_request(req).await
    }

    /// Returns the connection to the pool once hyper is ready for another request (the
    /// response must have been read to its end and the request body sent completely).
    pub fn release(self) {
        let Conn {
            key,
            mut sender,
            task,
            client,
            ..
        } = self;
        let Some(task) = task.disarm() else {
            return;
        };
        if sender.is_ready() {
            client.idle().put(
                key,
                Idle {
                    sender,
                    task,
                    since: Instant::now(),
                },
            );
            return;
        }
        tokio::spawn(async move {
            match tokio::time::timeout(READY_WAIT, sender.ready()).await {
                Ok(Ok(())) => client.idle().put(
                    key,
                    Idle {
                        sender,
                        task,
                        since: Instant::now(),
                    },
                ),
                _ => task.abort(),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_key_display_brackets_ipv6() {
        let v4 = PoolKey {
            host: "127.0.0.1".into(),
            port: 80,
            tls: None,
        };
        let v6 = PoolKey {
            host: "::1".into(),
            port: 8080,
            tls: None,
        };
        assert_eq!(v4.to_string(), "127.0.0.1:80");
        assert_eq!(v6.to_string(), "[::1]:8080");
    }

    #[tokio::test]
    async fn connect_refused_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let client = Client::new(TlsConfigs::new().unwrap());
        let err = client
            .checkout(&PoolKey {
                host: "127.0.0.1".into(),
                port,
                tls: None,
            })
            .await
            .unwrap_err();
        assert!(err.may_try_next_target(), "{err}");
        assert!(matches!(err, ProxyError::Connect { .. }));
    }

    #[tokio::test]
    async fn tls_failure_is_a_tls_error() {
        // A plain TCP server that closes immediately: the TLS handshake fails.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                drop(sock);
            }
        });
        let client = Client::new(TlsConfigs::new().unwrap());
        let err = client
            .checkout(&PoolKey {
                host: "127.0.0.1".into(),
                port,
                tls: Some(TlsKey {
                    server_name: "localhost".into(),
                    insecure: false,
                }),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, ProxyError::Tls { .. }), "{err}");
        assert!(err.may_try_next_target());
    }
}
