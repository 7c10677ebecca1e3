//! The `routes` file (reference §7.3): syntax and route selection.
//!
//! Each non-empty line is a route: a *condition section* followed by one or more *target
//! sections*, separated by spaces or tabs. Inside a section, comma-separated items: the first item
//! is the section *value*, the rest are *properties* (`name` or `name=value`). If the first item
//! contains `=` the value is empty and every item is a property. Double quotes may wrap any part of
//! an item (escapes `\\` and `\"` only), so values can hold spaces, commas and `#`. `#` outside
//! quotes starts a comment.
//!
//! The tokenizer is a port of Pushpin's `RoutesFile::LineParser` (1.36 and HEAD are identical),
//! with one widening: tabs separate sections too (Pushpin treats a tab as part of a value, which
//! makes such a line fail with "no target"). Lines that fail are skipped and reported as
//! [`RouteWarning`]s, exactly as Pushpin logs them and goes on.
//!
//! Where Holdfast deliberately differs from Pushpin (all documented at the item concerned):
//! selection order is a strict ranking instead of Pushpin's order-dependent comparison, host
//! matching ignores ASCII case, a rewritten empty path becomes `/`, and a route with neither a
//! domain nor an `id` is rejected instead of being reachable only through its automatic id.

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
    /// Encoded request path (with query). Only the part before `?` is compared with `path_beg`,
    /// as Pushpin does.
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
    /// `path_beg=` condition (never empty).
    pub path_beg: Option<String>,
    /// Everything else on the condition section.
    pub props: RouteProps,
    /// Targets, tried in order.
    pub targets: Vec<Target>,
    /// 1-based line number in the file (or index of the `--route` argument), for messages.
    pub line: usize,
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
    /// `sig_key=` (raw config string, `base64:`/`file:` not yet resolved; relative `file:` paths
    /// are relative to the routes file).
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
    /// `header=Name:value`, in file order (empty value = remove). Leading spaces of the value are
    /// trimmed, as Pushpin does.
    pub headers: Vec<(String, String)>,
    /// `no_grip`.
    pub no_grip: bool,
    /// `log_level=`.
    pub log_level: Option<u8>,
    /// `jsonp_*` options (reference §8.2).
    pub jsonp: JsonpConfig,
    /// `sockjs=`: SockJS endpoint path under this route.
    pub sockjs: Option<String>,
    /// `sockjs_as_path=`.
    pub sockjs_as_path: Option<String>,
}

/// JSON-P settings of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonpConfig {
    /// `jsonp_mode=basic|extended` (default extended).
    pub mode: JsonpMode,
    /// `jsonp_cb=`: query parameter naming the callback (default `callback`).
    pub callback_param: String,
    /// `jsonp_body=`: query parameter carrying the request body.
    pub body_param: Option<String>,
    /// `jsonp_defcb=`: callback used when the request names none.
    pub default_callback: Option<String>,
    /// `jsonp_defmethod=` (default `POST` in basic mode, `GET` in extended mode).
    pub default_method: String,
}

impl Default for JsonpConfig {
    fn default() -> Self {
        Self {
            mode: JsonpMode::Extended,
            callback_param: "callback".into(),
            body_param: None,
            default_callback: None,
            default_method: "GET".into(),
        }
    }
}

/// `jsonp_mode=` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonpMode {
    /// The response body is wrapped as is.
    Basic,
    /// The response is wrapped with its code and headers (Pushpin's default).
    Extended,
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
    /// `sub=` implicit subscriptions, in file order (empty values skipped).
    pub subs: Vec<String>,
    /// `over_http`.
    pub over_http: bool,
    /// `one_event`.
    pub one_event: bool,
    /// `ipc_file_mode=<octal>` for zhttp targets.
    pub ipc_file_mode: Option<u32>,
    /// `client_cert=<file>`: client TLS certificate for the target.
    pub client_cert: Option<String>,
    /// `client_key=<file>`: client TLS key for the target.
    pub client_key: Option<String>,
}

impl Target {
    /// A target of `kind` with every property off.
    pub fn new(kind: TargetKind) -> Self {
        Self {
            kind,
            ssl: false,
            untrusted: false,
            trust_connect_host: false,
            insecure: false,
            host: None,
            subs: Vec::new(),
            over_http: false,
            one_event: false,
            ipc_file_mode: None,
            client_cert: None,
            client_key: None,
        }
    }
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

/// A line of the routes file that was skipped, or a property that was ignored.
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
        let mut routes: Vec<Route> = Vec::new();
        let mut warnings = Vec::new();
        for (index, text) in lines.into_iter().enumerate() {
            let line = index + 1;
            let mut warn = |message: String| warnings.push(RouteWarning { line, message });
            let route = match parse_route(text, line, &mut warn) {
                Ok(Some(route)) => route,
                Ok(None) => continue,
                Err(message) => {
                    warn(message);
                    continue;
                }
            };
            if let Some(dup) = routes.iter().find(|r| r.same_condition(&route)) {
                warn(format!(
                    "skipping duplicate condition (same as line {})",
                    dup.line
                ));
                continue;
            }
            routes.push(route);
        }
        (Self { routes }, warnings)
    }

    /// All routes in file order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no line produced a route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Picks the route for a request (reference §7.3 "Selection").
    ///
    /// Candidates are the routes whose domain equals the host (ASCII case-insensitively: Pushpin
    /// compares against the host as Qt's URL parser returns it, which is lower-cased, so a
    /// lower-case domain behaves identically), or the `*` routes when no domain equals the host.
    /// There is no fall-back to `*` when domain routes exist but none matches, as in Pushpin.
    ///
    /// Among the candidates that match (proto, ssl, path_beg) the best is ranked strictly: a
    /// route with `proto` beats one without; then the longer `path_beg`; then a route with `ssl`
    /// beats one without; then file order. (Pushpin's comparison is not transitive: an `ssl`
    /// route with a shorter `path_beg` can win or lose depending on line order. The ranking here
    /// is what its documentation describes.)
    pub fn select(&self, req: &RouteRequest<'_>) -> Option<&Route> {
        let path = path_part(req.path);
        let exact = self.routes.iter().any(|r| r.is_domain(req.host));
        let mut best: Option<&Route> = None;
        for route in &self.routes {
            let candidate = if exact {
                route.is_domain(req.host)
            } else {
                route.domain.is_none()
            };
            if !candidate || !route.matches(req.websocket, req.secure, path) {
                continue;
            }
            if best.is_none_or(|b| route.rank() > b.rank()) {
                best = Some(route);
            }
        }
        best
    }

    /// Looks a route up by id (`None` if unknown or shared by several routes); the request path
    /// (with or without query) must still match the route's `path_beg`.
    ///
    /// The id compared is [`Route::log_id`]: the explicit `id=`, or the automatic id for routes
    /// without one, because Pushpin registers automatic ids for lookup too (a `Pushpin-Route`
    /// header or a handler retry can name them).
    pub fn by_id(&self, id: &str, path: &str) -> Option<&Route> {
        let mut found = self.routes.iter().filter(|r| r.has_id(id));
        let route = found.next()?;
        if found.next().is_some() {
            return None;
        }
        route.matches_path(path_part(path)).then_some(route)
    }

    /// The distinct `zhttp/` and `zhttpreq/` targets, in file order (each needs its own sockets).
    pub fn zhttp_targets(&self) -> Vec<&TargetKind> {
        let mut out: Vec<&TargetKind> = Vec::new();
        for target in self.routes.iter().flat_map(|r| &r.targets) {
            let custom = matches!(target.kind, TargetKind::Zhttp(_) | TargetKind::ZhttpReq(_));
            if custom && !out.contains(&&target.kind) {
                out.push(&target.kind);
            }
        }
        out
    }
}

impl Route {
    /// The id used in logs and stats: the explicit id, or the automatic one
    /// (`<domain|*>,<http|ws|*>,<ssl-flag|*>,<path_beg|*>`, ssl flag inverted as Pushpin does:
    /// `ssl=no` routes say `ssl` and `ssl=yes` routes say `no-ssl`; reference §12 item 4).
    pub fn log_id(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        format!(
            "{},{},{},{}",
            match self.domain.as_deref() {
                None | Some("") => "*",
                Some(domain) => domain,
            },
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

    /// Whether stats for this route are reported separately (it has an explicit id).
    pub fn separate_stats(&self) -> bool {
        self.id.is_some()
    }

    /// Applies `path_rem` and `replace_beg` to a request path (with query; the query is kept).
    ///
    /// `path_rem=N` removes the first N bytes of the path; `replace_beg=p` removes the `path_beg`
    /// prefix instead and prepends `p` (it wins over `path_rem`, as in Pushpin). An empty result
    /// becomes `/`, because a request target cannot be empty.
    pub fn rewrite_path(&self, path: &str) -> String {
        let (path, query) = match path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path, None),
        };
        let remove = match &self.props.replace_beg {
            Some(_) => self.path_beg.as_deref().map_or(0, str::len),
            None => self.props.path_rem.unwrap_or(0),
        };
        let mut out = self.props.replace_beg.clone().unwrap_or_default();
        out.push_str(skip_bytes(path, remove));
        if out.is_empty() {
            out.push('/');
        }
        if let Some(query) = query {
            out.push('?');
            out.push_str(query);
        }
        out
    }

    fn is_domain(&self, host: &str) -> bool {
        matches!(&self.domain, Some(d) if !d.is_empty() && d.eq_ignore_ascii_case(host))
    }

    fn has_id(&self, id: &str) -> bool {
        match &self.id {
            Some(own) => own == id,
            None => self.log_id() == id,
        }
    }

    fn matches(&self, websocket: bool, secure: bool, path: &str) -> bool {
        let proto_ok = match self.proto {
            None => true,
            Some(Proto::Ws) => websocket,
            Some(Proto::Http) => !websocket,
        };
        proto_ok && self.ssl.is_none_or(|ssl| ssl == secure) && self.matches_path(path)
    }

    fn matches_path(&self, path: &str) -> bool {
        self.path_beg
            .as_deref()
            .is_none_or(|beg| path.starts_with(beg))
    }

    /// Specificity, compared lexicographically: proto, then path_beg length, then ssl.
    fn rank(&self) -> (bool, usize, bool) {
        (
            self.proto.is_some(),
            self.path_beg.as_deref().map_or(0, str::len),
            self.ssl.is_some(),
        )
    }

    /// Same domain and same match conditions: the later one could never be selected.
    fn same_condition(&self, other: &Route) -> bool {
        let domain_eq = match (&self.domain, &other.domain) {
            (None, None) => true,
            // Id-only routes are never selected by condition, so they cannot shadow each other.
            (Some(a), Some(b)) => !a.is_empty() && a.eq_ignore_ascii_case(b),
            _ => false,
        };
        domain_eq
            && self.proto == other.proto
            && self.ssl == other.ssl
            && self.path_beg == other.path_beg
    }
}

/// The path without its query.
fn path_part(path: &str) -> &str {
    path.split_once('?').map_or(path, |(p, _)| p)
}

/// `s` without its first `n` bytes (moved forward to a character boundary if needed).
fn skip_bytes(s: &str, n: usize) -> &str {
    let mut n = n.min(s.len());
    while !s.is_char_boundary(n) {
        n += 1;
    }
    &s[n..]
}

/// One section of a route line: its value and its properties in file order.
#[derive(Debug, Default, PartialEq)]
struct Section {
    value: String,
    props: Vec<(String, String)>,
}

impl Section {
    /// The last value given for `name` (later occurrences win, as in Pushpin).
    fn get(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.props.iter().any(|(n, _)| n == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.props
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn unknown<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.props
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(move |n| !known.contains(n))
    }
}

const CONDITION_PROPS: &[&str] = &[
    "proto",
    "ssl",
    "path_beg",
    "id",
    "sig_iss",
    "sig_key",
    "prefix",
    "orig_headers",
    "as_host",
    "path_rem",
    "replace_beg",
    "debug",
    "aco",
    "jsonp_mode",
    "jsonp_cb",
    "jsonp_body",
    "jsonp_defcb",
    "jsonp_defmethod",
    "session",
    "sockjs",
    "sockjs_as_path",
    "header",
    "no_grip",
    "log_level",
];

const TARGET_PROPS: &[&str] = &[
    "ssl",
    "untrusted",
    "trust_connect_host",
    "insecure",
    "host",
    "sub",
    "over_http",
    "one_event",
    "ipc_file_mode",
    "client_cert",
    "client_key",
];

fn is_separator(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits a line into sections (Pushpin's `RoutesFile::parseLine`). An empty result means a
/// blank or comment-only line.
fn parse_sections(line: &str) -> Result<Vec<Section>, String> {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut sections = Vec::new();
    loop {
        while i < bytes.len() && is_separator(bytes[i]) {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'#' {
            return Ok(sections);
        }
        let mut section = Section::default();
        let mut reading_value = true;
        loop {
            let start = i;
            let (part, end) = read_part(line, i)?;
            i = end;
            if reading_value {
                reading_value = false;
                if part.contains('=') {
                    // No value: the first item is re-read as a property.
                    i = start;
                    continue;
                }
                section.value = part;
            } else {
                if part.is_empty() {
                    return Err("expecting prop".into());
                }
                let (name, value) = match part.split_once('=') {
                    Some((name, value)) => (name.to_string(), value.to_string()),
                    None => (part, String::new()),
                };
                if name.is_empty() {
                    return Err("empty prop name".into());
                }
                section.props.push((name, value));
            }
            if bytes.get(i) == Some(&b',') {
                i += 1;
            } else {
                break;
            }
        }
        sections.push(section);
    }
}

/// Reads one item starting at `i`: up to an unquoted `,`, space, tab, `#` or the end. Returns the
/// decoded item and the index of the delimiter.
fn read_part(line: &str, mut i: usize) -> Result<(String, usize), String> {
    let bytes = line.as_bytes();
    let mut part = String::new();
    loop {
        let delim = (i..bytes.len())
            .find(|&j| matches!(bytes[j], b'"' | b',' | b'#') || is_separator(bytes[j]));
        match delim {
            Some(j) if bytes[j] == b'"' => {
                part.push_str(&line[i..j]);
                i = read_quoted(line, j + 1, &mut part)?;
            }
            _ => {
                let end = delim.unwrap_or(bytes.len());
                part.push_str(&line[i..end]);
                return Ok((part, end));
            }
        }
    }
}

/// Decodes a quoted run starting just after the opening quote; returns the index after the
/// closing quote.
fn read_quoted(line: &str, mut i: usize, out: &mut String) -> Result<usize, String> {
    let bytes = line.as_bytes();
    loop {
        let run_end = (i..bytes.len()).find(|&j| matches!(bytes[j], b'"' | b'\\'));
        let Some(j) = run_end else {
            return Err("unterminated quoted string".into());
        };
        out.push_str(&line[i..j]);
        if bytes[j] == b'"' {
            return Ok(j + 1);
        }
        match bytes.get(j + 1) {
            Some(b'\\') => out.push('\\'),
            Some(b'"') => out.push('"'),
            Some(_) => {
                return Err(
                    "invalid escape in quoted string (only \\\\ and \\\" are allowed)".into(),
                )
            }
            None => return Err("unterminated quoted string".into()),
        }
        i = j + 2;
    }
}

/// Parses one line into a route. `Ok(None)` for blank and comment lines; `Err` rejects the line;
/// `warn` receives non-fatal notes (the line is kept).
fn parse_route(
    text: &str,
    line: usize,
    warn: &mut dyn FnMut(String),
) -> Result<Option<Route>, String> {
    let sections = parse_sections(text)?;
    let Some((cond, target_sections)) = sections.split_first() else {
        return Ok(None);
    };
    if target_sections.is_empty() {
        return Err("must specify condition and at least one target".into());
    }

    let domain = match cond.value.as_str() {
        "*" => None,
        d => Some(d.to_string()),
    };
    if let Some(d) = domain.as_deref() {
        if d.contains('*') {
            warn(format!(
                "domain '{d}' contains '*': partial wildcards are not supported, it only matches that literal host"
            ));
        } else if d.contains(':') {
            warn(format!(
                "domain '{d}' contains ':': the request host is compared without its port, so this never matches"
            ));
        }
    }
    let proto = match cond.get("proto") {
        None => None,
        Some("http") => Some(Proto::Http),
        Some("ws") => Some(Proto::Ws),
        Some(_) => return Err("proto must be set to 'http' or 'ws'".into()),
    };
    let ssl = match cond.get("ssl") {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(_) => return Err("ssl must be set to 'yes' or 'no'".into()),
    };
    let path_beg = match cond.get("path_beg") {
        None => None,
        Some("") => return Err("path_beg cannot be empty".into()),
        Some(p) => Some(p.to_string()),
    };
    let id = match cond.get("id") {
        Some("") => {
            warn("empty id ignored".into());
            None
        }
        other => other.map(str::to_string),
    };
    if domain.as_deref() == Some("") && id.is_none() {
        return Err(
            "condition has no domain or id (an empty domain makes an id-only route; add id=<name>)"
                .into(),
        );
    }
    let props = parse_condition_props(cond)?;
    for name in cond.unknown(CONDITION_PROPS) {
        warn(format!("unknown condition property '{name}' (ignored)"));
    }

    let mut targets = Vec::with_capacity(target_sections.len());
    for section in target_sections {
        targets.push(parse_target(section, warn)?);
    }

    Ok(Some(Route {
        id,
        domain,
        proto,
        ssl,
        path_beg,
        props,
        targets,
        line,
    }))
}

fn parse_condition_props(cond: &Section) -> Result<RouteProps, String> {
    let owned = |name: &str| cond.get(name).map(str::to_string);
    let mut jsonp = JsonpConfig::default();
    match cond.get("jsonp_mode") {
        None | Some("extended") => {}
        Some("basic") => {
            jsonp.mode = JsonpMode::Basic;
            jsonp.default_method = "POST".into();
        }
        Some(_) => return Err("jsonp_mode must be set to 'basic' or 'extended'".into()),
    }
    if let Some(cb) = cond.get("jsonp_cb") {
        jsonp.callback_param = cb.to_string();
    }
    jsonp.body_param = owned("jsonp_body");
    jsonp.default_callback = owned("jsonp_defcb");
    if let Some(method) = cond.get("jsonp_defmethod") {
        jsonp.default_method = method.to_string();
    }

    let path_rem = match cond.get("path_rem") {
        None => None,
        Some(n) => Some(n.trim().parse::<usize>().map_err(|_| {
            format!("path_rem must be a number of characters to remove, not '{n}'")
        })?),
    };
    let log_level = match cond.get("log_level") {
        None => None,
        Some(n) => Some(
            n.trim()
                .parse::<u8>()
                .map_err(|_| format!("log_level must be a number from 0 to 4, not '{n}'"))?,
        ),
    };
    let mut headers = Vec::new();
    for header in cond.all("header") {
        match header.split_once(':') {
            Some((name, value)) if !name.is_empty() => {
                headers.push((name.to_string(), value.trim_start_matches(' ').to_string()))
            }
            _ => return Err("header must use format 'name:value'".into()),
        }
    }

    Ok(RouteProps {
        prefix: owned("prefix").unwrap_or_default(),
        sig_iss: owned("sig_iss"),
        sig_key: owned("sig_key"),
        orig_headers: cond.has("orig_headers"),
        as_host: owned("as_host"),
        path_rem,
        replace_beg: owned("replace_beg"),
        debug: cond.has("debug"),
        aco: cond.has("aco"),
        session: cond.has("session"),
        headers,
        no_grip: cond.has("no_grip"),
        log_level,
        jsonp,
        sockjs: owned("sockjs"),
        sockjs_as_path: owned("sockjs_as_path"),
    })
}

fn parse_target(section: &Section, warn: &mut dyn FnMut(String)) -> Result<Target, String> {
    let value = section.value.as_str();
    let kind = if value == "test" {
        TargetKind::Test
    } else if let Some(spec) = value.strip_prefix("zhttp/") {
        if spec.is_empty() {
            return Err("target bad format (zhttp/ needs a spec)".into());
        }
        TargetKind::Zhttp(spec.to_string())
    } else if let Some(spec) = value.strip_prefix("zhttpreq/") {
        if spec.is_empty() {
            return Err("target bad format (zhttpreq/ needs a spec)".into());
        }
        TargetKind::ZhttpReq(spec.to_string())
    } else {
        parse_host_port(value)?
    };

    let mut target = Target::new(kind);
    target.ssl = section.has("ssl");
    target.untrusted = section.has("untrusted");
    target.trust_connect_host = section.has("trust_connect_host");
    target.insecure = section.has("insecure");
    target.host = section.get("host").map(str::to_string);
    target.subs = section
        .all("sub")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    target.over_http = section.has("over_http");
    target.one_event = section.has("one_event");
    if let Some(mode) = section.get("ipc_file_mode") {
        match u32::from_str_radix(mode.trim(), 8) {
            Ok(mode) => target.ipc_file_mode = Some(mode),
            Err(_) => warn(format!(
                "ipc_file_mode must be an octal number such as 777, not '{mode}' (ignored)"
            )),
        }
    }
    target.client_cert = section.get("client_cert").map(str::to_string);
    target.client_key = section.get("client_key").map(str::to_string);
    for name in section.unknown(TARGET_PROPS) {
        warn(format!("unknown target property '{name}' (ignored)"));
    }
    Ok(target)
}

/// `host:port` or `[v6addr]:port`.
fn parse_host_port(value: &str) -> Result<TargetKind, String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err("target bad format (missing ']' after IPv6 address)".into());
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err("target bad format (expected [address]:port)".into());
        };
        (host, port)
    } else {
        match value.split_once(':') {
            Some(pair) => pair,
            None => return Err("target bad format (expected host:port)".into()),
        }
    };
    if host.is_empty() {
        return Err("target bad format (empty host)".into());
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => Ok(TargetKind::Host {
            host: host.to_string(),
            port,
        }),
        _ => Err(format!(
            "target invalid port '{port}' (IPv6 addresses need brackets: [::1]:80)"
        )),
    }
}

#[cfg(test)]
mod tests;
