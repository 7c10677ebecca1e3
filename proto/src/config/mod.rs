//! `pushpin.conf` (reference §7.1-7.2): INI parsing, `include`, placeholders, `port_offset`, and
//! the validated [`Config`] every process uses.
//!
//! Pipeline: [`ini::Ini`] reads the text with Qt `QSettings` semantics; the main file and its
//! `[global] include` are merged (the main file wins key by key); every key is checked against
//! [`keys`] (unknown ones become [`ConfigWarning::UnknownKey`]); `{libdir}`, `{rundir}` and
//! `{ipc_prefix}` are substituted and `port_offset` is added to every `tcp://host:PORT`; then each
//! section is parsed into typed fields. Command-line [`Overrides`] apply before substitution, as
//! Pushpin's `--ipc-prefix`/`--port-offset` do.
//!
//! Defaults: a key absent from the file gets Pushpin's *code* default (e.g. `message_rate`
//! unlimited, `id_cache_ttl` 0, `sig_key` empty = no signing), exactly as Pushpin behaves with
//! the same file. [`Config::builtin`], used when there is no file at all, gives Pushpin's
//! *shipped* `pushpin.conf` values instead (`message_rate` 2500, `sig_key` `changeme`, ...). An
//! empty value (`key=`) means "absent" for numbers, booleans, ports and lists; for free-text keys
//! (`sig_key=`, `x_forwarded_for=`, ...) it is the empty string.
//!
//! Behaviours verified against the installed Pushpin 1.36 (`pushpin --config X [--id 1]`, ports
//! read with `ss -ltnp`): `port_offset` (from the file or `--id N` = N×10) is added to `tcp://`
//! specs and to `push_in_http_port`, but not to `http_port`; `--id 1` names ipc files `p1-…`.
//!
//! Deliberate differences from Pushpin, each noted where it happens: relative `rundir`,
//! `logdir`, `libdir` and `local_ports` are resolved against the config file's directory
//! (Pushpin 1.36 resolves `rundir`/`logdir` against its current directory; observed), values that
//! Pushpin would silently misread (a bad boolean, a non-numeric port, an unknown service name, an
//! unquoted comma in a single value) are errors, and `#` starts a comment line.

pub mod ini;
pub mod keys;
mod reader;
mod values;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use self::ini::Ini;
use self::reader::Reader;
pub use self::values::{
    canonical_service, Listen, LocalListen, LogLevels, MetricsListen, StatsFormat, XffRule,
};

/// Pushpin's compiled-in library directory (Debian and upstream): the default `{libdir}`, where
/// Pushpin's `internal.conf` lives.
pub const PUSHPIN_LIBDIR: &str = "/usr/lib/pushpin";

/// Pushpin's shipped `sockjs_url`, also used when the key is absent.
pub const DEFAULT_SOCKJS_URL: &str = "http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js";

/// Most handler threads `[proxy] workers` may ask for.
pub const MAX_PROXY_WORKERS: usize = 1024;

/// Default of `[runner] client_header_timeout`, in seconds.
pub const DEFAULT_CLIENT_HEADER_TIMEOUT: u64 = 30;

/// Largest `[runner] client_header_timeout`, in seconds (an hour: past that a trickled head
/// holds a connection as long as no timeout at all would).
pub const MAX_CLIENT_HEADER_TIMEOUT: u64 = 3600;

/// Values given on the command line that override the file (runner and handler flags).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--id N`: sets `ipc_prefix` to `p<N>-` and `port_offset` to `N*10`.
    pub id: Option<u32>,
    /// `--ipc-prefix` (wins over `--id`).
    pub ipc_prefix: Option<String>,
    /// `--port-offset` (wins over `--id`).
    pub port_offset: Option<u16>,
    /// `--port [addr:]port`: replaces every HTTP, HTTPS and Unix-socket listener.
    pub port: Option<String>,
}

impl Overrides {
    /// Checks that the overrides are usable: `--id` gives a port offset that fits, the shipped
    /// ports plus that offset stay below 65536, and `--port` parses. [`Config::load`] checks the
    /// same things; call this before [`Config::builtin`], which cannot fail and saturates instead.
    pub fn check(&self) -> Result<(), ConfigError> {
        let offset = self.offset()?.unwrap_or(0);
        // 5563 (command_spec) is the highest port the shipped defaults offset.
        if 5563u32 + u32::from(offset) > u32::from(u16::MAX) {
            return Err(cli_error(
                "--id",
                format!("port offset {offset} moves the default ports above 65535; use a smaller --id or --port-offset"),
            ));
        }
        self.listen().map(|_| ())
    }

    /// The port offset the overrides ask for, if any.
    fn offset(&self) -> Result<Option<u16>, ConfigError> {
        if let Some(offset) = self.port_offset {
            return Ok(Some(offset));
        }
        let Some(id) = self.id else { return Ok(None) };
        id.checked_mul(10)
            .and_then(|o| u16::try_from(o).ok())
            .map(Some)
            .ok_or_else(|| {
                cli_error(
                    "--id",
                    format!("--id {id} gives a port offset above 65535; use an id below 6554"),
                )
            })
    }

    fn ipc_prefix(&self) -> Option<String> {
        self.ipc_prefix
            .clone()
            .or_else(|| self.id.map(|id| format!("p{id}-")))
    }

    fn listen(&self) -> Result<Option<Listen>, ConfigError> {
        self.port
            .as_deref()
            .map(|p| Listen::parse(p).map_err(|m| cli_error("--port", m)))
            .transpose()
    }
}

/// A fully parsed and validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (`None` for built-in defaults).
    pub path: Option<PathBuf>,
    /// Directory relative paths are resolved against (the config file's directory, or the
    /// current directory for built-in defaults).
    pub dir: PathBuf,
    /// The `[global] include` file that was read, if any (a missing Pushpin `internal.conf` is
    /// skipped and not listed).
    pub include: Option<PathBuf>,
    /// `{libdir}`: `[global] libdir` (deprecated in Pushpin) or [`PUSHPIN_LIBDIR`].
    pub libdir: PathBuf,
    /// `[global] rundir` (or the deprecated `[runner] rundir`), absolute. When neither is set:
    /// `<temp dir>/holdfast`.
    pub rundir: PathBuf,
    /// `[global] ipc_prefix` (default `pushpin-`), after overrides.
    pub ipc_prefix: String,
    /// `[global] port_offset`, after overrides.
    pub port_offset: u16,
    /// `[global] stats_connection_ttl` (seconds, default 120).
    pub stats_connection_ttl: u32,
    /// `[global] stats_connection_send` (default true).
    pub stats_connection_send: bool,
    /// `[runner]` settings.
    pub runner: RunnerConfig,
    /// `[proxy]` settings.
    pub proxy: ProxyConfig,
    /// `[handler]` settings.
    pub handler: HandlerConfig,
}

/// `[runner]`.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// `services`, as canonical names (see [`canonical_service`]), in order, without repeats.
    /// When the key is absent: the shipped `connmgr`, `proxy`, `handler`.
    pub services: Vec<String>,
    /// `http_port` listeners (`port_offset` is not applied, as in Pushpin 1.36: observed). Empty
    /// when absent (see [`RunnerConfig::has_listeners`]).
    pub http_ports: Vec<Listen>,
    /// `https_ports` listeners.
    pub https_ports: Vec<Listen>,
    /// `local_ports` Unix-socket listeners.
    pub local_ports: Vec<LocalListen>,
    /// Where TLS certificates for `https_ports` live: `<config dir>/runner/certs`, as Pushpin.
    pub certs_dir: PathBuf,
    /// `logdir` (`None`: log to the runner's output), absolute.
    pub logdir: Option<PathBuf>,
    /// The default of `log_level` (0 error .. 4 trace); same as `log_levels.default`.
    pub log_level: u8,
    /// `log_level` in full, with per-service levels.
    pub log_levels: LogLevels,
    /// `client_buffer_size` (default 8192).
    pub client_buffer_size: usize,
    /// `client_maxconn` (default 50000).
    pub client_maxconn: usize,
    /// `allow_compression` (default false).
    pub allow_compression: bool,
    /// Holdfast extension `connmgr_workers`: connmgr worker threads (0 = one per core, the
    /// default). Pushpin has no such key; its connmgr always runs 2 workers.
    pub connmgr_workers: usize,
    /// Holdfast extension `client_header_timeout`: seconds a client may take to send a request
    /// head, from its first byte (default [`DEFAULT_CLIENT_HEADER_TIMEOUT`], 1 to
    /// [`MAX_CLIENT_HEADER_TIMEOUT`]); past it the connection gets a `408` and is closed. Pushpin
    /// has no such bound: a head trickled a byte at a time holds its connection indefinitely.
    pub client_header_timeout: u64,
}

impl RunnerConfig {
    /// Whether any client listener (`http_port`, `https_ports`, `local_ports`) is configured.
    /// Pushpin's runner refuses to start without one ("no server ports configured", observed with
    /// 1.36 when `http_port` is absent); the runner should do the same when it starts connmgr.
    pub fn has_listeners(&self) -> bool {
        !(self.http_ports.is_empty() && self.https_ports.is_empty() && self.local_ports.is_empty())
    }

    /// Whether `service` (Pushpin or canonical name) is listed in `services`.
    pub fn runs(&self, service: &str) -> bool {
        let name = canonical_service(service).unwrap_or(service);
        self.services.iter().any(|s| s == name)
    }
}

/// `[proxy]`.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// `routesfile`, resolved against the config directory.
    pub routesfile: Option<PathBuf>,
    /// `debug`.
    pub debug: bool,
    /// `auto_cross_origin`.
    pub auto_cross_origin: bool,
    /// `accept_x_forwarded_protocol`.
    pub accept_x_forwarded_protocol: bool,
    /// `set_x_forwarded_protocol`: `None` (`false`, empty or absent: off), `Some(true)` (`true`:
    /// both headers), `Some(false)` (`proto-only`).
    pub set_x_forwarded_protocol: Option<bool>,
    /// `x_forwarded_for` rules.
    pub x_forwarded_for: XffRule,
    /// `x_forwarded_for_trusted` rules.
    pub x_forwarded_for_trusted: XffRule,
    /// `orig_headers_need_mark`: header names.
    pub orig_headers_need_mark: Vec<String>,
    /// `accept_pushpin_route`.
    pub accept_pushpin_route: bool,
    /// `cdn_loop`.
    pub cdn_loop: Option<String>,
    /// `log_from`.
    pub log_from: bool,
    /// `log_user_agent`.
    pub log_user_agent: bool,
    /// `sig_iss` (default `pushpin`).
    pub sig_iss: String,
    /// `sig_key` (raw string; empty = no signing).
    pub sig_key: String,
    /// `upstream_key` (raw string; empty = none).
    pub upstream_key: String,
    /// `sockjs_url` (default [`DEFAULT_SOCKJS_URL`]).
    pub sockjs_url: String,
    /// `workers` (default 1, at most [`MAX_PROXY_WORKERS`]): the handler's threads for
    /// proxying, GRIP and publishing. 1 runs everything on one thread, which costs the least
    /// CPU per request; more let the handler use more than one core.
    pub workers: usize,
    /// `max_open_requests` (`None`: `client_maxconn`; capped by it).
    pub max_open_requests: Option<usize>,
    /// `ipc_file_mode` (octal).
    pub ipc_file_mode: Option<u32>,
    /// `stats_report_interval` (seconds, default 10).
    pub stats_report_interval: u32,
    /// `stats_connections_max_ttl` (seconds, default 60).
    pub stats_connections_max_ttl: u32,
    /// `prometheus_port`.
    pub prometheus: Option<MetricsListen>,
    /// `prometheus_prefix`.
    pub prometheus_prefix: String,
}

/// `[handler]`.
#[derive(Clone, Debug)]
pub struct HandlerConfig {
    /// `push_in_spec`.
    pub push_in_spec: Option<String>,
    /// `push_in_sub_specs`, plus the legacy single `push_in_sub_spec`.
    pub push_in_sub_specs: Vec<String>,
    /// `push_in_sub_connect`.
    pub push_in_sub_connect: bool,
    /// `push_in_http_addr` (an IP address; default `127.0.0.1`).
    pub push_in_http_addr: String,
    /// `push_in_http_port` (offset applied; `None` = no HTTP control server).
    pub push_in_http_port: Option<u16>,
    /// `push_in_http_max_headers_size` (1.36 name `push_in_max_headers_size`; default 10000).
    pub push_in_http_max_headers_size: usize,
    /// `push_in_http_max_body_size` (1.36 name `push_in_max_body_size`; default 1000000).
    pub push_in_http_max_body_size: usize,
    /// `command_spec`.
    pub command_spec: Option<String>,
    /// `stats_spec`.
    pub stats_spec: Option<String>,
    /// `state_spec` (hidden Pushpin key).
    pub state_spec: Option<String>,
    /// `ipc_file_mode` (octal).
    pub ipc_file_mode: Option<u32>,
    /// `share_all` (hidden Pushpin key).
    pub share_all: bool,
    /// `message_rate` (deliveries per second; `None` = unlimited).
    pub message_rate: Option<u32>,
    /// `message_hwm` (queued deliveries per route; `None` = unlimited).
    pub message_hwm: Option<u32>,
    /// `message_block_size` (`None` = block accounting off).
    pub message_block_size: Option<u32>,
    /// `message_wait` (ms, default 5000).
    pub message_wait: u32,
    /// `id_cache_ttl` (seconds, default 0 = off).
    pub id_cache_ttl: u32,
    /// `update_on_first_subscription` (default true).
    pub update_on_first_subscription: bool,
    /// `connection_subscription_max` (default 20).
    pub connection_subscription_max: u32,
    /// `subscription_linger` (seconds, default 60).
    pub subscription_linger: u32,
    /// `stats_subscription_ttl` (seconds, default 60).
    pub stats_subscription_ttl: u32,
    /// `stats_report_interval` (seconds, default 10).
    pub stats_report_interval: u32,
    /// `stats_format`.
    pub stats_format: StatsFormat,
    /// `prometheus_port`.
    pub prometheus: Option<MetricsListen>,
    /// `prometheus_prefix`.
    pub prometheus_prefix: String,
}

impl HandlerConfig {
    /// Where the HTTP control API listens, if it is enabled.
    pub fn push_in_http_listen(&self) -> Option<SocketAddr> {
        let port = self.push_in_http_port?;
        let ip: IpAddr = self.push_in_http_addr.parse().ok()?;
        Some(SocketAddr::new(ip, port))
    }
}

/// A problem worth telling the operator about that does not stop the start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigWarning {
    /// A key Holdfast does not know at all.
    #[error("unknown config key [{section}] {key} (ignored)")]
    UnknownKey {
        /// Section name.
        section: String,
        /// Key name.
        key: String,
    },
    /// A line that is not a comment, a `[section]` or `key=value`.
    #[error("{}:{line}: cannot parse `{text}` (ignored)", path.display())]
    MalformedLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A key that still works but belongs elsewhere.
    #[error("[{section}] {key} is deprecated: {message}")]
    Deprecated {
        /// Section name.
        section: String,
        /// Key name.
        key: String,
        /// What to do instead.
        message: String,
    },
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or an included file) could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A value is malformed.
    #[error("invalid value for [{section}] {key}: {message}")]
    InvalidValue {
        /// Section name (`command line` for flags).
        section: String,
        /// Key name (or the flag).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

fn invalid(section: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        section: section.into(),
        key: key.into(),
        message: message.into(),
    }
}

fn cli_error(flag: &str, message: impl Into<String>) -> ConfigError {
    invalid("command line", flag, message)
}

impl Config {
    /// The configuration used when no file is given or found: Pushpin's shipped defaults, with
    /// `rundir` under the system temporary directory and logs to the runner's output. Port
    /// arithmetic saturates here; see [`Overrides::check`].
    pub fn builtin(overrides: &Overrides) -> Self {
        let offset = overrides.offset().ok().flatten().unwrap_or_else(|| {
            overrides.id.map_or(0, |id| {
                u16::try_from(id.saturating_mul(10)).unwrap_or(u16::MAX)
            })
        });
        let ipc_prefix = overrides.ipc_prefix().unwrap_or_else(|| "pushpin-".into());
        let rundir = std::env::temp_dir().join("holdfast");
        let tcp = |port: u16| format!("tcp://127.0.0.1:{}", port.saturating_add(offset));
        let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let http_ports = match overrides.listen() {
            Ok(Some(listen)) => vec![listen],
            _ => vec![Listen {
                addr: SocketAddr::from(([0, 0, 0, 0], 7999)),
            }],
        };
        Self {
            path: None,
            include: None,
            libdir: PathBuf::from(PUSHPIN_LIBDIR),
            stats_connection_ttl: 120,
            stats_connection_send: true,
            runner: RunnerConfig {
                services: ["connmgr", "proxy", "handler"].map(String::from).to_vec(),
                http_ports,
                https_ports: Vec::new(),
                local_ports: Vec::new(),
                certs_dir: dir.join("runner").join("certs"),
                logdir: None,
                log_level: 2,
                log_levels: LogLevels::default(),
                client_buffer_size: 8192,
                client_maxconn: 50000,
                allow_compression: false,
                connmgr_workers: 0,
                client_header_timeout: DEFAULT_CLIENT_HEADER_TIMEOUT,
            },
            proxy: ProxyConfig {
                routesfile: None,
                debug: false,
                auto_cross_origin: false,
                accept_x_forwarded_protocol: false,
                set_x_forwarded_protocol: Some(false),
                x_forwarded_for: XffRule::default(),
                x_forwarded_for_trusted: XffRule::default(),
                orig_headers_need_mark: Vec::new(),
                accept_pushpin_route: false,
                cdn_loop: None,
                log_from: false,
                log_user_agent: false,
                sig_iss: "pushpin".into(),
                sig_key: "changeme".into(),
                upstream_key: String::new(),
                sockjs_url: DEFAULT_SOCKJS_URL.into(),
                workers: 1,
                max_open_requests: None,
                ipc_file_mode: None,
                stats_report_interval: 10,
                stats_connections_max_ttl: 60,
                prometheus: None,
                prometheus_prefix: String::new(),
            },
            handler: HandlerConfig {
                push_in_spec: Some(tcp(5560)),
                push_in_sub_specs: vec![tcp(5562)],
                push_in_sub_connect: false,
                push_in_http_addr: "127.0.0.1".into(),
                push_in_http_port: Some(5561u16.saturating_add(offset)),
                push_in_http_max_headers_size: 10000,
                push_in_http_max_body_size: 1_000_000,
                command_spec: Some(tcp(5563)),
                stats_spec: Some(format!("ipc://{}/{ipc_prefix}stats", rundir.display())),
                state_spec: None,
                ipc_file_mode: None,
                share_all: false,
                message_rate: Some(2500),
                message_hwm: Some(25000),
                message_block_size: None,
                message_wait: 5000,
                id_cache_ttl: 60,
                update_on_first_subscription: true,
                connection_subscription_max: 20,
                subscription_linger: 60,
                stats_subscription_ttl: 60,
                stats_report_interval: 10,
                stats_format: StatsFormat::Tnetstring,
                prometheus: None,
                prometheus_prefix: String::new(),
            },
            dir,
            rundir,
            ipc_prefix,
            port_offset: offset,
        }
    }

    /// Loads `path` (following `include`), applies placeholders, `port_offset` and overrides.
    pub fn load(
        path: &Path,
        overrides: &Overrides,
    ) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        Self::load_with(path, overrides, |p| std::fs::read_to_string(p))
    }

    /// [`Config::load`] with the file reading supplied by the caller (tests read from memory).
    pub fn load_with(
        path: &Path,
        overrides: &Overrides,
        mut read: impl FnMut(&Path) -> std::io::Result<String>,
    ) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let text = read(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let mut warnings = Vec::new();
        let main = parse_ini(&text, &path, &mut warnings);

        // The include path is resolved with the main file's values only (as Pushpin does: it
        // computes them before the include is loaded).
        let main_only = Reader::new(&main, None, &dir, overrides, &mut Vec::new())?;
        let include = main_only.include_file(&dir)?;
        let mut included = None;
        if let Some((include_path, optional)) = include {
            match read(&include_path) {
                Ok(text) => {
                    included = Some((parse_ini(&text, &include_path, &mut warnings), include_path));
                }
                // Holdfast has no internal.conf of its own: a missing Pushpin one is expected.
                Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: include_path,
                        source,
                    })
                }
            }
        }

        report_unknown_keys(&main, included.as_ref().map(|(ini, _)| ini), &mut warnings);
        let reader = Reader::new(
            &main,
            included.as_ref().map(|(ini, _)| ini),
            &dir,
            overrides,
            &mut warnings,
        )?;
        let runner = reader.runner(&dir, overrides)?;
        let proxy = reader.proxy(&dir)?;
        let handler = reader.handler(&dir)?;
        let config = Self {
            include: included.as_ref().map(|(_, p)| p.clone()),
            libdir: PathBuf::from(&reader.vars.libdir),
            rundir: PathBuf::from(&reader.vars.rundir),
            ipc_prefix: reader.vars.ipc_prefix.clone(),
            port_offset: reader.vars.port_offset,
            stats_connection_ttl: reader
                .uint("global", "stats_connection_ttl")?
                .unwrap_or(120),
            stats_connection_send: reader
                .bool("global", "stats_connection_send")?
                .unwrap_or(true),
            runner,
            proxy,
            handler,
            path: Some(path),
            dir,
        };
        Ok((config, warnings))
    }

    /// The config file to use when `--config` is not given: the first of
    /// [`Config::search_paths`] that is a file.
    ///
    /// `/etc/pushpin/pushpin.conf` is deliberately not searched: it is Pushpin's own system
    /// config, installed and owned by the Pushpin package, and a host can run both. Holdfast
    /// reads it only when pointed at it with `--config`.
    pub fn find() -> Option<PathBuf> {
        Self::search_paths().into_iter().find(|p| p.is_file())
    }

    /// Where [`Config::find`] looks, in order: `./config/pushpin.conf`, `./pushpin.conf`,
    /// `/etc/holdfast/pushpin.conf` (relative ones made absolute against the current directory).
    pub fn search_paths() -> Vec<PathBuf> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        vec![
            cwd.join("config").join("pushpin.conf"),
            cwd.join("pushpin.conf"),
            PathBuf::from("/etc/holdfast/pushpin.conf"),
        ]
    }

    /// The ipc spec of the handler's ROUTER socket that connmgr workers connect to.
    pub fn connmgr_spec(&self) -> String {
        format!(
            "ipc://{}/{}holdfast-connmgr",
            self.rundir.display(),
            self.ipc_prefix
        )
    }
}

fn parse_ini(text: &str, path: &Path, warnings: &mut Vec<ConfigWarning>) -> Ini {
    let (ini, malformed) = Ini::parse(text);
    warnings.extend(malformed.into_iter().map(|m| ConfigWarning::MalformedLine {
        path: path.to_path_buf(),
        line: m.line,
        text: m.text,
    }));
    ini
}

fn report_unknown_keys(main: &Ini, include: Option<&Ini>, warnings: &mut Vec<ConfigWarning>) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for entry in main
        .entries()
        .iter()
        .chain(include.into_iter().flat_map(Ini::entries))
    {
        let id = (entry.section.as_str(), entry.key.as_str());
        if keys::lookup(id.0, id.1).is_none() && !seen.contains(&id) {
            seen.push(id);
            warnings.push(ConfigWarning::UnknownKey {
                section: entry.section.clone(),
                key: entry.key.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
