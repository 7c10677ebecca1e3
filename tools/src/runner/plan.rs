//! Turns the command line and the configuration into the exact child command lines to start.
//!
//! Pure: no process is started and no file touched here, so every decision the runner makes
//! about its children is unit-tested below.

use std::net::SocketAddr;
use std::path::PathBuf;

use holdfast_proto::config::{Config, Listen, LogLevels};

use super::args::Args;

/// The two processes Holdfast is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `holdfast-connmgr`: client sockets.
    Connmgr,
    /// `holdfast-handler`: routes, backends, GRIP, publishing.
    Handler,
}

impl Service {
    /// The executable's file name.
    pub fn program(self) -> &'static str {
        match self {
            Self::Connmgr => "holdfast-connmgr",
            Self::Handler => "holdfast-handler",
        }
    }

    /// The short name used in `--loglevel service:N` lists and log lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::Connmgr => "connmgr",
            Self::Handler => "handler",
        }
    }
}

/// One child process to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSpec {
    /// Which service.
    pub service: Service,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where its output goes; `None` = merged into the runner's output.
    pub log_file: Option<PathBuf>,
    /// Where its pid is written.
    pub pid_file: PathBuf,
}

/// Everything the runner will do, decided up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Directory for ipc sockets and pid files (created at start).
    pub rundir: PathBuf,
    /// Directory for per-service log files (created at start), unless output is merged.
    pub logdir: Option<PathBuf>,
    /// The runner's own log level.
    pub runner_level: u8,
    /// Children in start order (the handler binds the socket the connmgr connects to).
    pub children: Vec<ChildSpec>,
    /// Informational lines to log once at start (ignored services and the like).
    pub notes: Vec<String>,
}

/// Why the command line or configuration cannot be turned into a plan.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `--loglevel` is malformed.
    #[error("invalid --loglevel: {0}")]
    LogLevel(String),
    /// `--port` is malformed.
    #[error("invalid --port '{0}': expected [addr:]port, e.g. 8080 or 127.0.0.1:8080")]
    Port(String),
    /// No HTTP listener is configured.
    #[error("no server ports configured: set [runner] http_port or pass --port")]
    NoPorts,
}

/// The log level of each process, from `--loglevel`/`--verbose`/`[runner] log_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    /// The runner's level.
    pub runner: u8,
    /// holdfast-connmgr's level.
    pub connmgr: u8,
    /// holdfast-handler's level (it does the work of Pushpin's proxy and handler, so the higher
    /// of the two levels applies).
    pub handler: u8,
}

impl Levels {
    fn from(levels: &LogLevels) -> Self {
        Self {
            runner: levels.for_service("runner"),
            connmgr: levels.for_service("connmgr"),
            handler: levels
                .for_service("handler")
                .max(levels.for_service("proxy")),
        }
    }
}

/// Parses `--port`'s `[addr:]port` (`[v6]:port` accepted) with the same rules as
/// `[runner] http_port`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, PlanError> {
    Listen::parse(text)
        .map(|l| l.addr)
        .map_err(|_| PlanError::Port(text.to_string()))
}

/// Decides what to start.
pub fn plan(args: &Args, config: &Config) -> Result<Plan, PlanError> {
    let levels = match (&args.loglevel, args.verbose) {
        (Some(text), _) => Levels::from(&text.parse::<LogLevels>().map_err(PlanError::LogLevel)?),
        (None, true) => Levels {
            runner: 3,
            connmgr: 3,
            handler: 3,
        },
        (None, false) => Levels::from(&config.runner.log_levels),
    };

    // The config loader has already rejected unknown service names and turned Pushpin's aliases
    // into canonical ones; Holdfast always runs both of its processes.
    let notes = config
        .runner
        .services
        .iter()
        .filter(|name| matches!(name.as_str(), "zurl" | "mongrel2" | "m2adapter"))
        .map(|name| {
            format!(
                "service '{name}' is not needed by Holdfast (holdfast-handler makes backend requests and holdfast-connmgr serves clients); ignored"
            )
        })
        .collect();

    // `--port` replaces every configured listener, TLS ones included (as Pushpin's runner).
    let (listens, tls_listens, locals) = match &args.port {
        Some(port) => (vec![parse_listen(port)?], Vec::new(), Vec::new()),
        None => (
            config.runner.http_ports.iter().map(|l| l.addr).collect(),
            config
                .runner
                .https_ports
                .iter()
                .map(|l| l.addr)
                .collect::<Vec<_>>(),
            config.runner.local_ports.clone(),
        ),
    };
    if listens.is_empty() && tls_listens.is_empty() && locals.is_empty() {
        return Err(PlanError::NoPorts);
    }

    // Pushpin prefixes log and pid file names with the ipc prefix only when --id is given.
    let file_prefix = if args.id.is_some() {
        config.ipc_prefix.as_str()
    } else {
        ""
    };
    let merged = args.merge_output || config.runner.logdir.is_none();
    let logdir = if merged {
        None
    } else {
        config.runner.logdir.clone()
    };
    let log_file = |service: Service| {
        logdir
            .as_ref()
            .map(|dir| dir.join(format!("{file_prefix}{}.log", service.program())))
    };
    let pid_file = |service: Service| {
        config
            .rundir
            .join(format!("{file_prefix}{}.pid", service.program()))
    };
    let spec = config.connmgr_spec();

    let mut handler_args = Vec::new();
    if let Some(path) = &config.path {
        handler_args.push(format!("--config={}", path.display()));
    }
    if let Some(id) = args.id {
        handler_args.push(format!("--id={id}"));
    }
    for route in &args.route {
        handler_args.push(format!("--route={route}"));
    }
    handler_args.push(format!("--connmgr-spec={spec}"));
    handler_args.push(format!("--log-level={}", levels.handler));

    let mut connmgr_args: Vec<String> = listens.iter().map(|a| format!("--listen={a}")).collect();
    if !tls_listens.is_empty() {
        connmgr_args.extend(tls_listens.iter().map(|a| format!("--tls-listen={a}")));
        connmgr_args.push(format!(
            "--tls-certs-dir={}",
            config.runner.certs_dir.display()
        ));
    }
    for local in &locals {
        let mut arg = format!("--local-listen={}", local.path.display());
        if let Some(mode) = local.mode {
            arg.push_str(&format!(",mode={mode:o}"));
        }
        if let Some(user) = &local.user {
            arg.push_str(&format!(",user={user}"));
        }
        if let Some(group) = &local.group {
            arg.push_str(&format!(",group={group}"));
        }
        connmgr_args.push(arg);
    }
    connmgr_args.push(format!("--handler-spec={spec}"));
    connmgr_args.push(format!("--instance-id={}connmgr", config.ipc_prefix));
    connmgr_args.push(format!("--workers={}", config.runner.connmgr_workers));
    connmgr_args.push(format!(
        "--buffer-size={}",
        config.runner.client_buffer_size
    ));
    connmgr_args.push(format!("--maxconn={}", config.runner.client_maxconn));
    connmgr_args.push(format!(
        "--header-timeout={}",
        config.runner.client_header_timeout
    ));
    if config.runner.allow_compression {
        connmgr_args.push("--compression".to_string());
    }
    connmgr_args.push(format!("--log-level={}", levels.connmgr));

    let children = vec![
        ChildSpec {
            service: Service::Handler,
            args: handler_args,
            log_file: log_file(Service::Handler),
            pid_file: pid_file(Service::Handler),
        },
        ChildSpec {
            service: Service::Connmgr,
            args: connmgr_args,
            log_file: log_file(Service::Connmgr),
            pid_file: pid_file(Service::Connmgr),
        },
    ];

    Ok(Plan {
        rundir: config.rundir.clone(),
        logdir,
        runner_level: levels.runner,
        children,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use holdfast_proto::config::{LocalListen, Overrides};

    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::parse_from(std::iter::once("holdfast").chain(list.iter().copied()))
    }

    #[test]
    fn log_levels() {
        let config = Config::builtin(&Overrides::default());
        let levels = |list: &[&str]| {
            plan(&args(list), &config).map(|p| {
                let level = |s: &ChildSpec| {
                    s.args
                        .iter()
                        .find(|a| a.starts_with("--log-level="))
                        .cloned()
                };
                (p.runner_level, level(&p.children[0]), level(&p.children[1]))
            })
        };
        assert_eq!(
            levels(&["--loglevel=3"]).unwrap(),
            (
                3,
                Some("--log-level=3".into()),
                Some("--log-level=3".into())
            )
        );
        assert_eq!(
            levels(&["--loglevel=condure:4,proxy:1"]).unwrap(),
            (
                2,
                Some("--log-level=2".into()),
                Some("--log-level=4".into())
            )
        );
        assert_eq!(levels(&["--verbose"]).unwrap().0, 3);
        assert!(matches!(
            levels(&["--loglevel=x"]),
            Err(PlanError::LogLevel(_))
        ));
    }

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(
            parse_listen("127.0.0.1:81").unwrap().to_string(),
            "127.0.0.1:81"
        );
        assert_eq!(parse_listen("[::1]:82").unwrap().to_string(), "[::1]:82");
        assert_eq!(
            parse_listen("host:x"),
            Err(PlanError::Port("host:x".into()))
        );
    }

    #[test]
    fn builtin_defaults_merge_output_and_listen_on_7999() {
        let config = Config::builtin(&Overrides::default());
        let plan = plan(&args(&[]), &config).unwrap();
        assert_eq!(plan.logdir, None);
        assert_eq!(plan.children.len(), 2);
        let handler = &plan.children[0];
        assert_eq!(handler.service, Service::Handler);
        assert!(handler.log_file.is_none());
        let connmgr = &plan.children[1];
        assert!(connmgr.args.contains(&"--listen=0.0.0.0:7999".to_string()));
        assert!(connmgr.args.contains(&"--buffer-size=8192".to_string()));
        assert!(connmgr.args.contains(&"--header-timeout=30".to_string()));
        let spec = config.connmgr_spec();
        assert!(connmgr.args.contains(&format!("--handler-spec={spec}")));
        assert!(handler.args.contains(&format!("--connmgr-spec={spec}")));
    }

    #[test]
    fn flags_reach_the_children() {
        let config = Config::builtin(&Overrides {
            id: Some(2),
            ..Overrides::default()
        });
        let plan = plan(
            &args(&[
                "--port",
                "127.0.0.1:9000",
                "--route",
                "* test",
                "--id",
                "2",
                "--verbose",
            ]),
            &config,
        )
        .unwrap();
        let handler = &plan.children[0];
        assert!(handler.args.contains(&"--route=* test".to_string()));
        assert!(handler.args.contains(&"--id=2".to_string()));
        assert!(handler.args.contains(&"--log-level=3".to_string()));
        assert!(plan.children[1]
            .args
            .contains(&"--listen=127.0.0.1:9000".to_string()));
        assert!(plan.children[1]
            .pid_file
            .ends_with("p2-holdfast-connmgr.pid"));
    }

    #[test]
    fn pushpin_services_are_accepted_and_unneeded_ones_noted() {
        let mut config = Config::builtin(&Overrides::default());
        config.runner.services = vec![
            "connmgr".into(),
            "zurl".into(),
            "proxy".into(),
            "handler".into(),
        ];
        let plan = plan(&args(&[]), &config).unwrap();
        assert_eq!(plan.notes.len(), 1);
        assert!(plan.notes[0].contains("'zurl'"));
        config.runner.http_ports.clear();
        assert_eq!(super::plan(&args(&[]), &config), Err(PlanError::NoPorts));
    }

    #[test]
    fn allow_compression_enables_websocket_deflate() {
        let mut config = Config::builtin(&Overrides::default());
        assert!(!plan(&args(&[]), &config).unwrap().children[1]
            .args
            .contains(&"--compression".to_string()));
        config.runner.allow_compression = true;
        assert!(plan(&args(&[]), &config).unwrap().children[1]
            .args
            .contains(&"--compression".to_string()));
    }

    #[test]
    fn https_ports_become_tls_listeners_with_the_certs_dir() {
        let mut config = Config::builtin(&Overrides::default());
        config.runner.https_ports = vec![
            Listen::parse("127.0.0.1:8443").unwrap(),
            Listen::parse("443").unwrap(),
        ];
        config.runner.certs_dir = PathBuf::from("/etc/pushpin/runner/certs");
        let args_of = |config: &Config, list: &[&str]| {
            plan(&args(list), config).unwrap().children[1].args.clone()
        };
        let connmgr = args_of(&config, &[]);
        assert!(connmgr.contains(&"--listen=0.0.0.0:7999".to_string()));
        assert!(connmgr.contains(&"--tls-listen=127.0.0.1:8443".to_string()));
        assert!(connmgr.contains(&"--tls-listen=0.0.0.0:443".to_string()));
        assert!(connmgr.contains(&"--tls-certs-dir=/etc/pushpin/runner/certs".to_string()));

        // HTTPS only is enough to start.
        config.runner.http_ports.clear();
        let connmgr = args_of(&config, &[]);
        assert!(!connmgr.iter().any(|a| a.starts_with("--listen=")));
        assert!(connmgr.contains(&"--tls-listen=0.0.0.0:443".to_string()));

        // local_ports become Unix-socket listeners with their options.
        config.runner.local_ports = vec![LocalListen::parse(
            "/run/p/server?mode=660&user=www",
            std::path::Path::new("/etc"),
        )
        .unwrap()];
        let connmgr = args_of(&config, &[]);
        assert!(connmgr.contains(&"--local-listen=/run/p/server,mode=660,user=www".to_string()));

        // --port replaces every listener.
        let connmgr = args_of(&config, &["--port", "9000"]);
        assert!(connmgr.contains(&"--listen=0.0.0.0:9000".to_string()));
        assert!(!connmgr.iter().any(|a| a.starts_with("--tls-")));
        assert!(!connmgr.iter().any(|a| a.starts_with("--local-")));
    }

    #[test]
    fn logdir_gives_per_service_files_unless_merged() {
        let mut config = Config::builtin(&Overrides::default());
        config.runner.logdir = Some(PathBuf::from("/var/log/x"));
        let plan = plan(&args(&[]), &config).unwrap();
        assert_eq!(
            plan.children[1].log_file.as_deref(),
            Some(std::path::Path::new("/var/log/x/holdfast-connmgr.log"))
        );
        let merged = super::plan(&args(&["-m"]), &config).unwrap();
        assert!(merged.children.iter().all(|c| c.log_file.is_none()));
    }
}
