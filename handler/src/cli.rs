//! Command line and the settings derived from it plus the config file.

use std::path::PathBuf;

use clap::Parser;
use holdfast_proto::config::{Config, ConfigWarning, Overrides};

use crate::error::RunError;
use crate::routes::RoutesSource;

/// `holdfast-handler`: routes client requests from holdfast-connmgr to backends.
#[derive(Clone, Debug, Parser)]
#[command(name = "holdfast-handler", version, about)]
pub struct Args {
    /// Config file (pushpin.conf syntax). Without it the built-in defaults apply.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override `[global] ipc_prefix`.
    #[arg(long, value_name = "PREFIX")]
    pub ipc_prefix: Option<String>,

    /// Override `[global] port_offset`.
    #[arg(long, value_name = "N")]
    pub port_offset: Option<u16>,

    /// Instance number: sets ipc_prefix to `p<N>-` and port_offset to `N*10`.
    #[arg(long, value_name = "N")]
    pub id: Option<u32>,

    /// A route line (repeatable); replaces the routes file, which is then not watched.
    #[arg(long = "route", value_name = "LINE")]
    pub routes: Vec<String>,

    /// ZeroMQ endpoint the ROUTER socket binds for connmgr workers
    /// (default: `ipc://{rundir}/{ipc_prefix}holdfast-connmgr`).
    #[arg(long, value_name = "SPEC")]
    pub connmgr_spec: Option<String>,

    /// Name used in logs (default `handler-<pid>`).
    #[arg(long, value_name = "ID")]
    pub instance_id: Option<String>,

    /// 0 error, 1 warn, 2 info, 3 debug, 4 trace (default: `[runner] log_level`, 2).
    #[arg(long, value_name = "0..4", value_parser = clap::value_parser!(u8).range(0..=4))]
    pub log_level: Option<u8>,
}

/// Everything the handler needs to run, resolved from [`Args`] and the config.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The loaded (or built-in) configuration.
    pub config: Config,
    /// Warnings from loading the configuration, logged once logging is up.
    pub config_warnings: Vec<ConfigWarning>,
    /// Where routes come from.
    pub routes: RoutesSource,
    /// The ROUTER bind endpoint.
    pub connmgr_spec: String,
    /// Name used in logs.
    pub instance_id: String,
    /// Effective log level, 0..=4.
    pub log_level: u8,
}

impl Settings {
    /// Loads the config (if any) and resolves every default.
    pub fn from_args(args: Args) -> Result<Self, RunError> {
        let overrides = Overrides {
            id: args.id,
            ipc_prefix: args.ipc_prefix,
            port_offset: args.port_offset,
            port: None,
        };
        let (config, config_warnings) = match &args.config {
            Some(path) => Config::load(path, &overrides)?,
            None => {
                overrides.check()?;
                (Config::builtin(&overrides), Vec::new())
            }
        };
        let routes = if !args.routes.is_empty() {
            RoutesSource::Lines(args.routes)
        } else if let Some(path) = &config.proxy.routesfile {
            RoutesSource::File(path.clone())
        } else if config.path.is_none() {
            // No config file at all: like Pushpin's shipped `routes` file, send everything to the
            // built-in test backend so a newcomer can try Holdfast with curl straight away.
            RoutesSource::Lines(vec![DEFAULT_ROUTE.to_string()])
        } else {
            RoutesSource::None
        };
        let connmgr_spec = args.connmgr_spec.unwrap_or_else(|| config.connmgr_spec());
        let instance_id = args
            .instance_id
            .unwrap_or_else(|| format!("handler-{}", std::process::id()));
        let log_level = args.log_level.unwrap_or(config.runner.log_level).min(4);
        Ok(Self {
            config,
            config_warnings,
            routes,
            connmgr_spec,
            instance_id,
            log_level,
        })
    }
}

/// The route used when Holdfast runs without any config file.
pub const DEFAULT_ROUTE: &str = "* test";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_builtin_config() {
        let args = Args::parse_from(["holdfast-handler"]);
        let settings = Settings::from_args(args).unwrap();
        assert_eq!(settings.log_level, 2);
        assert!(settings.connmgr_spec.starts_with("ipc://"));
        assert!(settings.connmgr_spec.ends_with("pushpin-holdfast-connmgr"));
        assert!(settings.instance_id.starts_with("handler-"));
        assert!(matches!(&settings.routes, RoutesSource::Lines(l) if l == &[DEFAULT_ROUTE]));
    }

    #[test]
    fn flags_override() {
        let args = Args::parse_from([
            "holdfast-handler",
            "--id=3",
            "--route=* test",
            "--route",
            "example.com 127.0.0.1:80",
            "--connmgr-spec=ipc:///tmp/x",
            "--instance-id=h1",
            "--log-level=4",
        ]);
        let settings = Settings::from_args(args).unwrap();
        assert_eq!(settings.connmgr_spec, "ipc:///tmp/x");
        assert_eq!(settings.instance_id, "h1");
        assert_eq!(settings.log_level, 4);
        assert_eq!(settings.config.ipc_prefix, "p3-");
        match settings.routes {
            RoutesSource::Lines(lines) => assert_eq!(lines.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn log_level_range_is_checked() {
        assert!(Args::try_parse_from(["holdfast-handler", "--log-level=5"]).is_err());
    }
}
