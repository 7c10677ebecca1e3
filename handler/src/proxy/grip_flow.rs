//! What a proxy task does with a GRIP response (reference §4): parse the instruction, then
//! answer at once (no hold), hand the request to the hub (response or stream hold), or stream
//! the response while following next links (§4.5).
//!
//! JSON-P requests (§4.7): a response hold's replies are wrapped by the hub (and get no CORS
//! headers); stream holds and no-hold GRIP responses are sent unwrapped.
//!
//! Left out for now (documented gaps): the >100000-byte stream-hold passthrough of §4.1 (such
//! responses get 502), the `prev-id` check of a stream hold's first hold (a mismatch there
//! should fetch the next link; mismatches while held do), the batching and 10/s limiter of
//! next-link recoveries, gone links of requests ended while a proxy task (retry or next-link
//! fetch) owns them, JSON-P wrapping of no-hold GRIP responses, the
//! `build-id`/`var-subst` content filters, `Grip-Session-*`.
//!
//! Next-link recovery (§4.5): the hub fetches a stream hold's next link when one of its
//! channels delivered nothing within the link's `timeout=` (and on the channel's
//! first-subscription update); the fetch runs through [`follow_links`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use holdfast_proto::grip::{HoldMode as Mode, Instruct, OriginResponse};
use holdfast_proto::internal::{CloseReason, Header, RequestHead};
use holdfast_proto::routes::{Route, TargetKind};

use super::forward::{self, Attempt, BufferError, Buffered};
use super::gone::GoneLink;
use super::jsonp::Jsonp;
use super::log::{Outcome, RequestLog};
use super::request::{BodyLength, ClientRequest};
use super::response::{Generated, PROXY_ERROR};
use super::{plan_target, ProxyContext, TargetPlan};
use crate::grip::cors::CorsRequest;
use crate::grip::hub::{Effects, Filters, Hold, HoldMode, Reply, Sub};
use crate::grip::keepalive::KeepAlive;
use crate::grip::Origin;
use crate::session::{Inbox, SessionGuard, StreamOut};

/// Largest GRIP response body read (Pushpin's limit).
pub const MAX_INSTRUCT_BODY: usize = 100_000;

/// 400 text when the client's request body is too large to hold.
pub const REQUEST_TOO_LARGE: &str = "Request too large to accept GRIP instruct.\n";

/// Next-link chains longer than this end the response (a loop guard).
const MAX_LINKS: usize = 1000;

/// Everything a GRIP decision needs about the session.
pub struct GripSession<'a> {
    /// Shared proxy state.
    pub ctx: &'a ProxyContext,
    /// The client's request head.
    pub head: &'a RequestHead,
    /// The parsed client request.
    pub req: &'a ClientRequest,
    /// The route.
    pub route: &'a Route,
    /// Route or global debug.
    pub debug: bool,
    /// CORS (auto cross-origin), when enabled.
    pub cors: Option<CorsRequest>,
    /// JSON-P wrapping of a response hold's reply, when the request was JSON-P.
    pub jsonp: Option<Jsonp>,
    /// The stream's inbox.
    pub inbox: &'a Arc<Inbox>,
    /// The stream's output.
    pub out: &'a StreamOut,
    /// The task's session guard (handed over on a hold).
    pub guard: &'a mut SessionGuard,
    /// The request log line.
    pub log: &'a mut RequestLog,
}

impl GripSession<'_> {
    async fn send(&mut self, answer: Generated) {
        forward::send_generated(answer, &self.req.method, self.inbox, self.out, self.log).await;
    }

    async fn fail(&mut self, detail: String) {
        let text = if self.debug {
            format!("{detail}\n")
        } else {
            PROXY_ERROR.to_string()
        };
        self.send(Generated::text(502, text)).await;
    }
}

/// Handles a GRIP exchange: reads the instruction and acts on it.
pub async fn accept_exchange(mut s: GripSession<'_>, exchange: forward::Exchange) {
    match exchange.buffer(MAX_INSTRUCT_BODY).await {
        Ok(buffered) => accept(s, buffered).await,
        Err(BufferError::TooLarge(target)) => {
            s.fail(format!("GRIP instruct response too large from {target}"))
                .await
        }
        Err(BufferError::Proxy(err)) => {
            tracing::debug!("stream {}: {err}", s.out.key().id);
            s.fail(err.to_string()).await
        }
    }
}

/// Acts on a complete GRIP response.
pub async fn accept(mut s: GripSession<'_>, origin: Buffered) {
    let Some(request_body) = s.inbox.captured_body() else {
        s.send(Generated::text(400, REQUEST_TOO_LARGE)).await;
        return;
    };
    let uri = s.req.uri();
    let parsed = Instruct::parse(
        &OriginResponse {
            code: origin.code,
            reason: &origin.reason,
            headers: &origin.headers,
            body: &origin.body,
        },
        &uri,
    );
    let instruct = match parsed.and_then(|i| i.check_prev_ids().map(|()| i)) {
        Ok(i) => i,
        Err(err) => {
            s.fail(format!("Failed to parse accept instructions: {err}"))
                .await;
            return;
        }
    };
    let mut headers = instruct.response.headers.clone();
    // A JSON-P reply gets no CORS headers (as Pushpin).
    let wrapped = s.jsonp.is_some() && instruct.hold == Some(Mode::Response);
    if let (Some(cors), false) = (&s.cors, wrapped) {
        cors.apply(&mut headers);
    }
    let reply = Reply {
        code: instruct.response.code,
        reason: instruct.response.reason.clone(),
        headers,
        body: instruct.response.body.clone(),
    };
    match instruct.hold {
        None => match &instruct.next_link {
            None => {
                s.send(Generated {
                    code: reply.code,
                    reason: reply.reason,
                    headers: reply.headers,
                    body: reply.body,
                })
                .await
            }
            Some(link) => {
                let url: Arc<str> = Arc::from(link.url.as_str());
                if send_head(&mut s, reply).await {
                    let origin = Arc::new(origin_of(&s, &instruct, request_body));
                    follow_links(s, origin, url, Vec::new()).await;
                }
            }
        },
        Some(mode) => {
            let origin = Arc::new(origin_of(&s, &instruct, request_body));
            hand_off(s, &instruct, mode, Some(reply), origin);
        }
    }
}

fn origin_of(s: &GripSession<'_>, instruct: &Instruct, body: Bytes) -> Origin {
    let mut head = s.head.clone();
    head.body = Bytes::new();
    head.more = false;
    let gone = instruct
        .gone_link
        .as_deref()
        .and_then(|url| match link_plan(s.req, s.route, url) {
            Ok((plan, path)) => Some(Arc::new(GoneLink {
                url: url.to_string(),
                path,
                plan,
                props: s.route.props.clone(),
            })),
            Err(msg) => {
                tracing::debug!("stream {}: {msg}", s.out.key().id);
                None
            }
        });
    Origin { head, body, gone }
}

/// Sends a streamed response's head and first body (within credits).
async fn send_head(s: &mut GripSession<'_>, reply: Reply) -> bool {
    let mut body = reply.body;
    let n = s.inbox.try_take_credits(body.len());
    let first = body.split_to(n);
    let mut sent = first.len() as u64;
    if s.out
        .respond(reply.code, reply.reason, reply.headers, first, true)
        .await
        .is_err()
    {
        return false;
    }
    s.log.outcome = Outcome::Response {
        code: reply.code,
        body_bytes: 0,
    };
    while !body.is_empty() {
        let n = s.inbox.take_credits(body.len()).await;
        let chunk = body.split_to(n);
        sent += chunk.len() as u64;
        if s.out.body(chunk, true).await.is_err() {
            return false;
        }
    }
    s.log.outcome = Outcome::Response {
        code: reply.code,
        body_bytes: sent,
    };
    true
}

/// Appends bytes to a started response within credits.
async fn append(inbox: &Inbox, out: &StreamOut, mut data: Bytes) -> bool {
    while !data.is_empty() {
        let n = inbox.take_credits(data.len()).await;
        let chunk = data.split_to(n);
        if out.body(chunk, true).await.is_err() {
            return false;
        }
    }
    true
}

/// Gives the request to the hub. `head` is `None` when the stream's head was already sent.
fn hand_off(
    s: GripSession<'_>,
    instruct: &Instruct,
    mode: Mode,
    head: Option<Reply>,
    origin: Arc<Origin>,
) {
    let prefix = &s.route.props.prefix;
    let max = s.ctx.hub_config.connection_subscription_max;
    let subs: Vec<Sub> = instruct
        .channels
        .iter()
        .take(max)
        .map(|c| Sub {
            name: Arc::from(format!("{prefix}{}", c.name)),
            prefix_len: prefix.len(),
            filters: Filters::from_names(&c.filters),
            prev_id: c.prev_id.clone(),
        })
        .collect();
    for sub in &subs {
        let retry = if s.log.retry { " retry" } else { "" };
        // The URI is formatted inside the macro: only when the line is logged (1-2% of a held
        // request's handler time otherwise).
        tracing::info!("subscribe {} channel={}{retry}", s.req.uri(), sub.name);
    }
    let meta: Option<Arc<BTreeMap<String, String>>> =
        (!instruct.meta.is_empty()).then(|| Arc::new(instruct.meta.clone()));
    let mode = match mode {
        Mode::Response => HoldMode::Response {
            jsonp: s.jsonp.clone().map(Arc::new),
            timeout: Duration::from_secs(u64::from(instruct.timeout)),
            reply: Arc::new(head.unwrap_or_else(|| Reply {
                code: 200,
                reason: "OK".into(),
                headers: Vec::new(),
                body: Bytes::new(),
            })),
        },
        Mode::Stream => HoldMode::Stream {
            head,
            keep_alive: instruct
                .keep_alive
                .as_ref()
                .map(|ka| Arc::new(KeepAlive::from_instruct(ka))),
            next_link: instruct
                .next_link
                .as_ref()
                .map(|l| Arc::from(l.url.as_str())),
            link_timeout: Duration::from_secs(
                instruct
                    .next_link
                    .as_ref()
                    .map_or(0, |l| u64::from(l.timeout)),
            ),
        },
    };
    // The limiter's bucket; not even allocated when there is no limiter.
    let cfg = &s.ctx.hub_config;
    let route = if cfg.message_rate.is_some() || cfg.message_hwm.is_some() {
        s.route.id.as_deref().map(Arc::from)
    } else {
        None
    };
    let runtime = &s.ctx.grip;
    let mut fx = Effects::default();
    {
        let mut hub = runtime.lock();
        // Under the hub lock: credits the connmgr sends from now on go to the hub, which
        // cannot miss them because it registers the stream before releasing the lock.
        if !s.guard.into_held() {
            return;
        }
        let credits = s.inbox.take_all_credits();
        hub.hold(
            Hold {
                key: s.out.key().clone(),
                serial: s.guard.serial(),
                credits,
                subs,
                meta,
                origin,
                route,
                mode,
            },
            Instant::now(),
            &mut fx,
        );
    }
    runtime.apply(fx);
    if !matches!(s.log.outcome, Outcome::Response { .. }) {
        s.log.outcome = Outcome::Accept;
    }
}

/// Follows next links on a started response (no-hold responses with a link, `hint` on a
/// stream): appends each linked body; a stream hold goes to the hub; a response without hold
/// and link ends the client's response.
pub async fn follow_links(
    s: GripSession<'_>,
    origin: Arc<Origin>,
    mut url: Arc<str>,
    grip_last: Vec<(String, String)>,
) {
    for _ in 0..MAX_LINKS {
        let fetched = match fetch_link(&s, &url, &grip_last).await {
            Ok(b) => b,
            Err(msg) => {
                end_with_error(&s, &msg).await;
                return;
            }
        };
        if !(200..300).contains(&fetched.code) {
            end_with_error(&s, &format!("Next link returned status {}", fetched.code)).await;
            return;
        }
        if !holdfast_proto::grip::is_grip_response(&fetched.headers) {
            let _ = append(s.inbox, s.out, fetched.body).await;
            let _ = s.out.body(Bytes::new(), false).await;
            return;
        }
        let instruct = match Instruct::parse(
            &OriginResponse {
                code: fetched.code,
                reason: &fetched.reason,
                headers: &fetched.headers,
                body: &fetched.body,
            },
            &url,
        ) {
            Ok(i) => i,
            Err(err) => {
                end_with_error(&s, &format!("Failed to parse accept instructions: {err}")).await;
                return;
            }
        };
        if !append(s.inbox, s.out, instruct.response.body.clone()).await {
            return;
        }
        match (instruct.hold, &instruct.next_link) {
            (Some(Mode::Stream), _) => {
                hand_off(s, &instruct, Mode::Stream, None, origin);
                return;
            }
            (Some(Mode::Response), _) => {
                end_with_error(&s, "Next link returned non-stream hold.").await;
                return;
            }
            (None, Some(next)) => url = Arc::from(next.url.as_str()),
            (None, None) => {
                let _ = s.out.body(Bytes::new(), false).await;
                return;
            }
        }
    }
    end_with_error(&s, "too many next links").await;
    s.log.outcome = Outcome::Error;
}

async fn end_with_error(s: &GripSession<'_>, msg: &str) {
    tracing::debug!("stream {}: {msg}", s.out.key().id);
    if s.debug {
        let _ = append(s.inbox, s.out, Bytes::from(format!("\n\n{msg}\n"))).await;
    }
    s.out.close(CloseReason::BackendError);
}

/// GETs a next link: through the route's first host target when the link names the client's
/// own host, directly otherwise. Sends `Grip-Last` and the GRIP signature headers.
async fn fetch_link(
    s: &GripSession<'_>,
    url: &str,
    grip_last: &[(String, String)],
) -> Result<Buffered, String> {
    let (plan, path) = link_plan(s.req, s.route, url)?;
    let mut headers: Vec<Header> = grip_last
        .iter()
        .map(|(c, id)| Header::new("Grip-Last", format!("{c}; last-id={id}")))
        .collect();
    headers.extend(s.ctx.signer.grip_headers(&s.route.props));
    let attempt = Attempt {
        method: "GET",
        path: &path,
        headers: &headers,
        length: BodyLength::Empty,
        plan: &plan,
    };
    let exchange = forward::exchange(&s.ctx.client, &attempt, s.inbox, s.out)
        .await
        .map_err(|e| e.to_string())?;
    exchange
        .buffer(MAX_INSTRUCT_BODY)
        .await
        .map_err(|e| e.to_string())
}

/// Where a link goes: through the route's first host target when it names the client's own
/// host, directly otherwise. Returns the connection plan and the path with query.
fn link_plan(
    req: &ClientRequest,
    route: &Route,
    url: &str,
) -> Result<(TargetPlan, String), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("invalid link {url}"))?;
    let ssl = uri.scheme_str() == Some("https");
    let host = uri
        .host()
        .ok_or_else(|| format!("link without host {url}"))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16();
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let same_host = host == req.host && port == req.port && ssl == req.secure;
    let plan = if same_host {
        route.targets.iter().find_map(|t| match &t.kind {
            TargetKind::Host { host: h, port: p } => Some(plan_target(&host, port, t, h, *p)),
            _ => None,
        })
    } else {
        None
    };
    let plan = match plan {
        Some(plan) => plan,
        None => {
            let connect_port = port.unwrap_or(if ssl { 443 } else { 80 });
            let mut target = holdfast_proto::routes::Target::new(TargetKind::Host {
                host: host.clone(),
                port: connect_port,
            });
            target.ssl = ssl;
            plan_target(&host, port, &target, &host, connect_port)
        }
    };
    Ok((plan, path))
}
