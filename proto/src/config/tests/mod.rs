//! Tests of [`Config::load`] on in-memory files (through [`Config::load_with`]): defaults,
//! every key, placeholders, port offset, overrides, warnings and errors. Real Pushpin files,
//! includes on disk and the built-in defaults are in [`files`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::*;

mod files;

const MAIN: &str = "/etc/cfg/pushpin.conf";

/// Loads `main` as `/etc/cfg/pushpin.conf`, with `files` as the other readable files.
fn load_files(
    main: &str,
    files: &[(&str, &str)],
    overrides: &Overrides,
) -> Result<(Config, Vec<ConfigWarning>), ConfigError> {
    let mut fs: HashMap<PathBuf, String> = files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect();
    fs.insert(PathBuf::from(MAIN), main.to_string());
    Config::load_with(Path::new(MAIN), overrides, |p| {
        fs.get(p)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    })
}

/// Loads `main` with no other files and no overrides, expecting no warnings.
fn load(main: &str) -> Config {
    let (config, warnings) = load_files(main, &[], &Overrides::default()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    config
}

fn load_err(main: &str) -> (String, String, String) {
    match load_files(main, &[], &Overrides::default()) {
        Err(ConfigError::InvalidValue {
            section,
            key,
            message,
        }) => (section, key, message),
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn listen(s: &str) -> Listen {
    Listen { addr: addr(s) }
}

fn with_id(id: u32) -> Overrides {
    Overrides {
        id: Some(id),
        ..Overrides::default()
    }
}

#[test]
fn every_reference_key_is_accepted() {
    let text = "\
[global]
include=
libdir=/opt/pushpin/lib
rundir=/r
ipc_prefix=x-
port_offset=0
stats_connection_ttl=100
stats_connection_send=false
[runner]
services=connmgr,proxy,handler
http_port=7999
https_ports=443
local_ports=/r/server
logdir=/l
log_level=2
client_buffer_size=8192
client_maxconn=50000
allow_compression=true
mongrel2_bin=mongrel2
m2sh_bin=m2sh
zurl_bin=zurl
condure_bin=condure
connmgr_workers=4
client_header_timeout=12
[proxy]
routesfile=routes
debug=true
auto_cross_origin=true
accept_x_forwarded_protocol=true
set_x_forwarded_protocol=true
x_forwarded_for=truncate:0,append
x_forwarded_for_trusted=append
orig_headers_need_mark=Authorization,Cookie
accept_pushpin_route=true
cdn_loop=holdfast
log_from=true
log_user_agent=true
sig_iss=iss
sig_key=base64:c2VjcmV0
upstream_key=up
sockjs_url=http://example.com/sockjs.js
updates_check=off
organization_name=acme
workers=2
max_open_requests=100
ipc_file_mode=770
stats_report_interval=5
stats_connections_max_ttl=30
prometheus_port=127.0.0.1:9100
prometheus_prefix=pp_
[handler]
ipc_file_mode=777
push_in_spec=tcp://127.0.0.1:5560
push_in_sub_specs=tcp://127.0.0.1:5562
push_in_sub_connect=true
push_in_http_addr=0.0.0.0
push_in_http_port=5561
push_in_http_max_headers_size=2000
push_in_http_max_body_size=3000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=tcp://127.0.0.1:5563
message_rate=100
message_hwm=200
message_block_size=300
message_wait=400
id_cache_ttl=500
update_on_first_subscription=false
connection_subscription_max=600
subscription_linger=700
stats_subscription_ttl=800
stats_report_interval=900
stats_format=json
prometheus_port=9101
prometheus_prefix=hp_
share_all=true
state_spec=tcp://127.0.0.1:5564
";
    let c = load(text);
    assert_eq!(c.libdir, PathBuf::from("/opt/pushpin/lib"));
    assert_eq!(c.rundir, PathBuf::from("/r"));
    assert_eq!(c.ipc_prefix, "x-");
    assert_eq!(c.stats_connection_ttl, 100);
    assert!(!c.stats_connection_send);
    let r = &c.runner;
    assert_eq!(r.https_ports, vec![listen("0.0.0.0:443")]);
    assert_eq!(r.local_ports[0].path, PathBuf::from("/r/server"));
    assert_eq!(r.logdir, Some(PathBuf::from("/l")));
    assert!(r.allow_compression);
    assert_eq!(r.connmgr_workers, 4);
    assert_eq!(r.client_header_timeout, 12);
    let p = &c.proxy;
    assert!(p.debug && p.auto_cross_origin && p.accept_x_forwarded_protocol);
    assert_eq!(p.set_x_forwarded_protocol, Some(true));
    assert_eq!(
        p.x_forwarded_for,
        XffRule {
            truncate: Some(0),
            append: true
        }
    );
    assert_eq!(
        p.x_forwarded_for_trusted,
        XffRule {
            truncate: None,
            append: true
        }
    );
    assert_eq!(p.orig_headers_need_mark, vec!["Authorization", "Cookie"]);
    assert!(p.accept_pushpin_route && p.log_from && p.log_user_agent);
    assert_eq!(p.cdn_loop.as_deref(), Some("holdfast"));
    assert_eq!(p.sig_iss, "iss");
    assert_eq!(p.sig_key, "base64:c2VjcmV0");
    assert_eq!(p.upstream_key, "up");
    assert_eq!(p.sockjs_url, "http://example.com/sockjs.js");
    assert_eq!(p.workers, 2);
    assert_eq!(p.max_open_requests, Some(100));
    assert_eq!(p.ipc_file_mode, Some(0o770));
    assert_eq!(p.stats_report_interval, 5);
    assert_eq!(p.stats_connections_max_ttl, 30);
    assert_eq!(
        p.prometheus,
        Some(MetricsListen::Tcp(addr("127.0.0.1:9100")))
    );
    assert_eq!(p.prometheus_prefix, "pp_");
    let h = &c.handler;
    assert_eq!(h.ipc_file_mode, Some(0o777));
    assert!(h.push_in_sub_connect);
    assert_eq!(h.push_in_http_listen(), Some(addr("0.0.0.0:5561")));
    assert_eq!(h.push_in_http_max_headers_size, 2000);
    assert_eq!(h.push_in_http_max_body_size, 3000);
    assert_eq!(h.stats_spec.as_deref(), Some("ipc:///r/x-stats"));
    assert_eq!(h.message_rate, Some(100));
    assert_eq!(h.message_hwm, Some(200));
    assert_eq!(h.message_block_size, Some(300));
    assert_eq!(h.message_wait, 400);
    assert_eq!(h.id_cache_ttl, 500);
    assert!(!h.update_on_first_subscription);
    assert_eq!(h.connection_subscription_max, 600);
    assert_eq!(h.subscription_linger, 700);
    assert_eq!(h.stats_subscription_ttl, 800);
    assert_eq!(h.stats_report_interval, 900);
    assert_eq!(h.stats_format, StatsFormat::Json);
    assert_eq!(h.prometheus, Some(MetricsListen::Tcp(addr("0.0.0.0:9101"))));
    assert_eq!(h.prometheus_prefix, "hp_");
    assert!(h.share_all);
    assert_eq!(h.state_spec.as_deref(), Some("tcp://127.0.0.1:5564"));
}

#[test]
fn code_defaults_for_an_empty_file() {
    let c = load("");
    assert_eq!(c.include, None);
    assert_eq!(c.rundir, std::env::temp_dir().join("holdfast"));
    assert_eq!(c.ipc_prefix, "pushpin-");
    assert_eq!(c.port_offset, 0);
    let r = &c.runner;
    assert_eq!(r.services, vec!["connmgr", "proxy", "handler"]);
    assert!(r.http_ports.is_empty());
    assert!(!r.has_listeners());
    assert_eq!(r.logdir, None);
    assert_eq!(r.log_levels, LogLevels::default());
    assert_eq!(r.connmgr_workers, 0);
    assert_eq!(r.client_header_timeout, 30);
    let p = &c.proxy;
    assert_eq!(p.routesfile, None);
    assert_eq!(p.set_x_forwarded_protocol, None);
    assert_eq!(p.sig_iss, "pushpin");
    assert_eq!(p.sig_key, "");
    assert_eq!(p.cdn_loop, None);
    assert_eq!(p.workers, 1);
    assert_eq!(p.max_open_requests, None);
    assert_eq!(p.stats_report_interval, 10);
    assert_eq!(p.stats_connections_max_ttl, 60);
    assert_eq!(p.prometheus, None);
    let h = &c.handler;
    assert_eq!(h.push_in_spec, None);
    assert!(h.push_in_sub_specs.is_empty());
    assert_eq!(h.push_in_http_port, None);
    assert_eq!(h.push_in_http_listen(), None);
    assert_eq!(h.push_in_http_addr, "127.0.0.1");
    assert_eq!(h.push_in_http_max_headers_size, 10000);
    assert_eq!(h.push_in_http_max_body_size, 1_000_000);
    assert_eq!(h.command_spec, None);
    assert_eq!(h.stats_spec, None);
    assert_eq!(h.message_rate, None);
    assert_eq!(h.message_hwm, None);
    assert_eq!(h.message_block_size, None);
    assert_eq!(h.message_wait, 5000);
    assert_eq!(h.id_cache_ttl, 0);
    assert!(h.update_on_first_subscription);
    assert_eq!(h.connection_subscription_max, 20);
    assert_eq!(h.subscription_linger, 60);
    assert_eq!(h.stats_format, StatsFormat::Tnetstring);
    assert!(!h.share_all);
}

#[test]
fn empty_values_mean_default() {
    let c = load(
        "[handler]\nmessage_wait=\nupdate_on_first_subscription=\npush_in_http_port=\nmessage_rate=\n[runner]\nlog_level=\nhttp_port=\n",
    );
    assert_eq!(c.handler.message_wait, 5000);
    assert!(c.handler.update_on_first_subscription);
    assert_eq!(c.handler.push_in_http_port, None);
    assert_eq!(c.handler.message_rate, None);
    assert_eq!(c.runner.log_level, 2);
    assert!(c.runner.http_ports.is_empty());
}

#[test]
fn negative_limits_mean_unlimited() {
    let c = load("[handler]\nmessage_rate=-1\nmessage_hwm=-1\n[proxy]\nmax_open_requests=-1\n");
    assert_eq!(c.handler.message_rate, None);
    assert_eq!(c.handler.message_hwm, None);
    assert_eq!(c.proxy.max_open_requests, None);
}

#[test]
fn push_in_size_keys_from_1_36() {
    let c = load("[handler]\npush_in_max_headers_size=111\npush_in_max_body_size=222\n");
    assert_eq!(c.handler.push_in_http_max_headers_size, 111);
    assert_eq!(c.handler.push_in_http_max_body_size, 222);
    let c = load("[handler]\npush_in_max_headers_size=111\npush_in_http_max_headers_size=333\n");
    assert_eq!(c.handler.push_in_http_max_headers_size, 333);
}

#[test]
fn legacy_push_in_sub_spec_is_appended() {
    let c = load("[handler]\npush_in_sub_specs=tcp://a:1,tcp://b:2\npush_in_sub_spec=tcp://c:3\n");
    assert_eq!(
        c.handler.push_in_sub_specs,
        vec!["tcp://a:1", "tcp://b:2", "tcp://c:3"]
    );
}

#[test]
fn http_port_lists() {
    let c = load(
        "[runner]\nhttp_port=7999, 127.0.0.1:8000 ,[::1]:8001,*:8002\nhttps_ports=443,[::]:8443\n",
    );
    assert_eq!(
        c.runner.http_ports,
        vec![
            listen("0.0.0.0:7999"),
            listen("127.0.0.1:8000"),
            listen("[::1]:8001"),
            listen("0.0.0.0:8002"),
        ]
    );
    assert_eq!(
        c.runner.https_ports,
        vec![listen("0.0.0.0:443"), listen("[::]:8443")]
    );
}

#[test]
fn port_override_replaces_all_listeners() {
    let overrides = Overrides {
        port: Some("127.0.0.1:9000".into()),
        ..Overrides::default()
    };
    let (c, _) = load_files(
        "[runner]\nhttp_port=7999\nhttps_ports=443\nlocal_ports=/tmp/s\n",
        &[],
        &overrides,
    )
    .unwrap();
    assert_eq!(c.runner.http_ports, vec![listen("127.0.0.1:9000")]);
    assert!(c.runner.https_ports.is_empty());
    assert!(c.runner.local_ports.is_empty());

    let bad = Overrides {
        port: Some("nope".into()),
        ..Overrides::default()
    };
    match load_files("", &[], &bad) {
        Err(ConfigError::InvalidValue { section, key, .. }) => {
            assert_eq!((section.as_str(), key.as_str()), ("command line", "--port"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn port_offset_from_file() {
    let c = load(
        "[global]\nport_offset=5\n[runner]\nhttp_port=7999\n[proxy]\nprometheus_port=9100\n\
         [handler]\npush_in_spec=tcp://127.0.0.1:5560\npush_in_sub_specs=tcp://127.0.0.1:5562,ipc:///x\n\
         push_in_http_port=5561\ncommand_spec=tcp://*:5563\nprometheus_port=127.0.0.1:9101\n",
    );
    assert_eq!(c.port_offset, 5);
    assert_eq!(
        c.handler.push_in_spec.as_deref(),
        Some("tcp://127.0.0.1:5565")
    );
    assert_eq!(
        c.handler.push_in_sub_specs,
        vec!["tcp://127.0.0.1:5567", "ipc:///x"]
    );
    assert_eq!(c.handler.push_in_http_port, Some(5566));
    assert_eq!(c.handler.command_spec.as_deref(), Some("tcp://*:5568"));
    // Not offset: client HTTP ports and metrics ports.
    assert_eq!(c.runner.http_ports, vec![listen("0.0.0.0:7999")]);
    assert_eq!(
        c.proxy.prometheus,
        Some(MetricsListen::Tcp(addr("0.0.0.0:9100")))
    );
    assert_eq!(
        c.handler.prometheus,
        Some(MetricsListen::Tcp(addr("127.0.0.1:9101")))
    );
}

#[test]
fn id_overrides_file_offset_and_prefix() {
    let text =
        "[global]\nport_offset=5\nipc_prefix=mine-\n[handler]\npush_in_spec=tcp://127.0.0.1:5560\n";
    let (c, _) = load_files(text, &[], &with_id(1)).unwrap();
    assert_eq!(c.port_offset, 10);
    assert_eq!(c.ipc_prefix, "p1-");
    assert_eq!(
        c.handler.push_in_spec.as_deref(),
        Some("tcp://127.0.0.1:5570")
    );
    // Explicit --ipc-prefix / --port-offset win over --id.
    let overrides = Overrides {
        id: Some(1),
        ipc_prefix: Some("z-".into()),
        port_offset: Some(3),
        port: None,
    };
    let (c, _) = load_files(text, &[], &overrides).unwrap();
    assert_eq!(c.ipc_prefix, "z-");
    assert_eq!(c.port_offset, 3);
    // Without overrides the file's values are used.
    let c = load(text);
    assert_eq!((c.ipc_prefix.as_str(), c.port_offset), ("mine-", 5));
}

#[test]
fn port_offset_overflow_is_an_error() {
    let (section, key, message) =
        load_err("[global]\nport_offset=60000\n[handler]\npush_in_spec=tcp://127.0.0.1:5560\n");
    assert_eq!(
        (section.as_str(), key.as_str()),
        ("handler", "push_in_spec")
    );
    assert!(message.contains("above 65535"), "{message}");
    let (_, key, _) = load_err("[global]\nport_offset=60000\n[handler]\npush_in_http_port=5561\n");
    assert_eq!(key, "push_in_http_port");
    let (_, key, _) = load_err("[global]\nport_offset=70000\n");
    assert_eq!(key, "port_offset");
    match load_files("", &[], &with_id(7000)) {
        Err(ConfigError::InvalidValue { key, .. }) => assert_eq!(key, "--id"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn placeholders() {
    let text = "\
[global]
rundir=/srv/run
ipc_prefix=pp-
libdir=/opt/lib
[runner]
local_ports={rundir}/{ipc_prefix}server?mode=660
[handler]
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=ipc://{libdir}/cmd
";
    let c = load(text);
    assert_eq!(
        c.runner.local_ports[0].path,
        PathBuf::from("/srv/run/pp-server")
    );
    assert_eq!(c.runner.local_ports[0].mode, Some(0o660));
    assert_eq!(
        c.handler.stats_spec.as_deref(),
        Some("ipc:///srv/run/pp-stats")
    );
    assert_eq!(
        c.handler.command_spec.as_deref(),
        Some("ipc:///opt/lib/cmd")
    );
    // --id changes the prefix substituted into values.
    let (c, _) = load_files(text, &[], &with_id(3)).unwrap();
    assert_eq!(
        c.handler.stats_spec.as_deref(),
        Some("ipc:///srv/run/p3-stats")
    );
}

#[test]
fn relative_paths_resolve_against_the_config_dir() {
    let c = load("[global]\nrundir=./run\nlibdir=lib\n[runner]\nlogdir=log\n[proxy]\nroutesfile=routes.d/main\n[handler]\nstats_spec=ipc://{rundir}/s\n");
    assert_eq!(c.rundir, PathBuf::from("/etc/cfg/run"));
    assert_eq!(c.libdir, PathBuf::from("/etc/cfg/lib"));
    assert_eq!(c.runner.logdir, Some(PathBuf::from("/etc/cfg/log")));
    assert_eq!(
        c.proxy.routesfile,
        Some(PathBuf::from("/etc/cfg/routes.d/main"))
    );
    assert_eq!(
        c.handler.stats_spec.as_deref(),
        Some("ipc:///etc/cfg/run/s")
    );
    let c = load("[proxy]\nroutesfile=/abs/routes\n");
    assert_eq!(c.proxy.routesfile, Some(PathBuf::from("/abs/routes")));
}

#[test]
fn deprecated_runner_rundir() {
    let (c, w) = load_files("[runner]\nrundir=/old/run\n", &[], &Overrides::default()).unwrap();
    assert_eq!(c.rundir, PathBuf::from("/old/run"));
    assert_eq!(
        w,
        vec![ConfigWarning::Deprecated {
            section: "runner".into(),
            key: "rundir".into(),
            message: "move it to [global]".into()
        }]
    );
    // [global] wins, silently.
    let c = load("[global]\nrundir=/new\n[runner]\nrundir=/old/run\n");
    assert_eq!(c.rundir, PathBuf::from("/new"));
}

#[test]
fn unknown_keys_are_reported_once_each() {
    let text = "toplevel=1\n[proxy]\ndebgu=true\ndebgu=false\n[Proxy]\ndebug=true\n[cache]\ncache_enable=true\n[handler]\nsig_key=x\n";
    let (c, w) = load_files(text, &[], &Overrides::default()).unwrap();
    let unknown: Vec<String> = w.iter().map(ToString::to_string).collect();
    assert_eq!(
        unknown,
        vec![
            "unknown config key [] toplevel (ignored)",
            "unknown config key [proxy] debgu (ignored)",
            "unknown config key [Proxy] debug (ignored)",
            "unknown config key [cache] cache_enable (ignored)",
            "unknown config key [handler] sig_key (ignored)",
        ]
    );
    assert!(!c.proxy.debug);
}

#[test]
fn malformed_lines_are_warnings() {
    let (c, w) = load_files(
        "[proxy]\ndebug true\nsig_iss=ok\n",
        &[],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.proxy.sig_iss, "ok");
    assert_eq!(
        w,
        vec![ConfigWarning::MalformedLine {
            path: PathBuf::from(MAIN),
            line: 2,
            text: "debug true".into()
        }]
    );
    assert_eq!(
        w[0].to_string(),
        "/etc/cfg/pushpin.conf:2: cannot parse `debug true` (ignored)"
    );
}

#[test]
fn invalid_values() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "[runner]\nhttp_port=abc\n",
            "runner",
            "http_port",
            "not a port number",
        ),
        (
            "[runner]\nhttp_port=localhost:80\n",
            "runner",
            "http_port",
            "not an IP address",
        ),
        (
            "[runner]\nhttps_ports=0\n",
            "runner",
            "https_ports",
            "not a port number",
        ),
        (
            "[runner]\nclient_maxconn=many\n",
            "runner",
            "client_maxconn",
            "not a whole number",
        ),
        (
            "[runner]\nallow_compression=maybe\n",
            "runner",
            "allow_compression",
            "use `true` or `false`",
        ),
        (
            "[runner]\nservices=condure,nginx\n",
            "runner",
            "services",
            "unknown service `nginx`",
        ),
        (
            "[runner]\nservices=condure,mongrel2\n",
            "runner",
            "services",
            "cannot run together",
        ),
        (
            "[runner]\nlog_level=loud\n",
            "runner",
            "log_level",
            "number from 0",
        ),
        (
            "[runner]\nlocal_ports=/s?mode=abc\n",
            "runner",
            "local_ports",
            "octal",
        ),
        (
            "[proxy]\ndebug=yes please\n",
            "proxy",
            "debug",
            "use `true` or `false`",
        ),
        (
            "[proxy]\nset_x_forwarded_protocol=yes\n",
            "proxy",
            "set_x_forwarded_protocol",
            "proto-only",
        ),
        (
            "[proxy]\nx_forwarded_for=truncate:x\n",
            "proxy",
            "x_forwarded_for",
            "truncate:0",
        ),
        (
            "[proxy]\nx_forwarded_for_trusted=prepend\n",
            "proxy",
            "x_forwarded_for_trusted",
            "append",
        ),
        (
            "[proxy]\nsig_iss=a,b\n",
            "proxy",
            "sig_iss",
            "double quotes",
        ),
        ("[proxy]\nworkers=0\n", "proxy", "workers", "at least 1"),
        (
            "[runner]\nclient_header_timeout=0\n",
            "runner",
            "client_header_timeout",
            "at least 1",
        ),
        (
            "[runner]\nclient_header_timeout=3601\n",
            "runner",
            "client_header_timeout",
            "at most 3600",
        ),
        (
            "[proxy]\nworkers=1025\n",
            "proxy",
            "workers",
            "at most 1024",
        ),
        (
            "[proxy]\nipc_file_mode=999\n",
            "proxy",
            "ipc_file_mode",
            "octal",
        ),
        (
            "[proxy]\nprometheus_port=ipc://\n",
            "proxy",
            "prometheus_port",
            "socket path",
        ),
        (
            "[handler]\nmessage_rate=lots\n",
            "handler",
            "message_rate",
            "no limit",
        ),
        (
            "[handler]\npush_in_http_port=http\n",
            "handler",
            "push_in_http_port",
            "not a whole number",
        ),
        (
            "[handler]\npush_in_http_port=70000\n",
            "handler",
            "push_in_http_port",
            "too large",
        ),
        (
            "[handler]\npush_in_http_addr=localhost\n",
            "handler",
            "push_in_http_addr",
            "not an IP address",
        ),
        (
            "[handler]\nstats_format=xml\n",
            "handler",
            "stats_format",
            "tnetstring",
        ),
        (
            "[global]\nport_offset=ten\n",
            "global",
            "port_offset",
            "not a whole number",
        ),
        (
            "[global]\nstats_connection_send=2\n",
            "global",
            "stats_connection_send",
            "use `true`",
        ),
    ];
    for (text, section, key, needle) in cases {
        let (s, k, message) = load_err(text);
        assert_eq!((s.as_str(), k.as_str()), (*section, *key), "{text}");
        assert!(message.contains(needle), "{text}: {message}");
    }
    let err = load_files("[runner]\nhttp_port=abc\n", &[], &Overrides::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid value for [runner] http_port: `abc`: `abc` is not a port number (1-65535)"
    );
}

#[test]
fn quoted_values_keep_commas_and_semicolons() {
    let c = load("[proxy]\nsig_key=\"a,b;c\"\ncdn_loop=\"edge; v=1\"\nsig_iss=plain ; comment\n");
    assert_eq!(c.proxy.sig_key, "a,b;c");
    assert_eq!(c.proxy.cdn_loop.as_deref(), Some("edge; v=1"));
    assert_eq!(c.proxy.sig_iss, "plain");
}

#[test]
fn set_x_forwarded_protocol_values() {
    let v = |s: &str| {
        load(&format!("[proxy]\nset_x_forwarded_protocol={s}\n"))
            .proxy
            .set_x_forwarded_protocol
    };
    assert_eq!(v("true"), Some(true));
    assert_eq!(v("proto-only"), Some(false));
    assert_eq!(v("false"), None);
    assert_eq!(v(""), None);
}

#[test]
fn log_levels_per_service() {
    let c = load("[runner]\nlog_level=1,pushpin-proxy:3,handler:4\n");
    assert_eq!(c.runner.log_level, 1);
    assert_eq!(c.runner.log_levels.for_service("proxy"), 3);
    assert_eq!(c.runner.log_levels.for_service("pushpin-handler"), 4);
    assert_eq!(c.runner.log_levels.for_service("connmgr"), 1);
}

#[test]
fn services_as_listed() {
    let c = load("[runner]\nservices=condure,zurl,pushpin-proxy,pushpin-handler\n");
    assert_eq!(
        c.runner.services,
        vec!["connmgr", "zurl", "proxy", "handler"]
    );
    let c = load("[runner]\nservices=handler\n");
    assert_eq!(c.runner.services, vec!["handler"]);
    assert!(!c.runner.runs("connmgr"));
}

#[test]
fn prometheus_ipc() {
    let c = load("[handler]\nprometheus_port=ipc://{rundir}/metrics\n[global]\nrundir=/r\n");
    assert_eq!(
        c.handler.prometheus,
        Some(MetricsListen::Ipc(PathBuf::from("/r/metrics")))
    );
}

#[test]
fn key_table_covers_every_key_read() {
    // Every key the loader reads must be in the known-key table, or a file that sets it
    // would get a spurious unknown-key warning.
    for (section, key) in [
        ("global", "stats_connection_send"),
        ("runner", "connmgr_workers"),
        ("runner", "client_header_timeout"),
        ("proxy", "stats_connections_max_ttl"),
        ("handler", "push_in_sub_spec"),
        ("handler", "state_spec"),
        ("handler", "share_all"),
    ] {
        assert!(keys::lookup(section, key).is_some(), "[{section}] {key}");
    }
}
