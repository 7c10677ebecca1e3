//! The `routes` file (reference §7.3): syntax and route selection.
//!
//! SKELETON: the types and signatures below are the API the handler codes against. The parser is
//! being completed (full quoting, every property, duplicate detection, selection order).

use std::fmt;

/// A parsed routes file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// What the selection looks at in a request.
#[derive(Clone, Copy, Debug)]
pub struct RouteRequest<'a> {
    /// Host part of the request URI, without port.
    pub host: &'a str,
    /// Encoded request path (with query).
    pub path: &'a str,
    /// The request is a WebSocket handshake.
    pub websocket: bool,
    /// The client connection is TLS (or trusted as such).
    pub secure: bool,
}

/// One route: a condition and one or more targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Explicit `id=`, if any.
    pub id: Option<String>,
    /// Domain condition: `None` for `*`, `Some("")` for an id-only route.
    pub domain: Option<String>,
    /// `proto=` condition.
    pub proto: Option<Proto>,
    /// `ssl=` condition.
    pub ssl: Option<bool>,
    /// `path_beg=` condition.
    pub path_beg: Option<String>,
    /// Everything else on the condition section.
    pub props: RouteProps,
    /// Targets, tried in order.
    pub targets: Vec<Target>,
}

/// `proto=` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// Plain HTTP only.
    Http,
    /// WebSocket handshakes only.
    Ws,
}

/// Condition-section properties other than the match conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteProps {
    /// `prefix=`: channel prefix.
    pub prefix: String,
    /// `sig_iss=`.
    pub sig_iss: Option<String>,
    /// `sig_key=` (raw config string, `base64:`/`file:` not yet resolved).
    pub sig_key: Option<String>,
    /// `orig_headers`.
    pub orig_headers: bool,
    /// `as_host=`.
    pub as_host: Option<String>,
    /// `path_rem=`.
    pub path_rem: Option<usize>,
    /// `replace_beg=`.
    pub replace_beg: Option<String>,
    /// `debug`.
    pub debug: bool,
    /// `aco`.
    pub aco: bool,
    /// `session`.
    pub session: bool,
    /// `header=Name:value`, in order (empty value = remove).
    pub headers: Vec<(String, String)>,
    /// `no_grip`.
    pub no_grip: bool,
    /// `log_level=`.
    pub log_level: Option<u8>,
}

/// Where a route sends requests.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// What kind of target.
    pub kind: TargetKind,
    /// `ssl`: https/wss to the target.
    pub ssl: bool,
    /// `untrusted`.
    pub untrusted: bool,
    /// `trust_connect_host`.
    pub trust_connect_host: bool,
    /// `insecure`: do not verify the target's certificate.
    pub insecure: bool,
    /// `host=`: request host override.
    pub host: Option<String>,
    /// `sub=` implicit subscriptions.
    pub subs: Vec<String>,
    /// `over_http`.
    pub over_http: bool,
    /// `one_event`.
    pub one_event: bool,
}

/// Target kinds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// `host:port` or `[v6]:port`.
    Host {
        /// Host name or address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// The built-in test backend.
    Test,
    /// `zhttp/<spec>`.
    Zhttp(String),
    /// `zhttpreq/<spec>`.
    ZhttpReq(String),
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Self::Host { host, port } => write!(f, "{host}:{port}"),
            Self::Test => f.write_str("test"),
            Self::Zhttp(spec) => write!(f, "zhttp/{spec}"),
            Self::ZhttpReq(spec) => write!(f, "zhttpreq/{spec}"),
        }
    }
}

/// A line of the routes file that was skipped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("routes line {line}: {message}")]
pub struct RouteWarning {
    /// 1-based line number (or index of the `--route` argument).
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl RouteTable {
    /// Parses a routes file. Lines that fail to parse are skipped and reported.
    pub fn parse(text: &str) -> (Self, Vec<RouteWarning>) {
        Self::parse_lines(text.lines())
    }

    /// Parses route lines (e.g. repeated `--route` arguments).
    pub fn parse_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> (Self, Vec<RouteWarning>) {
        let mut routes = Vec::new();
        let mut warnings = Vec::new();
        for (index, line) in lines.into_iter().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut sections = line.split_whitespace();
            let cond = sections.next().unwrap_or("");
            let domain = match cond.split(',').next().unwrap_or("") {
                "*" => None,
                d => Some(d.to_string()),
            };
            let targets: Vec<Target> = sections
                .filter_map(|t| {
                    let value = t.split(',').next()?;
                    let kind = if value == "test" {
                        TargetKind::Test
                    } else {
                        let (host, port) = value.rsplit_once(':')?;
                        TargetKind::Host {
                            host: host.to_string(),
                            port: port.parse().ok()?,
                        }
                    };
                    Some(Target {
                        kind,
                        ssl: false,
                        untrusted: false,
                        trust_connect_host: false,
                        insecure: false,
                        host: None,
                        subs: Vec::new(),
                        over_http: t.contains(",over_http"),
                        one_event: false,
                    })
                })
                .collect();
            if targets.is_empty() {
                warnings.push(RouteWarning {
                    line: index + 1,
                    message: "no target".into(),
                });
                continue;
            }
            routes.push(Route {
                id: None,
                domain,
                proto: None,
                ssl: None,
                path_beg: None,
                props: RouteProps::default(),
                targets,
            });
        }
        (Self { routes }, warnings)
    }

    /// All routes in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Picks the route for a request (reference §7.3 "Selection").
    pub fn select(&self, req: &RouteRequest<'_>) -> Option<&Route> {
        let exact: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| r.domain.as_deref() == Some(req.host))
            .collect();
        let candidates = if exact.is_empty() {
            self.routes.iter().filter(|r| r.domain.is_none()).collect()
        } else {
            exact
        };
        candidates.into_iter().next()
    }

    /// Looks a route up by its explicit id (`None` if unknown or shared by several routes); the
    /// request path must still match the route's `path_beg`.
    pub fn by_id(&self, id: &str, path: &str) -> Option<&Route> {
        let mut found = self.routes.iter().filter(|r| r.id.as_deref() == Some(id));
        let route = found.next()?;
        if found.next().is_some() {
            return None;
        }
        match &route.path_beg {
            Some(p) if !path.starts_with(p.as_str()) => None,
            _ => Some(route),
        }
    }
}

impl Route {
    /// The id used in logs and stats: the explicit id, or the automatic one
    /// (`<domain|*>,<http|ws|*>,<ssl-flag|*>,<path_beg|*>`, ssl flag inverted as Pushpin does).
    pub fn log_id(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        format!(
            "{},{},{},{}",
            self.domain.as_deref().unwrap_or("*"),
            match self.proto {
                Some(Proto::Http) => "http",
                Some(Proto::Ws) => "ws",
                None => "*",
            },
            match self.ssl {
                Some(false) => "ssl",
                Some(true) => "no-ssl",
                None => "*",
            },
            self.path_beg.as_deref().unwrap_or("*"),
        )
    }

    /// Applies `path_rem` and `replace_beg` to a request path (with query).
    pub fn rewrite_path(&self, path: &str) -> String {
        path.to_string()
    }
}
