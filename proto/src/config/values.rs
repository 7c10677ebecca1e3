//! Typed config values and their parsers: listeners, log levels, `x_forwarded_for` rules,
//! service names, booleans, and the `tcp://` port offset. Every parser returns a message that
//! says what was expected, for [`super::ConfigError::InvalidValue`].

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A TCP listener address from `http_port`/`https_ports` (or `--port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Address and port to bind (address defaults to 0.0.0.0).
    pub addr: SocketAddr,
}

impl Listen {
    /// Parses `port`, `addr:port`, `*:port` or `[v6addr]:port`. The address must be an IP
    /// literal (Pushpin turns a host name into "any address" without saying so; Holdfast refuses
    /// it instead).
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("`{s}`: missing `]` after the IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("`{s}`: expected `[address]:port`"))?;
            (host, port)
        } else {
            match s.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => {
                    return Err(format!(
                        "`{s}`: write IPv6 addresses in brackets, e.g. `[::1]:7999`"
                    ))
                }
                Some((host, port)) => (host, port),
                None => ("", s),
            }
        };
        let ip = match host {
            "" | "*" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            h => h.parse::<IpAddr>().map_err(|_| {
                format!(
                    "`{s}`: `{h}` is not an IP address; use e.g. `127.0.0.1:7999` or just `7999`"
                )
            })?,
        };
        let port = parse_port(port).map_err(|m| format!("`{s}`: {m}"))?;
        Ok(Self {
            addr: SocketAddr::new(ip, port),
        })
    }
}

/// A port number from 1 to 65535.
fn parse_port(s: &str) -> Result<u16, String> {
    match s.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{s}` is not a port number (1-65535)")),
        Ok(port) => Ok(port),
    }
}

/// A Unix-socket listener from `local_ports`: `path[?mode=<octal>&user=<name>&group=<name>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalListen {
    /// Socket path (relative paths resolved against the config directory).
    pub path: PathBuf,
    /// `mode=`: file mode of the socket.
    pub mode: Option<u32>,
    /// `user=`: owner of the socket.
    pub user: Option<String>,
    /// `group=`: group of the socket.
    pub group: Option<String>,
}

impl LocalListen {
    /// Parses one `local_ports` item, resolving a relative path against `dir`.
    pub fn parse(s: &str, dir: &Path) -> Result<Self, String> {
        let (path, query) = match s.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (s, None),
        };
        if path.is_empty() {
            return Err(format!("`{s}`: empty socket path"));
        }
        let mut out = Self {
            path: join(dir, path),
            mode: None,
            user: None,
            group: None,
        };
        for param in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            match param.split_once('=') {
                Some(("mode", m)) => out.mode = Some(parse_octal(m)?),
                Some(("user", u)) if !u.is_empty() => out.user = Some(u.to_string()),
                Some(("group", g)) if !g.is_empty() => out.group = Some(g.to_string()),
                _ => {
                    return Err(format!(
                        "`{s}`: unknown parameter `{param}` (expected mode=<octal>, user=<name> or group=<name>)"
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Where a metrics endpoint (`prometheus_port`) listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsListen {
    /// `port` (any address) or `addr:port`.
    Tcp(SocketAddr),
    /// `ipc://<path>`: a Unix socket.
    Ipc(PathBuf),
}

impl MetricsListen {
    /// Parses a `prometheus_port` value. The port offset is not applied (as in Pushpin).
    pub fn parse(s: &str, dir: &Path) -> Result<Self, String> {
        match s.strip_prefix("ipc://") {
            Some("") => Err("`ipc://` needs a socket path".into()),
            Some(path) => Ok(Self::Ipc(join(dir, path))),
            None => Listen::parse(s).map(|l| Self::Tcp(l.addr)),
        }
    }
}

/// Log levels from `[runner] log_level` or `--loglevel`: `N` and/or `service:N` items
/// (0 error, 1 warn, 2 info, 3 debug, 4 and above trace).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLevels {
    /// Level for services not listed (2 when not given).
    pub default: u8,
    /// Per-service levels, keyed by canonical service name (see [`canonical_service`]), or any
    /// other name given (e.g. `runner`).
    pub services: BTreeMap<String, u8>,
}

impl Default for LogLevels {
    fn default() -> Self {
        Self {
            default: 2,
            services: BTreeMap::new(),
        }
    }
}

impl LogLevels {
    /// Parses list items (`["3", "proxy:4"]`).
    pub fn parse_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut out = Self::default();
        for item in items {
            let item = item.trim();
            if item.is_empty() {
                return Err(
                    "empty log level item; use `N` or `service:N`, e.g. `2,proxy:3`".into(),
                );
            }
            let level = |n: &str| {
                n.trim().parse::<u8>().map_err(|_| {
                    format!("`{item}`: log level must be a number from 0 (errors) to 4 (trace)")
                })
            };
            match item.split_once(':') {
                Some(("", _)) => return Err(format!("`{item}`: missing service name before `:`")),
                Some((service, n)) => {
                    let name = canonical_service(service.trim()).unwrap_or(service.trim());
                    out.services.insert(name.to_string(), level(n)?);
                }
                None => out.default = level(item)?,
            }
        }
        Ok(out)
    }

    /// The level for `service` (Pushpin or canonical name).
    pub fn for_service(&self, service: &str) -> u8 {
        let name = canonical_service(service).unwrap_or(service);
        self.services.get(name).copied().unwrap_or(self.default)
    }
}

impl FromStr for LogLevels {
    type Err = String;

    /// Parses a comma-separated list, as given to `--loglevel`.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse_items(s.split(','))
    }
}

/// The canonical name of a `[runner] services` entry: `connmgr` (alias `condure`), `proxy`
/// (alias `pushpin-proxy`), `handler` (alias `pushpin-handler`), `zurl`, `mongrel2`,
/// `m2adapter`. `None` for a name Pushpin does not know.
pub fn canonical_service(name: &str) -> Option<&'static str> {
    Some(match name {
        "connmgr" | "condure" => "connmgr",
        "proxy" | "pushpin-proxy" => "proxy",
        "handler" | "pushpin-handler" => "handler",
        "zurl" => "zurl",
        "mongrel2" => "mongrel2",
        "m2adapter" => "m2adapter",
        _ => return None,
    })
}

/// Parses `[runner] services` into canonical names, in order, without repeats.
pub(crate) fn parse_services(items: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let name = canonical_service(item).ok_or_else(|| {
            format!(
                "unknown service `{item}`; valid names are connmgr (or condure), proxy (or pushpin-proxy), handler (or pushpin-handler), zurl, mongrel2, m2adapter"
            )
        })?;
        if !out.iter().any(|s| s == name) {
            out.push(name.to_string());
        }
    }
    let has = |n: &str| out.iter().any(|s| s == n);
    if has("connmgr") && (has("mongrel2") || has("m2adapter")) {
        return Err(
            "connmgr (condure) cannot run together with mongrel2 or m2adapter; list only one of them"
                .into(),
        );
    }
    Ok(out)
}

/// An `x_forwarded_for` rule list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XffRule {
    /// `truncate:N`: keep only the last N existing values.
    pub truncate: Option<usize>,
    /// `append`: add the client address.
    pub append: bool,
}

impl XffRule {
    /// Parses list items (`["truncate:0", "append"]`); empty items are ignored.
    pub fn parse_items<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut out = Self::default();
        for item in items.into_iter().map(str::trim).filter(|i| !i.is_empty()) {
            if item == "append" {
                out.append = true;
            } else if let Some(n) = item.strip_prefix("truncate:") {
                out.truncate = Some(n.trim().parse().map_err(|_| {
                    format!(
                        "`{item}`: truncate needs a number of values to keep, e.g. `truncate:0`"
                    )
                })?);
            } else {
                return Err(format!(
                    "unknown rule `{item}`; use `truncate:N` and/or `append`, e.g. `truncate:0,append`"
                ));
            }
        }
        Ok(out)
    }
}

/// `stats_format` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatsFormat {
    /// `T` + tnetstring (the default).
    #[default]
    Tnetstring,
    /// `J` + JSON.
    Json,
}

/// A boolean. Pushpin's files use `true`/`false`; `yes`/`no`, `on`/`off` and `1`/`0` are also
/// accepted (Pushpin reads anything but `false`, `0` and empty as true, so a typo would silently
/// enable a feature there; here it is an error).
pub(crate) fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("`{s}` is not a boolean; use `true` or `false`")),
    }
}

/// A non-negative whole number that fits `T`.
pub(crate) fn parse_uint<T: TryFrom<u64>>(s: &str) -> Result<T, String> {
    let n: u64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a whole number; use digits only, e.g. `60`"))?;
    T::try_from(n).map_err(|_| format!("`{s}` is too large for this setting"))
}

/// An optional limit where Pushpin uses a negative number for "unlimited": `-1` (any negative)
/// gives `None`.
pub(crate) fn parse_limit<T: TryFrom<u64>>(s: &str) -> Result<Option<T>, String> {
    let t = s.trim();
    if t.starts_with('-') && t[1..].chars().all(|c| c.is_ascii_digit()) && t.len() > 1 {
        return Ok(None);
    }
    parse_uint(t)
        .map(Some)
        .map_err(|m| format!("{m} (or remove the key for no limit)"))
}

/// An octal file mode such as `777` or `0660`.
pub(crate) fn parse_octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s.trim(), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("`{s}` is not an octal file mode; use e.g. `660` or `777`"))
}

/// Adds `offset` to the port of every `tcp://host:PORT` in `s` (`host` may be `[v6]` or `*`).
pub(crate) fn offset_tcp_ports(s: &str, offset: u16) -> Result<String, String> {
    if offset == 0 || !s.contains("tcp://") {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("tcp://") {
        let (head, tail) = rest.split_at(pos + "tcp://".len());
        out.push_str(head);
        let host_len = if tail.starts_with('[') {
            tail.find(']').map_or(tail.len(), |i| i + 1)
        } else {
            tail.find([':', '/', ',', ' ']).unwrap_or(tail.len())
        };
        let (host, after) = tail.split_at(host_len);
        out.push_str(host);
        rest = after;
        let Some(port_text) = after.strip_prefix(':') else {
            continue;
        };
        let digits = port_text.len()
            - port_text
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        if digits == 0 {
            continue;
        }
        let port: u32 = port_text[..digits]
            .parse()
            .map_err(|_| format!("bad port in `{s}`"))?;
        let shifted = port + u32::from(offset);
        if shifted > u32::from(u16::MAX) {
            return Err(format!(
                "port {port} in `{s}` plus port_offset {offset} is above 65535; lower port_offset (or --id)"
            ));
        }
        out.push(':');
        out.push_str(&shifted.to_string());
        rest = &port_text[digits..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `path` resolved against `dir` when relative, without `.` components.
pub(crate) fn join(dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        dir.join(path)
    };
    joined
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn listen_forms() {
        assert_eq!(Listen::parse("7999").unwrap().addr, addr("0.0.0.0:7999"));
        assert_eq!(Listen::parse(" 7999 ").unwrap().addr, addr("0.0.0.0:7999"));
        assert_eq!(
            Listen::parse("127.0.0.1:80").unwrap().addr,
            addr("127.0.0.1:80")
        );
        assert_eq!(Listen::parse("*:80").unwrap().addr, addr("0.0.0.0:80"));
        assert_eq!(Listen::parse(":80").unwrap().addr, addr("0.0.0.0:80"));
        assert_eq!(Listen::parse("[::1]:80").unwrap().addr, addr("[::1]:80"));
        assert_eq!(Listen::parse("[::]:80").unwrap().addr, addr("[::]:80"));
    }

    #[test]
    fn listen_errors() {
        assert!(Listen::parse("http")
            .unwrap_err()
            .contains("not a port number"));
        assert!(Listen::parse("0")
            .unwrap_err()
            .contains("not a port number"));
        assert!(Listen::parse("70000")
            .unwrap_err()
            .contains("not a port number"));
        assert!(Listen::parse("localhost:80")
            .unwrap_err()
            .contains("not an IP address"));
        assert!(Listen::parse("::1:80").unwrap_err().contains("brackets"));
        assert!(Listen::parse("[::1:80")
            .unwrap_err()
            .contains("missing `]`"));
        assert!(Listen::parse("[::1]80")
            .unwrap_err()
            .contains("[address]:port"));
    }

    #[test]
    fn local_listen() {
        let dir = Path::new("/etc/x");
        let l = LocalListen::parse("/run/p.sock?mode=660&user=www&group=web", dir).unwrap();
        assert_eq!(l.path, PathBuf::from("/run/p.sock"));
        assert_eq!(l.mode, Some(0o660));
        assert_eq!(l.user.as_deref(), Some("www"));
        assert_eq!(l.group.as_deref(), Some("web"));
        let l = LocalListen::parse("run/s", dir).unwrap();
        assert_eq!(l.path, PathBuf::from("/etc/x/run/s"));
        assert_eq!(l.mode, None);
        assert!(LocalListen::parse("/s?mode=9", dir).is_err());
        assert!(LocalListen::parse("/s?color=red", dir).is_err());
        assert!(LocalListen::parse("?mode=660", dir).is_err());
    }

    #[test]
    fn metrics_listen() {
        let dir = Path::new("/c");
        assert_eq!(
            MetricsListen::parse("9100", dir).unwrap(),
            MetricsListen::Tcp(addr("0.0.0.0:9100"))
        );
        assert_eq!(
            MetricsListen::parse("127.0.0.1:1030", dir).unwrap(),
            MetricsListen::Tcp(addr("127.0.0.1:1030"))
        );
        assert_eq!(
            MetricsListen::parse("ipc://m.sock", dir).unwrap(),
            MetricsListen::Ipc(PathBuf::from("/c/m.sock"))
        );
        assert!(MetricsListen::parse("ipc://", dir).is_err());
        assert!(MetricsListen::parse("x", dir).is_err());
    }

    #[test]
    fn log_levels() {
        let l: LogLevels = "3".parse().unwrap();
        assert_eq!(l.default, 3);
        assert!(l.services.is_empty());
        let l: LogLevels = "1,pushpin-proxy:4,condure:0,runner:3".parse().unwrap();
        assert_eq!(l.default, 1);
        assert_eq!(l.for_service("proxy"), 4);
        assert_eq!(l.for_service("pushpin-proxy"), 4);
        assert_eq!(l.for_service("connmgr"), 0);
        assert_eq!(l.for_service("runner"), 3);
        assert_eq!(l.for_service("handler"), 1);
        let l: LogLevels = "handler:3".parse().unwrap();
        assert_eq!(l.default, 2);
        assert!("x".parse::<LogLevels>().is_err());
        assert!("-1".parse::<LogLevels>().is_err());
        assert!(":3".parse::<LogLevels>().is_err());
        assert!("proxy:".parse::<LogLevels>().is_err());
        assert!("2,".parse::<LogLevels>().is_err());
    }

    #[test]
    fn services() {
        let items = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse_services(&items("condure,zurl,pushpin-proxy,pushpin-handler")).unwrap(),
            vec!["connmgr", "zurl", "proxy", "handler"]
        );
        assert_eq!(
            parse_services(&items("connmgr,condure,proxy")).unwrap(),
            vec!["connmgr", "proxy"]
        );
        assert_eq!(
            parse_services(&items("mongrel2,m2adapter,handler")).unwrap(),
            vec!["mongrel2", "m2adapter", "handler"]
        );
        assert!(parse_services(&items("nginx"))
            .unwrap_err()
            .contains("unknown service `nginx`"));
        assert!(parse_services(&items("condure,mongrel2"))
            .unwrap_err()
            .contains("cannot run together"));
    }

    #[test]
    fn xff_rules() {
        assert_eq!(XffRule::parse_items([]).unwrap(), XffRule::default());
        assert_eq!(XffRule::parse_items([""]).unwrap(), XffRule::default());
        assert_eq!(
            XffRule::parse_items(["truncate:0", "append"]).unwrap(),
            XffRule {
                truncate: Some(0),
                append: true
            }
        );
        assert_eq!(
            XffRule::parse_items([" truncate:3 "]).unwrap().truncate,
            Some(3)
        );
        assert!(XffRule::parse_items(["truncate:x"]).is_err());
        assert!(XffRule::parse_items(["prepend"]).is_err());
    }

    #[test]
    fn bools() {
        for t in ["true", "TRUE", "True", "yes", "on", "1", " true "] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "False", "no", "off", "0"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("ture")
            .unwrap_err()
            .contains("use `true` or `false`"));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_uint::<u32>("60"), Ok(60));
        assert_eq!(parse_uint::<u16>(" 65535 "), Ok(65535));
        assert!(parse_uint::<u16>("65536")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_uint::<u32>("-1")
            .unwrap_err()
            .contains("not a whole number"));
        assert!(parse_uint::<u32>("1.5").is_err());
        assert_eq!(parse_limit::<u32>("-1"), Ok(None));
        assert_eq!(parse_limit::<u32>("-5"), Ok(None));
        assert_eq!(parse_limit::<u32>("2500"), Ok(Some(2500)));
        assert!(parse_limit::<u32>("-").is_err());
        assert!(parse_limit::<u32>("lots").unwrap_err().contains("no limit"));
        assert_eq!(parse_octal("777"), Ok(0o777));
        assert_eq!(parse_octal("0660"), Ok(0o660));
        assert!(parse_octal("8").is_err());
    }

    #[test]
    fn tcp_port_offset() {
        let o = |s: &str, n: u16| offset_tcp_ports(s, n).unwrap();
        assert_eq!(o("tcp://127.0.0.1:5560", 10), "tcp://127.0.0.1:5570");
        assert_eq!(o("tcp://127.0.0.1:5560", 0), "tcp://127.0.0.1:5560");
        assert_eq!(o("tcp://*:5560", 1), "tcp://*:5561");
        assert_eq!(o("tcp://[::1]:5560", 5), "tcp://[::1]:5565");
        assert_eq!(o("tcp://host:5560/path", 5), "tcp://host:5565/path");
        assert_eq!(
            o("tcp://a:1,tcp://b:2 tcp://c:3", 10),
            "tcp://a:11,tcp://b:12 tcp://c:13"
        );
        assert_eq!(o("ipc:///run/x", 10), "ipc:///run/x");
        assert_eq!(o("tcp://noport", 10), "tcp://noport");
        assert_eq!(o("tcp://host:", 10), "tcp://host:");
        assert_eq!(o("tcp://", 10), "tcp://");
        assert_eq!(o("x tcp://h:9 y", 1), "x tcp://h:10 y");
        assert!(offset_tcp_ports("tcp://h:65530", 10)
            .unwrap_err()
            .contains("above 65535"));
    }

    #[test]
    fn join_paths() {
        assert_eq!(join(Path::new("/a/b"), "run"), PathBuf::from("/a/b/run"));
        assert_eq!(join(Path::new("/a/b"), "./run"), PathBuf::from("/a/b/run"));
        assert_eq!(
            join(Path::new("/a/b"), "/var/run"),
            PathBuf::from("/var/run")
        );
        assert_eq!(
            join(Path::new("/a/b"), "../run"),
            PathBuf::from("/a/b/../run")
        );
    }
}
