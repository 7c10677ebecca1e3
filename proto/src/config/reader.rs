//! Typed access to the merged main and include files: placeholder substitution, the port
//! offset, and one parser per section. Every failure names the section and key.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::ini::{Ini, Value};
use super::values::{
    join, offset_tcp_ports, parse_bool, parse_limit, parse_octal, parse_services, parse_uint,
};
use super::{
    invalid, ConfigError, ConfigWarning, HandlerConfig, Listen, LocalListen, LogLevels,
    MetricsListen, Overrides, ProxyConfig, RunnerConfig, StatsFormat, XffRule, DEFAULT_SOCKJS_URL,
    PUSHPIN_LIBDIR,
};

/// The placeholder values and port offset, after overrides.
#[derive(Clone, Debug)]
pub(super) struct Vars {
    pub(super) libdir: String,
    pub(super) rundir: String,
    pub(super) ipc_prefix: String,
    pub(super) port_offset: u16,
}

impl Vars {
    fn resolve(&self, s: &str) -> Result<String, String> {
        let s = s
            .replace("{libdir}", &self.libdir)
            .replace("{rundir}", &self.rundir)
            .replace("{ipc_prefix}", &self.ipc_prefix);
        offset_tcp_ports(&s, self.port_offset)
    }
}

/// Typed access to the merged main + include files.
pub(super) struct Reader<'a> {
    main: &'a Ini,
    include: Option<&'a Ini>,
    pub(super) vars: Vars,
}

impl<'a> Reader<'a> {
    pub(super) fn new(
        main: &'a Ini,
        include: Option<&'a Ini>,
        dir: &Path,
        overrides: &Overrides,
        warnings: &mut Vec<ConfigWarning>,
    ) -> Result<Self, ConfigError> {
        let mut reader = Self {
            main,
            include,
            vars: Vars {
                libdir: String::new(),
                rundir: String::new(),
                ipc_prefix: String::new(),
                port_offset: 0,
            },
        };
        let path_text = |p: PathBuf| p.to_string_lossy().into_owned();
        reader.vars.libdir = match reader.raw_text("global", "libdir")? {
            Some(l) if !l.is_empty() => path_text(join(dir, &l)),
            _ => PUSHPIN_LIBDIR.into(),
        };
        let rundir = match reader.raw_text("global", "rundir")? {
            Some(r) if !r.is_empty() => Some(r),
            _ => {
                let deprecated = reader
                    .raw_text("runner", "rundir")?
                    .filter(|r| !r.is_empty());
                if deprecated.is_some() {
                    warnings.push(ConfigWarning::Deprecated {
                        section: "runner".into(),
                        key: "rundir".into(),
                        message: "move it to [global]".into(),
                    });
                }
                deprecated
            }
        };
        reader.vars.rundir = match rundir {
            Some(r) => path_text(join(dir, &r)),
            None => path_text(std::env::temp_dir().join("holdfast")),
        };
        reader.vars.ipc_prefix = match overrides.ipc_prefix() {
            Some(p) => p,
            None => reader
                .raw_text("global", "ipc_prefix")?
                .unwrap_or_else(|| "pushpin-".into()),
        };
        reader.vars.port_offset = match overrides.offset()? {
            Some(o) => o,
            None => match reader.raw_text("global", "port_offset")? {
                Some(o) if !o.trim().is_empty() => {
                    parse_uint(&o).map_err(|m| invalid("global", "port_offset", m))?
                }
                _ => 0,
            },
        };
        Ok(reader)
    }

    fn raw(&self, section: &str, key: &str) -> Option<&'a Value> {
        self.main
            .get(section, key)
            .or_else(|| self.include.and_then(|i| i.get(section, key)))
            .map(|e| &e.value)
    }

    fn single<'v>(section: &str, key: &str, value: &'v Value) -> Result<&'v str, ConfigError> {
        value.as_single().ok_or_else(|| {
            invalid(
                section,
                key,
                format!(
                    "expected one value but found a comma-separated list `{}`; put the value in double quotes if the comma belongs to it",
                    value.items().join(",")
                ),
            )
        })
    }

    /// A single value without placeholder substitution (the `[global]` basics, as Pushpin).
    fn raw_text(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        self.raw(section, key)
            .map(|v| Self::single(section, key, v).map(str::to_string))
            .transpose()
    }

    /// A single value with placeholders and the port offset applied.
    fn text(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        let Some(value) = self.raw(section, key) else {
            return Ok(None);
        };
        let s = Self::single(section, key, value)?;
        self.vars
            .resolve(s)
            .map(Some)
            .map_err(|m| invalid(section, key, m))
    }

    /// A single value where empty means absent.
    fn nonempty(&self, section: &str, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.text(section, key)?.filter(|s| !s.trim().is_empty()))
    }

    /// A list with empty items dropped, resolved; `None` when absent.
    fn list(&self, section: &str, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(value) = self.raw(section, key) else {
            return Ok(None);
        };
        value
            .items()
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| self.vars.resolve(s).map_err(|m| invalid(section, key, m)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn parsed<T>(
        &self,
        section: &str,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        self.nonempty(section, key)?
            .map(|s| parse(s.trim()).map_err(|m| invalid(section, key, m)))
            .transpose()
    }

    pub(super) fn uint<T: TryFrom<u64>>(
        &self,
        section: &str,
        key: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.parsed(section, key, parse_uint)
    }

    pub(super) fn bool(&self, section: &str, key: &str) -> Result<Option<bool>, ConfigError> {
        self.parsed(section, key, parse_bool)
    }

    fn limit<T: TryFrom<u64>>(&self, section: &str, key: &str) -> Result<Option<T>, ConfigError> {
        Ok(self.parsed(section, key, parse_limit)?.flatten())
    }

    fn path(&self, section: &str, key: &str, dir: &Path) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.nonempty(section, key)?.map(|p| join(dir, p.trim())))
    }

    /// `[global] include`: the file and whether a missing file is fine (Pushpin's internal.conf).
    pub(super) fn include_file(&self, dir: &Path) -> Result<Option<(PathBuf, bool)>, ConfigError> {
        let Some(raw) = self
            .raw_text("global", "include")?
            .filter(|s| !s.trim().is_empty())
        else {
            return Ok(None);
        };
        let raw = raw.trim();
        // Pushpin treats exactly "internal.conf" as "{libdir}/internal.conf".
        let raw = if raw == "internal.conf" {
            "{libdir}/internal.conf"
        } else {
            raw
        };
        let optional = raw.contains("{libdir}");
        let resolved = self
            .vars
            .resolve(raw)
            .map_err(|m| invalid("global", "include", m))?;
        Ok(Some((join(dir, &resolved), optional)))
    }

    fn listens(&self, key: &str) -> Result<Vec<Listen>, ConfigError> {
        let items = self.list("runner", key)?.unwrap_or_default();
        items
            .iter()
            .map(|s| Listen::parse(s).map_err(|m| invalid("runner", key, m)))
            .collect()
    }

    pub(super) fn runner(
        &self,
        dir: &Path,
        overrides: &Overrides,
    ) -> Result<RunnerConfig, ConfigError> {
        const S: &str = "runner";
        let services = match self.list(S, "services")? {
            Some(items) => parse_services(&items).map_err(|m| invalid(S, "services", m))?,
            None => ["connmgr", "proxy", "handler"].map(String::from).to_vec(),
        };
        let log_levels = match self.list(S, "log_level")? {
            Some(items) if !items.is_empty() => {
                LogLevels::parse_items(items.iter().map(String::as_str))
                    .map_err(|m| invalid(S, "log_level", m))?
            }
            _ => LogLevels::default(),
        };
        let local_ports = self
            .list(S, "local_ports")?
            .unwrap_or_default()
            .iter()
            .map(|s| LocalListen::parse(s, dir).map_err(|m| invalid(S, "local_ports", m)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut runner = RunnerConfig {
            services,
            http_ports: self.listens("http_port")?,
            https_ports: self.listens("https_ports")?,
            local_ports,
            certs_dir: dir.join("runner").join("certs"),
            logdir: self.path(S, "logdir", dir)?,
            log_level: log_levels.default,
            log_levels,
            client_buffer_size: self.uint(S, "client_buffer_size")?.unwrap_or(8192),
            client_maxconn: self.uint(S, "client_maxconn")?.unwrap_or(50000),
            allow_compression: self.bool(S, "allow_compression")?.unwrap_or(false),
            connmgr_workers: self.uint(S, "connmgr_workers")?.unwrap_or(0),
            // 0 would cut off every request; past the maximum it is no protection from slow heads.
            client_header_timeout: self.bounded_uint(
                S,
                "client_header_timeout",
                super::DEFAULT_CLIENT_HEADER_TIMEOUT,
                1..=super::MAX_CLIENT_HEADER_TIMEOUT,
                " (seconds)",
            )?,
        };
        if let Some(listen) = overrides.listen()? {
            runner.http_ports = vec![listen];
            runner.https_ports.clear();
            runner.local_ports.clear();
        }
        Ok(runner)
    }

    /// An unsigned `key` that must lie in `range` (`default` when absent); `unit` follows the
    /// bound in the error (`" (seconds)"`, or empty).
    fn bounded_uint(
        &self,
        section: &str,
        key: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
        unit: &str,
    ) -> Result<u64, ConfigError> {
        let value: u64 = self.uint(section, key)?.unwrap_or(default);
        if value < *range.start() {
            let message = format!("must be at least {}{unit}", range.start());
            return Err(invalid(section, key, message));
        }
        if value > *range.end() {
            let message = format!("must be at most {}{unit}", range.end());
            return Err(invalid(section, key, message));
        }
        Ok(value)
    }

    pub(super) fn proxy(&self, dir: &Path) -> Result<ProxyConfig, ConfigError> {
        const S: &str = "proxy";
        let xff = |key: &str| -> Result<XffRule, ConfigError> {
            let items = self.list(S, key)?.unwrap_or_default();
            XffRule::parse_items(items.iter().map(String::as_str)).map_err(|m| invalid(S, key, m))
        };
        let set_xfp = self.parsed(S, "set_x_forwarded_protocol", |s| match s {
            "true" => Ok(Some(true)),
            "proto-only" => Ok(Some(false)),
            "false" => Ok(None),
            _ => Err(format!(
                "`{s}`: use `true` (X-Forwarded-Proto and X-Forwarded-Protocol), `proto-only` or `false`"
            )),
        })?;
        // Bounded by MAX_PROXY_WORKERS, so the cast is lossless.
        let workers =
            self.bounded_uint(S, "workers", 1, 1..=super::MAX_PROXY_WORKERS as u64, "")? as usize;
        Ok(ProxyConfig {
            routesfile: self.path(S, "routesfile", dir)?,
            debug: self.bool(S, "debug")?.unwrap_or(false),
            auto_cross_origin: self.bool(S, "auto_cross_origin")?.unwrap_or(false),
            accept_x_forwarded_protocol: self
                .bool(S, "accept_x_forwarded_protocol")?
                .unwrap_or(false),
            set_x_forwarded_protocol: set_xfp.flatten(),
            x_forwarded_for: xff("x_forwarded_for")?,
            x_forwarded_for_trusted: xff("x_forwarded_for_trusted")?,
            orig_headers_need_mark: self.list(S, "orig_headers_need_mark")?.unwrap_or_default(),
            accept_pushpin_route: self.bool(S, "accept_pushpin_route")?.unwrap_or(false),
            cdn_loop: self.nonempty(S, "cdn_loop")?,
            log_from: self.bool(S, "log_from")?.unwrap_or(false),
            log_user_agent: self.bool(S, "log_user_agent")?.unwrap_or(false),
            sig_iss: self.text(S, "sig_iss")?.unwrap_or_else(|| "pushpin".into()),
            sig_key: self.text(S, "sig_key")?.unwrap_or_default(),
            upstream_key: self.text(S, "upstream_key")?.unwrap_or_default(),
            sockjs_url: self
                .nonempty(S, "sockjs_url")?
                .unwrap_or_else(|| DEFAULT_SOCKJS_URL.into()),
            workers,
            max_open_requests: self.limit(S, "max_open_requests")?,
            ipc_file_mode: self.parsed(S, "ipc_file_mode", parse_octal)?,
            stats_report_interval: self.uint(S, "stats_report_interval")?.unwrap_or(10),
            stats_connections_max_ttl: self.uint(S, "stats_connections_max_ttl")?.unwrap_or(60),
            prometheus: self.parsed(S, "prometheus_port", |s| MetricsListen::parse(s, dir))?,
            prometheus_prefix: self.text(S, "prometheus_prefix")?.unwrap_or_default(),
        })
    }

    pub(super) fn handler(&self, dir: &Path) -> Result<HandlerConfig, ConfigError> {
        const S: &str = "handler";
        let mut push_in_sub_specs = self.list(S, "push_in_sub_specs")?.unwrap_or_default();
        push_in_sub_specs.extend(self.nonempty(S, "push_in_sub_spec")?);
        let push_in_http_addr = self
            .nonempty(S, "push_in_http_addr")?
            .map(|a| a.trim().to_string())
            .unwrap_or_else(|| "127.0.0.1".into());
        if push_in_http_addr.parse::<IpAddr>().is_err() {
            return Err(invalid(
                S,
                "push_in_http_addr",
                format!("`{push_in_http_addr}` is not an IP address; use e.g. 127.0.0.1"),
            ));
        }
        let offset = self.vars.port_offset;
        let push_in_http_port = match self.uint::<u16>(S, "push_in_http_port")? {
            None | Some(0) => None,
            Some(port) => Some(port.checked_add(offset).ok_or_else(|| {
                invalid(
                    S,
                    "push_in_http_port",
                    format!("{port} plus port_offset {offset} is above 65535; lower one of them"),
                )
            })?),
        };
        let size = |new: &str, old: &str, default: usize| -> Result<usize, ConfigError> {
            Ok(match self.uint(S, new)? {
                Some(n) => n,
                None => self.uint(S, old)?.unwrap_or(default),
            })
        };
        let stats_format = self
            .parsed(S, "stats_format", |s| match s {
                "tnetstring" => Ok(StatsFormat::Tnetstring),
                "json" => Ok(StatsFormat::Json),
                _ => Err(format!("`{s}`: use `tnetstring` or `json`")),
            })?
            .unwrap_or_default();
        Ok(HandlerConfig {
            push_in_spec: self.nonempty(S, "push_in_spec")?,
            push_in_sub_specs,
            push_in_sub_connect: self.bool(S, "push_in_sub_connect")?.unwrap_or(false),
            push_in_http_addr,
            push_in_http_port,
            push_in_http_max_headers_size: size(
                "push_in_http_max_headers_size",
                "push_in_max_headers_size",
                10000,
            )?,
            push_in_http_max_body_size: size(
                "push_in_http_max_body_size",
                "push_in_max_body_size",
                1_000_000,
            )?,
            command_spec: self.nonempty(S, "command_spec")?,
            stats_spec: self.nonempty(S, "stats_spec")?,
            state_spec: self.nonempty(S, "state_spec")?,
            ipc_file_mode: self.parsed(S, "ipc_file_mode", parse_octal)?,
            share_all: self.bool(S, "share_all")?.unwrap_or(false),
            message_rate: self.limit(S, "message_rate")?,
            message_hwm: self.limit(S, "message_hwm")?,
            message_block_size: self.limit(S, "message_block_size")?,
            message_wait: self.uint(S, "message_wait")?.unwrap_or(5000),
            id_cache_ttl: self.uint(S, "id_cache_ttl")?.unwrap_or(0),
            update_on_first_subscription: self
                .bool(S, "update_on_first_subscription")?
                .unwrap_or(true),
            connection_subscription_max: self.uint(S, "connection_subscription_max")?.unwrap_or(20),
            subscription_linger: self.uint(S, "subscription_linger")?.unwrap_or(60),
            stats_subscription_ttl: self.uint(S, "stats_subscription_ttl")?.unwrap_or(60),
            stats_report_interval: self.uint(S, "stats_report_interval")?.unwrap_or(10),
            stats_format,
            prometheus: self.parsed(S, "prometheus_port", |s| MetricsListen::parse(s, dir))?,
            prometheus_prefix: self.text(S, "prometheus_prefix")?.unwrap_or_default(),
        })
    }
}
