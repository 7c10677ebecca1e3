//! Command line and the validated configuration built from it.
//!
//! [`Args`] is the raw clap parse; [`Config::from_args`] checks ranges and fills in defaults that
//! depend on the machine (worker count) or the process (instance id), so the rest of the crate
//! only sees values that make sense.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use holdfast_proto::config::DEFAULT_CLIENT_HEADER_TIMEOUT;

/// Smallest accepted `--buffer-size`: room for a modest request head.
pub const MIN_BUFFER_SIZE: usize = 512;

/// Largest accepted `--buffer-size`.
pub const MAX_BUFFER_SIZE: usize = 16 * 1024 * 1024;

/// Most worker threads.
pub const MAX_WORKERS: usize = 1024;

/// Most listeners (`--listen`, `--tls-listen` and `--local-listen` together).
pub const MAX_LISTENERS: usize = 256;

/// Default `--max-message-size`: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = crate::ws::DEFAULT_MAX_MESSAGE_SIZE;

/// Largest accepted `--max-message-size`: a client message travels to the handler in one
/// packet, which must stay well under the protocol's packet limit.
pub const MAX_MESSAGE_SIZE: usize = 60 * 1024 * 1024;

/// Command line of `holdfast-connmgr`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "holdfast-connmgr",
    version,
    about = "Holdfast connection manager: owns client sockets and speaks HTTP/1 to them, \
             forwarding requests to holdfast-handler over ZeroMQ."
)]
pub struct Args {
    /// Address to accept plain HTTP clients on, `[addr:]port` or `[v6addr]:port` (address
    /// default 0.0.0.0). Repeatable.
    #[arg(long = "listen", value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub listen: Vec<SocketAddr>,

    /// Address to accept HTTPS/WSS clients on (same forms as `--listen`). Repeatable; needs
    /// `--tls-certs-dir`.
    #[arg(long = "tls-listen", value_name = "[ADDR:]PORT", value_parser = parse_listen)]
    pub tls_listen: Vec<SocketAddr>,

    /// Unix-domain socket to accept plain HTTP clients on (Pushpin's `local_ports`):
    /// `PATH[,mode=OCTAL][,user=NAME][,group=NAME]`. Repeatable. A stale socket file at PATH is
    /// replaced.
    #[arg(long = "local-listen", value_name = "PATH[,mode=OCTAL]", value_parser = LocalListen::parse)]
    pub local_listen: Vec<LocalListen>,

    /// Directory of TLS certificates, laid out as Pushpin's `runner/certs`: `<name>.crt` and
    /// `<name>.key` per SNI name, `_.<domain>` for a one-level wildcard, `default_<port>` for a
    /// listener's default. Files are reloaded when they change.
    #[arg(long, value_name = "DIR")]
    pub tls_certs_dir: Option<PathBuf>,

    /// ZeroMQ endpoint of the handler's ROUTER socket to connect to (e.g. ipc:///run/x/connmgr).
    #[arg(long, value_name = "SPEC")]
    pub handler_spec: String,

    /// Instance id; worker N identifies itself to the handler as `<id>-N` (default
    /// `connmgr-<pid>`).
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,

    /// Worker threads, each with its own event loop and sockets (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub workers: usize,

    /// Per-connection buffer size in bytes (`client_buffer_size`); also the largest request head
    /// accepted.
    #[arg(long, value_name = "N", default_value_t = 8192)]
    pub buffer_size: usize,

    /// Most client connections at once, across all workers (`client_maxconn`).
    #[arg(long, value_name = "N", default_value_t = 50_000)]
    pub maxconn: usize,

    /// Seconds without client I/O after which a connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub stream_timeout: u64,

    /// Seconds a client may take to send a request head, from its first byte
    /// (`[runner] client_header_timeout`); past it the client gets a `408` and the connection
    /// closes.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_CLIENT_HEADER_TIMEOUT)]
    pub header_timeout: u64,

    /// Negotiate permessage-deflate with WebSocket clients that offer it (Pushpin's
    /// `allow_compression`). Server messages are always compressed without context takeover, so
    /// a message published to many clients is compressed once.
    #[arg(long)]
    pub compression: bool,

    /// Largest WebSocket message accepted from a client, in bytes, after reassembly and
    /// decompression (default 16 MiB); a larger one closes the WebSocket with code 1009.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_MESSAGE_SIZE)]
    pub max_message_size: usize,

    /// Log level: 0 error, 1 warn, 2 info, 3 debug, 4 trace.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(0..=4))]
    pub log_level: u8,
}

/// Parses `[addr:]port`, `[v6]:port` or `port`.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let addr = if let Ok(addr) = s.parse::<SocketAddr>() {
        addr
    } else if let Ok(port) = s.parse::<u16>() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    } else {
        return Err(format!(
            "invalid listen address '{s}': expected [addr:]port or [v6addr]:port"
        ));
    };
    if addr.port() == 0 {
        return Err(format!("invalid listen address '{s}': port 0"));
    }
    Ok(addr)
}

/// A Unix-domain socket listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalListen {
    /// The socket's path.
    pub path: PathBuf,
    /// File mode to give the socket.
    pub mode: Option<u32>,
    /// Owner to give the socket (name or numeric id).
    pub user: Option<String>,
    /// Group to give the socket (name or numeric id).
    pub group: Option<String>,
}

impl LocalListen {
    /// Parses `PATH[,mode=OCTAL][,user=NAME][,group=NAME]`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let path = parts.next().unwrap_or("").trim();
        if path.is_empty() {
            return Err(format!("invalid local listener '{s}': empty path"));
        }
        let mut out = Self {
            path: PathBuf::from(path),
            mode: None,
            user: None,
            group: None,
        };
        for part in parts {
            match part.split_once('=') {
                Some(("mode", m)) => {
                    out.mode = Some(
                        u32::from_str_radix(m, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| {
                                format!("invalid mode '{m}' in '{s}': expected octal")
                            })?,
                    )
                }
                Some(("user", u)) if !u.is_empty() => out.user = Some(u.to_string()),
                Some(("group", g)) if !g.is_empty() => out.group = Some(g.to_string()),
                _ => {
                    return Err(format!(
                    "invalid local listener '{s}': unknown option '{part}' (mode=, user=, group=)"
                ))
                }
            }
        }
        Ok(out)
    }
}

/// Why the command line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `--buffer-size` out of range.
    #[error("--buffer-size {0} is out of range: use {MIN_BUFFER_SIZE}..={MAX_BUFFER_SIZE}")]
    BufferSize(usize),
    /// `--workers` too large.
    #[error("--workers {0} is too large: use 0 (one per core) up to {MAX_WORKERS}")]
    Workers(usize),
    /// `--maxconn 0`.
    #[error("--maxconn must be at least 1")]
    MaxConn,
    /// `--stream-timeout 0`.
    #[error("--stream-timeout must be at least 1 second")]
    StreamTimeout,
    /// `--header-timeout 0`.
    #[error("--header-timeout must be at least 1 second")]
    HeaderTimeout,
    /// Too many `--listen` and `--tls-listen`.
    #[error("at most {MAX_LISTENERS} --listen/--tls-listen addresses are supported")]
    Listeners,
    /// No listener at all.
    #[error("no listener: give at least one --listen, --tls-listen or --local-listen")]
    NoListeners,
    /// `--tls-listen` without a certificates directory.
    #[error("--tls-listen needs --tls-certs-dir")]
    TlsCertsDir,
    /// An instance id that cannot be a ZeroMQ identity.
    #[error("--instance-id must be 1 to 200 bytes without whitespace")]
    InstanceId,
    /// An empty handler spec.
    #[error("--handler-spec must not be empty")]
    HandlerSpec,
    /// `--max-message-size` out of range.
    #[error("--max-message-size {0} is out of range: use 1..={MAX_MESSAGE_SIZE}")]
    MaxMessageSize(usize),
}

/// Validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Plain HTTP addresses to listen on (each worker binds each with `SO_REUSEPORT`).
    pub listen: Vec<SocketAddr>,
    /// HTTPS addresses to listen on (bound like `listen`).
    pub tls_listen: Vec<SocketAddr>,
    /// Where TLS certificates are (set whenever `tls_listen` is not empty).
    pub tls_certs_dir: Option<PathBuf>,
    /// Unix-domain socket listeners.
    pub local_listen: Vec<LocalListen>,
    /// ZeroMQ endpoint of the handler.
    pub handler_spec: String,
    /// Instance id (worker identities are `<id>-<index>`).
    pub instance_id: String,
    /// Worker threads (resolved: never 0).
    pub workers: usize,
    /// Per-connection buffer size.
    pub buffer_size: usize,
    /// Connection limit across workers.
    pub maxconn: usize,
    /// Inactivity timeout (HTTP and WebSocket alike).
    pub stream_timeout: Duration,
    /// Longest time from the first byte of a request head to its end.
    pub header_timeout: Duration,
    /// Negotiate permessage-deflate with WebSocket clients.
    pub compression: bool,
    /// Largest WebSocket message accepted from a client.
    pub max_message_size: usize,
    /// 0..=4.
    pub log_level: u8,
}

impl Config {
    /// Validates `args`; `cores` is what `--workers 0` resolves to.
    pub fn from_args(args: Args, cores: usize) -> Result<Self, ConfigError> {
        if !(MIN_BUFFER_SIZE..=MAX_BUFFER_SIZE).contains(&args.buffer_size) {
            return Err(ConfigError::BufferSize(args.buffer_size));
        }
        if args.workers > MAX_WORKERS {
            return Err(ConfigError::Workers(args.workers));
        }
        if args.maxconn == 0 {
            return Err(ConfigError::MaxConn);
        }
        if args.stream_timeout == 0 {
            return Err(ConfigError::StreamTimeout);
        }
        if args.header_timeout == 0 {
            return Err(ConfigError::HeaderTimeout);
        }
        if args.listen.len() + args.tls_listen.len() + args.local_listen.len() > MAX_LISTENERS {
            return Err(ConfigError::Listeners);
        }
        if args.listen.is_empty() && args.tls_listen.is_empty() && args.local_listen.is_empty() {
            return Err(ConfigError::NoListeners);
        }
        if !args.tls_listen.is_empty() && args.tls_certs_dir.is_none() {
            return Err(ConfigError::TlsCertsDir);
        }
        if args.handler_spec.trim().is_empty() {
            return Err(ConfigError::HandlerSpec);
        }
        if !(1..=MAX_MESSAGE_SIZE).contains(&args.max_message_size) {
            return Err(ConfigError::MaxMessageSize(args.max_message_size));
        }
        let instance_id = args
            .instance_id
            .unwrap_or_else(|| format!("connmgr-{}", std::process::id()));
        if instance_id.is_empty()
            || instance_id.len() > 200
            || instance_id.chars().any(char::is_whitespace)
        {
            return Err(ConfigError::InstanceId);
        }
        let workers = if args.workers == 0 {
            cores.clamp(1, MAX_WORKERS)
        } else {
            args.workers
        };
        Ok(Self {
            listen: args.listen,
            tls_listen: args.tls_listen,
            tls_certs_dir: args.tls_certs_dir,
            local_listen: args.local_listen,
            handler_spec: args.handler_spec,
            instance_id,
            workers,
            buffer_size: args.buffer_size,
            maxconn: args.maxconn,
            stream_timeout: Duration::from_secs(args.stream_timeout),
            header_timeout: Duration::from_secs(args.header_timeout),
            compression: args.compression,
            max_message_size: args.max_message_size,
            log_level: args.log_level,
        })
    }

    /// Connections each worker accepts at most: `maxconn` split evenly (at least 1 each).
    pub fn maxconn_per_worker(&self) -> usize {
        (self.maxconn / self.workers).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("holdfast-connmgr").chain(list.iter().copied()))
    }

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(
            parse_listen("127.0.0.1:81").unwrap().to_string(),
            "127.0.0.1:81"
        );
        assert_eq!(parse_listen("[::1]:82").unwrap().to_string(), "[::1]:82");
        assert_eq!(parse_listen("[::]:83").unwrap().to_string(), "[::]:83");
        for bad in [
            "",
            "host:80",
            "::1:80",
            "1.2.3.4",
            "70000",
            "0",
            "1.2.3.4:0",
        ] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults() {
        let a = args(&["--listen", "7999", "--handler-spec", "ipc:///tmp/x"]).unwrap();
        let c = Config::from_args(a, 4).unwrap();
        assert_eq!(c.listen, vec!["0.0.0.0:7999".parse().unwrap()]);
        assert_eq!(c.workers, 4);
        assert_eq!(c.buffer_size, 8192);
        assert_eq!(c.maxconn, 50_000);
        assert_eq!(c.maxconn_per_worker(), 12_500);
        assert_eq!(c.stream_timeout, Duration::from_secs(1800));
        assert_eq!(c.header_timeout, Duration::from_secs(30));
        assert_eq!(c.log_level, 2);
        assert!(!c.compression);
        assert_eq!(c.max_message_size, 16 << 20);
        assert_eq!(c.instance_id, format!("connmgr-{}", std::process::id()));
    }

    #[test]
    fn all_flags() {
        let a = args(&[
            "--listen=127.0.0.1:1",
            "--listen=[::1]:2",
            "--handler-spec=ipc:///tmp/y",
            "--instance-id=pushpin-connmgr",
            "--workers=3",
            "--buffer-size=16384",
            "--maxconn=2",
            "--stream-timeout=5",
            "--header-timeout=7",
            "--log-level=4",
            "--compression",
            "--max-message-size=1000",
            "--tls-listen=127.0.0.1:443",
            "--tls-certs-dir=/etc/certs",
            "--local-listen=/run/x/server,mode=660,user=www,group=1000",
        ])
        .unwrap();
        let c = Config::from_args(a, 8).unwrap();
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.instance_id, "pushpin-connmgr");
        assert_eq!(c.workers, 3);
        assert_eq!(c.maxconn_per_worker(), 1);
        assert_eq!(c.stream_timeout, Duration::from_secs(5));
        assert_eq!(c.header_timeout, Duration::from_secs(7));
        assert!(c.compression);
        assert_eq!(c.max_message_size, 1000);
        assert_eq!(c.tls_listen, vec!["127.0.0.1:443".parse().unwrap()]);
        assert_eq!(c.tls_certs_dir, Some(PathBuf::from("/etc/certs")));
        assert_eq!(
            c.local_listen,
            vec![LocalListen {
                path: PathBuf::from("/run/x/server"),
                mode: Some(0o660),
                user: Some("www".into()),
                group: Some("1000".into()),
            }]
        );
        for bad in ["", ",mode=1", "/s,mode=9", "/s,owner=x", "/s,user="] {
            assert!(LocalListen::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Config::from_args(args(&["--handler-spec", "x"]).unwrap(), 2),
            Err(ConfigError::NoListeners)
        );
        assert_eq!(
            Config::from_args(
                args(&["--tls-listen", "443", "--handler-spec", "x"]).unwrap(),
                2
            ),
            Err(ConfigError::TlsCertsDir)
        );
        assert!(args(&["--listen", "1", "--handler-spec", "x", "--log-level", "5"]).is_err());
        let base = ["--listen", "1", "--handler-spec", "x"];
        let check = |extra: &[&str], expected: ConfigError| {
            let mut list = base.to_vec();
            list.extend_from_slice(extra);
            assert_eq!(Config::from_args(args(&list).unwrap(), 2), Err(expected));
        };
        check(&["--buffer-size", "10"], ConfigError::BufferSize(10));
        check(&["--workers", "5000"], ConfigError::Workers(5000));
        check(&["--maxconn", "0"], ConfigError::MaxConn);
        check(&["--stream-timeout", "0"], ConfigError::StreamTimeout);
        check(&["--header-timeout", "0"], ConfigError::HeaderTimeout);
        check(&["--instance-id", "a b"], ConfigError::InstanceId);
        check(&["--max-message-size", "0"], ConfigError::MaxMessageSize(0));
        let huge = (MAX_MESSAGE_SIZE + 1).to_string();
        check(
            &["--max-message-size", &huge],
            ConfigError::MaxMessageSize(MAX_MESSAGE_SIZE + 1),
        );
        let a = args(&["--listen", "1", "--handler-spec", " "]).unwrap();
        assert_eq!(Config::from_args(a, 2), Err(ConfigError::HandlerSpec));
    }
}
