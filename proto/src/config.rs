//! `pushpin.conf` (reference §7.1-7.2): INI parsing, `include`, placeholders, `port_offset`, and
//! the validated [`Config`] every process uses.
//!
//! SKELETON: the types and signatures below are the API the processes code against; the loader is
//! being completed (include, placeholders, port offset, every key, unknown-key reporting).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Values given on the command line that override the file (runner and handler flags).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--id N`: sets `ipc_prefix` to `p<N>-` and `port_offset` to `N*10`.
    pub id: Option<u32>,
    /// `--ipc-prefix`.
    pub ipc_prefix: Option<String>,
    /// `--port-offset`.
    pub port_offset: Option<u16>,
    /// `--port [addr:]port`: replaces every HTTP listener.
    pub port: Option<String>,
}

/// A listener address from `http_port`/`https_ports`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// Address and port to bind (address defaults to 0.0.0.0).
    pub addr: SocketAddr,
}

/// A fully parsed and validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it came from (`None` for built-in defaults).
    pub path: Option<PathBuf>,
    /// Directory relative paths are resolved against (the config file's directory, or the
    /// current directory for built-in defaults).
    pub dir: PathBuf,
    /// `[global] rundir`.
    pub rundir: PathBuf,
    /// `[global] ipc_prefix`.
    pub ipc_prefix: String,
    /// `[global] port_offset`.
    pub port_offset: u16,
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
    /// `http_port` listeners (offset applied).
    pub http_ports: Vec<Listen>,
    /// `https_ports` listeners.
    pub https_ports: Vec<Listen>,
    /// `logdir` (`None`: log to the runner's output).
    pub logdir: Option<PathBuf>,
    /// `log_level` (0 error .. 4 trace).
    pub log_level: u8,
    /// `client_buffer_size`.
    pub client_buffer_size: usize,
    /// `client_maxconn`.
    pub client_maxconn: usize,
    /// `allow_compression`.
    pub allow_compression: bool,
    /// Holdfast extension `connmgr_workers` (0 = one per core).
    pub connmgr_workers: usize,
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
    /// `set_x_forwarded_protocol`: `None` (off), `Some(true)` (both headers), `Some(false)`
    /// (`proto-only`).
    pub set_x_forwarded_protocol: Option<bool>,
    /// `x_forwarded_for` rules.
    pub x_forwarded_for: XffRule,
    /// `x_forwarded_for_trusted` rules.
    pub x_forwarded_for_trusted: XffRule,
    /// `accept_pushpin_route`.
    pub accept_pushpin_route: bool,
    /// `cdn_loop`.
    pub cdn_loop: Option<String>,
    /// `log_from`.
    pub log_from: bool,
    /// `log_user_agent`.
    pub log_user_agent: bool,
    /// `sig_iss`.
    pub sig_iss: String,
    /// `sig_key` (raw string; empty = no signing).
    pub sig_key: String,
    /// `upstream_key` (raw string; empty = none).
    pub upstream_key: String,
}

/// An `x_forwarded_for` rule list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XffRule {
    /// `truncate:N`.
    pub truncate: Option<usize>,
    /// `append`.
    pub append: bool,
}

/// `[handler]`.
#[derive(Clone, Debug)]
pub struct HandlerConfig {
    /// `push_in_spec`.
    pub push_in_spec: Option<String>,
    /// `push_in_sub_specs`.
    pub push_in_sub_specs: Vec<String>,
    /// `push_in_sub_connect`.
    pub push_in_sub_connect: bool,
    /// `push_in_http_addr`.
    pub push_in_http_addr: String,
    /// `push_in_http_port` (offset applied; `None` = no HTTP control server).
    pub push_in_http_port: Option<u16>,
    /// `command_spec`.
    pub command_spec: Option<String>,
    /// `stats_spec`.
    pub stats_spec: Option<String>,
}

/// A problem worth telling the operator about that does not stop the start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigWarning {
    /// A key Holdfast does not know at all.
    #[error("unknown config key [{section}] {key} (ignored)")]
    UnknownKey {
        /// Section name.
        section: String,
        /// Key name.
        key: String,
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
        /// Section name.
        section: String,
        /// Key name.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl Config {
    /// The configuration used when no file is given or found: Pushpin's shipped defaults, with
    /// `rundir` under the system temporary directory and logs to the runner's output.
    pub fn builtin(overrides: &Overrides) -> Self {
        let offset = overrides
            .port_offset
            .or(overrides.id.map(|id| (id * 10) as u16))
            .unwrap_or(0);
        let ipc_prefix = overrides
            .ipc_prefix
            .clone()
            .or(overrides.id.map(|id| format!("p{id}-")))
            .unwrap_or_else(|| "pushpin-".into());
        let http = |port: u16| Listen {
            addr: SocketAddr::from(([0, 0, 0, 0], port + offset)),
        };
        Self {
            path: None,
            dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            rundir: std::env::temp_dir().join("holdfast"),
            ipc_prefix,
            port_offset: offset,
            runner: RunnerConfig {
                http_ports: vec![http(7999)],
                https_ports: Vec::new(),
                logdir: None,
                log_level: 2,
                client_buffer_size: 8192,
                client_maxconn: 50000,
                allow_compression: false,
                connmgr_workers: 0,
            },
            proxy: ProxyConfig {
                routesfile: None,
                debug: false,
                auto_cross_origin: false,
                accept_x_forwarded_protocol: false,
                set_x_forwarded_protocol: Some(false),
                x_forwarded_for: XffRule::default(),
                x_forwarded_for_trusted: XffRule::default(),
                accept_pushpin_route: false,
                cdn_loop: None,
                log_from: false,
                log_user_agent: false,
                sig_iss: "pushpin".into(),
                sig_key: "changeme".into(),
                upstream_key: String::new(),
            },
            handler: HandlerConfig {
                push_in_spec: Some(format!("tcp://127.0.0.1:{}", 5560 + offset)),
                push_in_sub_specs: vec![format!("tcp://127.0.0.1:{}", 5562 + offset)],
                push_in_sub_connect: false,
                push_in_http_addr: "127.0.0.1".into(),
                push_in_http_port: Some(5561 + offset),
                command_spec: Some(format!("tcp://127.0.0.1:{}", 5563 + offset)),
                stats_spec: Some(format!("ipc://{{rundir}}/{{ipc_prefix}}stats")),
            },
        }
    }

    /// Loads `path` (following `include`), applies placeholders, `port_offset` and overrides.
    pub fn load(
        path: &Path,
        overrides: &Overrides,
    ) -> Result<(Self, Vec<ConfigWarning>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let _ = text;
        let mut config = Self::builtin(overrides);
        config.path = Some(path.to_path_buf());
        config.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, Vec::new()))
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
