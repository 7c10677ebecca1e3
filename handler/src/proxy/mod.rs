//! One proxied request, from `RequestHead` to the last response byte.
//!
//! 1. Parse the head into a [`ClientRequest`] (scheme, host, path, URI).
//! 2. Select the route (`Pushpin-Route` by id when `accept_pushpin_route`, else
//!    `RouteTable::select`); none → 502 `Route not found`.
//! 3. Apply the route: `as_host`, path rewrite, `header=`, and the §4.9 header rules; a JSON-P
//!    request (auto cross-origin `GET` with a callback, [`jsonp`]) is rewritten from its query
//!    and its response buffered and wrapped.
//! 4. Try the targets in order. A connect/TLS failure moves on to the next target; this is safe
//!    because the connection is established before hyper gets the request body. The `test`
//!    target answers in-process.
//! 5. Stream the response back within the connmgr's credits ([`forward`]).
//!
//! Every request logs one line ([`log::RequestLog`]), even when cancelled.

pub mod forward;
pub mod gone;
pub mod grip_flow;
pub mod headers;
pub mod jsonp;
pub mod log;
pub mod request;
pub mod response;
pub mod test_target;

use std::sync::Arc;

use holdfast_proto::config::ProxyConfig;
use holdfast_proto::internal::{RequestHead, StreamId};
use holdfast_proto::routes::{Route, RouteRequest, RouteTable, TargetKind};

use self::grip_flow::GripSession;
use self::headers::{forward_headers, ForwardParams};
use self::jsonp::Jsonp;
use self::log::RequestLog;
use self::request::{body_length, header_value, split_host_port, BodyLength, ClientRequest};
use self::response::{Generated, INVALID_REQUEST, PROXY_ERROR, ROUTE_NOT_FOUND};
use crate::client::body::{read_limited, LimitedBody};
use crate::client::{Client, PoolKey, TlsKey};
use crate::error::Fault;
use crate::grip::cors::CorsRequest;
use crate::grip::hub::{HubConfig, Resume, ResumeKind};
use crate::grip::sign::Signer;
use crate::grip::GripRuntime;
use crate::ipc::{Outbox, WorkerId};
use crate::routes::Routes;
use crate::session::{resume_held, Inbox, SessionGuard, SessionKey, SessionSpawner, StreamOut};

/// What every session shares.
#[derive(Debug)]
pub struct ProxyContext {
    /// `[proxy]` settings.
    pub config: ProxyConfig,
    /// The live routes.
    pub routes: Routes,
    /// The backend client and its pool.
    pub client: Client,
    /// The GRIP hub.
    pub grip: Arc<GripRuntime>,
    /// Hub settings (subscription limits).
    pub hub_config: HubConfig,
    /// Grip-Sig signing and upstream trust.
    pub signer: Signer,
    /// The way to the connmgr (for resumed sessions).
    pub outbox: Outbox,
    /// The bound on concurrent gone-link requests.
    pub gone: gone::GoneLimiter,
}

/// Starts one task per request; plugged into the [`crate::session::Dispatcher`].
#[derive(Clone, Debug)]
pub struct Proxy {
    ctx: Arc<ProxyContext>,
}

impl Proxy {
    /// A proxy over `ctx`.
    pub fn new(ctx: ProxyContext) -> Self {
        Self { ctx: Arc::new(ctx) }
    }

    /// Gives held requests back to proxy tasks (GRIP retries and next-link fetches) until the
    /// hub's channel closes.
    pub async fn run_resumer(self, mut resumes: tokio::sync::mpsc::UnboundedReceiver<Resume>) {
        while let Some(resume) = resumes.recv().await {
            let ctx = self.ctx.clone();
            let key = resume.key.clone();
            let out = StreamOut::new(ctx.outbox.clone(), key.clone());
            let sessions = ctx.grip.sessions().clone();
            let body = resume.origin.body.clone();
            let resumed = resume_held(
                &sessions,
                &key,
                resume.serial,
                resume.credits,
                body,
                move |inbox, guard| {
                    // Boxed, as in `spawn`.
                    tokio::spawn(Box::pin(async move {
                        let mut guard = guard;
                        run_resumed(&ctx, resume, &inbox, &out, &mut guard).await;
                    }))
                },
            );
            if !resumed {
                tracing::debug!("stream {} ended before its GRIP retry", key.id);
            }
        }
    }
}

/// A resumed held request: a retry through the normal proxy path, or a next-link fetch.
async fn run_resumed(
    ctx: &ProxyContext,
    resume: Resume,
    inbox: &Arc<Inbox>,
    out: &StreamOut,
    guard: &mut SessionGuard,
) {
    let mut head = resume.origin.head.clone();
    head.body = resume.origin.body.clone();
    match resume.kind {
        ResumeKind::Retry => {
            let extra = Extra {
                grip_last: resume.grip_last,
                retry: true,
            };
            run_session(ctx, head, inbox, out, guard, extra).await;
        }
        ResumeKind::NextLink(url) => {
            let mut log = RequestLog::new("GET", url.to_string());
            log.retry = true;
            let Ok(req) = ClientRequest::from_head(&head, ctx.config.accept_x_forwarded_protocol)
            else {
                out.close(holdfast_proto::internal::CloseReason::BackendError);
                return;
            };
            let table = ctx.routes.current();
            let Some(route) = select_route(&table, &req, &ctx.config) else {
                out.close(holdfast_proto::internal::CloseReason::BackendError);
                return;
            };
            let s = GripSession {
                ctx,
                head: &head,
                req: &req,
                route,
                debug: ctx.config.debug || route.props.debug,
                cors: None,
                jsonp: None,
                inbox,
                out,
                guard,
                log: &mut log,
            };
            grip_flow::follow_links(s, resume.origin.clone(), url, resume.grip_last).await;
        }
    }
}

/// What differs when a request is re-run for a held session.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    /// `Grip-Last` values to send (channel, last id).
    pub grip_last: Vec<(String, String)>,
    /// Log the line with ` retry`.
    pub retry: bool,
}

impl SessionSpawner for Proxy {
    fn spawn(
        &self,
        head: RequestHead,
        inbox: Arc<Inbox>,
        out: StreamOut,
        guard: SessionGuard,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = self.ctx.clone();
        // Boxed: the session's state machine is about 5 KB, and tokio moves a task's future
        // by value when it spawns it and again when it stores the output; a box is moved as
        // one pointer.
        tokio::spawn(Box::pin(async move {
            // Held for the task's lifetime: dropping it removes the session from the table
            // (unless the request was handed to the GRIP hub).
            let mut guard = guard;
            run_session(&ctx, head, &inbox, &out, &mut guard, Extra::default()).await;
        }))
    }

    fn held_credit(&self, key: &SessionKey, bytes: u32) {
        self.ctx
            .grip
            .with(|hub, now, fx| hub.credit(key, bytes, now, fx));
    }

    fn held_credits(&self, worker: &WorkerId, credits: &[(StreamId, u32)]) {
        // One hub lock for a whole run of credits (one per subscriber after a fan-out).
        self.ctx
            .grip
            .with(|hub, now, fx| hub.credits(worker, credits, now, fx));
    }

    fn held_closed(&self, key: &SessionKey) {
        let origin = self.ctx.grip.with(|hub, now, _| hub.closed(key, now));
        if let Some(link) = origin.and_then(|o| o.gone.clone()) {
            gone::spawn(&self.ctx, key, link);
        }
    }

    fn serves_websockets(&self) -> bool {
        true
    }

    fn spawn_ws(
        &self,
        head: RequestHead,
        inbox: Arc<Inbox>,
        ws: Arc<crate::ws::WsInbox>,
        out: StreamOut,
        guard: SessionGuard,
    ) -> tokio::task::JoinHandle<()> {
        let ctx = self.ctx.clone();
        // Boxed, as in `spawn`.
        tokio::spawn(Box::pin(async move {
            let mut guard = guard;
            crate::ws::session::run(&ctx, head, &inbox, &ws, &out, &mut guard).await;
        }))
    }
}

/// Handles one request to the end.
pub async fn run_session(
    ctx: &ProxyContext,
    head: RequestHead,
    inbox: &Arc<Inbox>,
    out: &StreamOut,
    guard: &mut SessionGuard,
    extra: Extra,
) {
    let mut log = RequestLog::new(&head.method, head.target.clone());
    log.retry = extra.retry;
    let req = match ClientRequest::from_head(&head, ctx.config.accept_x_forwarded_protocol) {
        Ok(req) => req,
        Err(err) => {
            tracing::debug!("stream {}: {err}", head.id);
            let answer = Generated::text(400, INVALID_REQUEST);
            forward::send_generated(answer, &head.method, inbox, out, &mut log).await;
            return;
        }
    };
    log.uri = req.uri();
    if ctx.config.log_from {
        log.from = Some(req.peer_addr.clone());
    }
    log.referer = header_value(&req.headers, "Referer").map(lossy);
    if ctx.config.log_user_agent {
        log.user_agent = header_value(&req.headers, "User-Agent").map(lossy);
    }

    let table = ctx.routes.current();
    let Some(route) = select_route(&table, &req, &ctx.config) else {
        let answer = Generated::text(502, ROUTE_NOT_FOUND);
        forward::send_generated(answer, &req.method, inbox, out, &mut log).await;
        return;
    };
    log.route_id = route.id.clone();
    if let Some(id) = &route.id {
        ctx.grip.emit(crate::observe::Event::RouteSelected {
            id: Arc::from(crate::observe::conn_id(&out.key().worker, head.id)),
            route: Arc::from(id.as_str()),
        });
    }
    let mut p = RouteSession {
        ctx,
        head: &head,
        req: &req,
        route,
        inbox,
        out,
        guard,
        log: &mut log,
    };
    proxy_to_route(&mut p, &extra).await;
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Route selection (reference §7.3, §8.4): with `accept_pushpin_route` a `Pushpin-Route`
/// header selects by id and never falls back to normal selection.
pub fn select_route<'a>(
    table: &'a RouteTable,
    req: &ClientRequest,
    config: &ProxyConfig,
) -> Option<&'a Route> {
    if config.accept_pushpin_route {
        if let Some(id) = header_value(&req.headers, "Pushpin-Route") {
            let id = String::from_utf8_lossy(id);
            return table.by_id(id.trim(), &req.path);
        }
    }
    table.select(&RouteRequest {
        host: &req.host,
        path: &req.path,
        websocket: false,
        secure: req.secure,
    })
}

/// Where a request goes for one target: the URI authority (Host header) and the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetPlan {
    /// `Host` header value.
    pub host_header: String,
    /// Pool key (connect host/port, TLS name).
    pub key: PoolKey,
}

/// Computes the Host header and connection parameters for a host target.
///
/// `host`/`port` are the request URI's (after `as_host`); the target's `host=` overrides them.
/// The TLS name is the request host, or the connect host with `trust_connect_host`.
pub fn plan_target(
    host: &str,
    port: Option<u16>,
    target: &holdfast_proto::routes::Target,
    connect_host: &str,
    connect_port: u16,
) -> TargetPlan {
    let (uri_host, uri_port) = target
        .host
        .as_deref()
        .and_then(split_host_port)
        .unwrap_or_else(|| (host.to_string(), port));
    let tls = target.ssl.then(|| TlsKey {
        server_name: if target.trust_connect_host {
            connect_host.to_string()
        } else {
            uri_host.clone()
        },
        insecure: target.insecure,
    });
    TargetPlan {
        host_header: request::authority(&uri_host, uri_port),
        key: PoolKey {
            host: connect_host.to_string(),
            port: connect_port,
            tls,
        },
    }
}

/// One request on its route.
struct RouteSession<'a> {
    ctx: &'a ProxyContext,
    head: &'a RequestHead,
    req: &'a ClientRequest,
    route: &'a Route,
    inbox: &'a Arc<Inbox>,
    out: &'a StreamOut,
    guard: &'a mut SessionGuard,
    log: &'a mut RequestLog,
}

impl RouteSession<'_> {
    fn grip(
        &mut self,
        debug: bool,
        cors: Option<CorsRequest>,
        jsonp: Option<Jsonp>,
    ) -> GripSession<'_> {
        GripSession {
            ctx: self.ctx,
            head: self.head,
            req: self.req,
            route: self.route,
            debug,
            cors,
            jsonp,
            inbox: self.inbox,
            out: self.out,
            guard: self.guard,
            log: self.log,
        }
    }
}

async fn proxy_to_route(p: &mut RouteSession<'_>, extra: &Extra) {
    let (ctx, head, req, route, inbox, out) = (p.ctx, p.head, p.req, p.route, p.inbox, p.out);
    let debug = ctx.config.debug || route.props.debug;
    let trusted = ctx.signer.is_trusted(&req.headers);
    // Passthrough (§4.1): trusted clients and `no_grip` routes get GRIP responses untouched.
    let grip_enabled = !route.props.no_grip && !trusted;
    let cors = (ctx.config.auto_cross_origin || route.props.aco)
        .then(|| CorsRequest::from_headers(&req.headers));
    // JSON-P (§8.2): only with auto cross-origin, only for GET.
    let parsed = match &cors {
        Some(_) if req.method == "GET" => jsonp::parse(&route.props.jsonp, &req.path),
        _ => Ok(None),
    };
    let (jsonp, rewrite) = match parsed {
        Ok(Some((j, r))) => (Some(j), Some(r)),
        Ok(None) => (None, None),
        Err(text) => {
            let mut answer = Generated::text(400, text);
            if let Some(cors) = &cors {
                cors.apply(&mut answer.headers);
            }
            forward::send_generated(answer, &req.method, inbox, out, p.log).await;
            return;
        }
    };
    let method = rewrite.as_ref().map_or(req.method.as_str(), |r| &r.method);
    let (host, port) = match route.props.as_host.as_deref().and_then(split_host_port) {
        Some(as_host) => as_host,
        None => (req.host.clone(), req.port),
    };
    let mut path = route.rewrite_path(rewrite.as_ref().map_or(&req.path, |r| &r.path));
    if !path.starts_with('/') && path != "*" {
        path.insert(0, '/');
    }
    let headers = forward_headers(
        &req.headers,
        &ForwardParams {
            proxy: &ctx.config,
            route_headers: &route.props.headers,
            orig_headers: route.props.orig_headers,
            secure: req.secure,
            peer_addr: &req.peer_addr,
            trusted,
        },
    );
    let mut headers = headers;
    if let Some(r) = &rewrite {
        for h in &r.headers {
            headers.retain(|o| !o.is(&h.0));
            headers.push(h.clone());
        }
    }
    if grip_enabled {
        headers.retain(|h| !h.is("Grip-Sig") && !h.is("Grip-Feature"));
        for (channel, id) in &extra.grip_last {
            headers.push(holdfast_proto::internal::Header::new(
                "Grip-Last",
                format!("{channel}; last-id={id}"),
            ));
        }
        headers.extend(ctx.signer.grip_headers(&route.props));
    }
    let fixed_body = rewrite.as_ref().and_then(|r| r.body.clone());
    let length = match &fixed_body {
        Some(b) => BodyLength::Known(b.len() as u64),
        None => body_length(&req.headers, head.body.len(), head.more),
    };

    for target in &route.targets {
        p.log.target = Some(target.kind.to_string());
        match &target.kind {
            TargetKind::Test => {
                // Boxed, as the GRIP branch below: rare paths whose state would otherwise
                // make every proxied request's task future kilobytes larger (copied on spawn
                // and on completion).
                Box::pin(serve_test(p, &path, grip_enabled, debug, cors, jsonp)).await;
                return;
            }
            TargetKind::Zhttp(_) | TargetKind::ZhttpReq(_) => {
                tracing::warn!(
                    "target {} is not supported by Holdfast yet; trying the next one",
                    target.kind
                );
            }
            TargetKind::Host {
                host: connect_host,
                port: connect_port,
            } => {
                let plan = plan_target(&host, port, target, connect_host, *connect_port);
                let attempt = forward::Attempt {
                    method,
                    path: &path,
                    headers: &headers,
                    length,
                    plan: &plan,
                };
                let fixed = fixed_body.clone();
                match forward::exchange_with_body(&ctx.client, &attempt, fixed, inbox, out).await {
                    Ok(exchange) => {
                        let headers = exchange.headers();
                        if grip_enabled && holdfast_proto::grip::is_grip_response(&headers) {
                            let s = p.grip(debug, cors, jsonp);
                            Box::pin(grip_flow::accept_exchange(s, exchange)).await;
                        } else if let Some(jsonp) = &jsonp {
                            let answer = match Box::pin(exchange.buffer(jsonp::MAX_BODY)).await {
                                Ok(b) => jsonp::wrap_proxied(
                                    jsonp, b.code, &b.reason, &b.headers, &b.body,
                                ),
                                Err(err) => {
                                    tracing::debug!("stream {}: {err:?}", head.id);
                                    None
                                }
                            }
                            .unwrap_or_else(|| Generated::text(500, jsonp::NOT_ENCODABLE));
                            forward::send_generated(answer, &req.method, inbox, out, p.log).await;
                        } else {
                            forward::stream_response_with(
                                exchange,
                                &req.method,
                                inbox,
                                out,
                                p.log,
                                cors.as_ref(),
                            )
                            .await;
                        }
                        return;
                    }
                    Err(err) if err.may_try_next_target() => {
                        tracing::debug!("stream {}: {err}; trying the next target", head.id);
                    }
                    Err(err) => {
                        tracing::debug!("stream {}: {err}", head.id);
                        let answer = match err.fault() {
                            Fault::Client => Generated::text(400, INVALID_REQUEST),
                            Fault::Backend | Fault::Cancelled => Generated::text(502, PROXY_ERROR),
                        };
                        forward::send_generated(answer, &req.method, inbox, out, p.log).await;
                        return;
                    }
                }
            }
        }
    }

    let body = if debug {
        let tried: Vec<String> = route.targets.iter().map(|t| t.kind.to_string()).collect();
        response::connect_failed_debug(&tried)
    } else {
        PROXY_ERROR.to_string()
    };
    forward::send_generated(Generated::text(502, body), &req.method, inbox, out, p.log).await;
}

/// The built-in test target: its `/response` and `/stream` answers are GRIP instructions and
/// go through the GRIP path like any origin's.
async fn serve_test(
    p: &mut RouteSession<'_>,
    path: &str,
    grip_enabled: bool,
    debug: bool,
    cors: Option<CorsRequest>,
    jsonp: Option<Jsonp>,
) {
    let answer = match read_limited(p.inbox, p.out, test_target::MAX_REQUEST_BODY).await {
        Ok(LimitedBody::Complete(_)) => test_target::respond(
            &test_target::test_path(path, p.route.path_beg.as_deref()),
            path,
        ),
        Ok(LimitedBody::TooLarge) => Generated::text(400, test_target::TOO_LARGE),
        Err(_) => return,
    };
    if grip_enabled && holdfast_proto::grip::is_grip_response(&answer.headers) {
        let origin = forward::Buffered {
            code: answer.code,
            reason: answer.reason,
            headers: answer.headers,
            body: answer.body,
        };
        grip_flow::accept(p.grip(debug, cors, jsonp), origin).await;
        return;
    }
    let mut answer = answer;
    if let Some(cors) = &cors {
        cors.apply(&mut answer.headers);
    }
    forward::send_generated(answer, &p.req.method, p.inbox, p.out, p.log).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_proto::config::{Config, Overrides};
    use holdfast_proto::internal::Header;
    use holdfast_proto::routes::Target;

    fn target() -> Target {
        Target::new(TargetKind::Host {
            host: "10.0.0.5".into(),
            port: 8080,
        })
    }

    #[test]
    fn plan_uses_request_host_unless_overridden() {
        let plan = plan_target("example.com", Some(8000), &target(), "10.0.0.5", 8080);
        assert_eq!(plan.host_header, "example.com:8000");
        assert_eq!(plan.key.to_string(), "10.0.0.5:8080");
        assert!(plan.key.tls.is_none());

        let mut t = target();
        t.host = Some("api.internal".into());
        t.ssl = true;
        let plan = plan_target("example.com", Some(8000), &t, "10.0.0.5", 8080);
        assert_eq!(plan.host_header, "api.internal");
        assert_eq!(
            plan.key.tls,
            Some(TlsKey {
                server_name: "api.internal".into(),
                insecure: false
            })
        );

        t.trust_connect_host = true;
        t.insecure = true;
        let plan = plan_target("example.com", None, &t, "10.0.0.5", 8080);
        assert_eq!(
            plan.key.tls,
            Some(TlsKey {
                server_name: "10.0.0.5".into(),
                insecure: true
            })
        );
    }

    #[test]
    fn pushpin_route_header_selects_by_id_only_when_enabled() {
        let (table, _) = RouteTable::parse_lines(["example.com 127.0.0.1:1"]);
        let mut config = Config::builtin(&Overrides::default()).proxy;
        let req = ClientRequest {
            method: "GET".into(),
            secure: false,
            host: "example.com".into(),
            port: None,
            path: "/".into(),
            headers: vec![Header::new("Pushpin-Route", "nope")],
            peer_addr: "1.1.1.1".into(),
        };
        assert!(select_route(&table, &req, &config).is_some());
        config.accept_pushpin_route = true;
        assert!(
            select_route(&table, &req, &config).is_none(),
            "unknown id: no fallback"
        );
        let other = ClientRequest {
            host: "other.com".into(),
            headers: Vec::new(),
            ..req
        };
        assert!(select_route(&table, &other, &config).is_none());
    }
}
