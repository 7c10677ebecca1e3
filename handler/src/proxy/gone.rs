//! Gone links (reference §4.5): when a held request ends because its client went away, the
//! handler POSTs an empty body to the `Grip-Link: <…>; rel=gone` URL of the initial response.
//!
//! Best effort: one attempt, any response accepted, failures logged at debug. Each request
//! runs in its own task with a 10 s timeout; at most [`MAX_IN_FLIGHT`] run at once, further
//! ones are skipped and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use holdfast_proto::internal::Header;
use holdfast_proto::routes::RouteProps;
use tokio::sync::Semaphore;

use super::forward::{self, Attempt};
use super::request::BodyLength;
use super::{ProxyContext, TargetPlan};
use crate::session::{Inbox, SessionKey, StreamOut};

/// Gone requests in flight at most; more are skipped.
pub const MAX_IN_FLIGHT: usize = 100;

/// How long one gone request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where a held request's gone link goes, resolved when the request was held.
#[derive(Debug)]
pub struct GoneLink {
    /// The URL (for logs).
    pub url: String,
    /// Path with query.
    pub path: String,
    /// Host header and connection.
    pub plan: TargetPlan,
    /// The route's properties (signing key and issuer).
    pub props: RouteProps,
}

/// The bound on concurrent gone requests.
#[derive(Debug)]
pub struct GoneLimiter {
    permits: Arc<Semaphore>,
    skipped: AtomicU64,
}

impl Default for GoneLimiter {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            skipped: AtomicU64::new(0),
        }
    }
}

impl GoneLimiter {
    /// Gone requests skipped because [`MAX_IN_FLIGHT`] were running.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

/// Starts the gone request of a held request whose client went away (needs a runtime).
pub fn spawn(ctx: &Arc<ProxyContext>, key: &SessionKey, link: Arc<GoneLink>) {
    let Ok(permit) = ctx.gone.permits.clone().try_acquire_owned() else {
        let n = ctx.gone.skipped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!("gone link {} skipped ({n} skipped so far)", link.url);
        return;
    };
    let ctx = ctx.clone();
    // A stand-in stream for the request body plumbing: the body is fixed and empty, so
    // nothing is ever read from it or sent to it.
    let inbox = Arc::new(Inbox::new(Bytes::new(), false, 0));
    let out = StreamOut::new(ctx.outbox.clone(), key.clone());
    tokio::spawn(async move {
        let _permit = permit;
        match tokio::time::timeout(TIMEOUT, send(&ctx, &link, &inbox, &out)).await {
            Ok(Ok(code)) => tracing::debug!("gone link {}: {code}", link.url),
            Ok(Err(err)) => tracing::debug!("gone link {} failed: {err}", link.url),
            Err(_) => tracing::debug!("gone link {} timed out", link.url),
        }
    });
}

async fn send(
    ctx: &ProxyContext,
    link: &GoneLink,
    inbox: &Arc<Inbox>,
    out: &StreamOut,
) -> Result<u16, String> {
    let headers: Vec<Header> = ctx.signer.grip_headers(&link.props);
    let attempt = Attempt {
        method: "POST",
        path: &link.path,
        headers: &headers,
        length: BodyLength::Known(0),
        plan: &link.plan,
    };
    let exchange =
        forward::exchange_with_body(&ctx.client, &attempt, Some(Bytes::new()), inbox, out)
            .await
            .map_err(|e| e.to_string())?;
    let response = exchange
        .buffer(64 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.code)
}
