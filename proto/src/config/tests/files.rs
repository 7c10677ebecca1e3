//! Loading real Pushpin files (Debian 1.36 and upstream), `include` handling with files on disk,
//! and the built-in defaults.

use std::path::{Path, PathBuf};

use super::*;

/// Debian's `/etc/pushpin/pushpin.conf` from the pushpin 1.36.0-2 package.
const DEBIAN_CONF: &str = include_str!("../testdata/debian-1.36-pushpin.conf");

/// Debian's `/usr/lib/pushpin/internal.conf` from the same package.
const DEBIAN_INTERNAL: &str = include_str!("../testdata/debian-1.36-internal.conf");

/// Upstream `src/internal.conf` (the 1.3x series, with `condure_client_*` keys).
const UPSTREAM_INTERNAL: &str = include_str!("../testdata/upstream-internal.conf");

#[test]
fn debian_config_with_internal_conf() {
    let (c, warnings) = load_files(
        DEBIAN_CONF,
        &[("/usr/lib/pushpin/internal.conf", DEBIAN_INTERNAL)],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        warnings,
        vec![],
        "Debian's config must load without warnings"
    );
    assert_eq!(c.path.as_deref(), Some(Path::new(MAIN)));
    assert_eq!(c.dir, PathBuf::from("/etc/cfg"));
    assert_eq!(
        c.include,
        Some(PathBuf::from("/usr/lib/pushpin/internal.conf"))
    );
    assert_eq!(c.libdir, PathBuf::from(PUSHPIN_LIBDIR));
    assert_eq!(c.rundir, PathBuf::from("/var/run/pushpin"));
    assert_eq!(c.ipc_prefix, "pushpin-");
    assert_eq!(c.port_offset, 0);
    assert_eq!(c.stats_connection_ttl, 120);
    assert!(c.stats_connection_send);

    let r = &c.runner;
    assert_eq!(r.services, vec!["connmgr", "proxy", "handler"]);
    assert!(r.runs("condure") && r.runs("pushpin-proxy") && r.runs("handler"));
    assert!(!r.runs("zurl"));
    assert_eq!(r.http_ports, vec![listen("0.0.0.0:7999")]);
    assert!(r.https_ports.is_empty() && r.local_ports.is_empty());
    assert!(r.has_listeners());
    assert_eq!(r.logdir, Some(PathBuf::from("/var/log/pushpin")));
    assert_eq!(r.log_level, 2);
    assert_eq!(r.client_buffer_size, 8192);
    assert_eq!(r.client_maxconn, 50000);
    assert!(!r.allow_compression);
    assert_eq!(r.certs_dir, PathBuf::from("/etc/cfg/runner/certs"));

    let p = &c.proxy;
    assert_eq!(p.routesfile, Some(PathBuf::from("/etc/cfg/routes")));
    assert!(!p.debug && !p.auto_cross_origin && !p.accept_x_forwarded_protocol);
    assert_eq!(p.set_x_forwarded_protocol, Some(false));
    assert_eq!(p.x_forwarded_for, XffRule::default());
    assert_eq!(p.x_forwarded_for_trusted, XffRule::default());
    assert!(p.orig_headers_need_mark.is_empty());
    assert!(!p.accept_pushpin_route && !p.log_from && !p.log_user_agent);
    assert_eq!(p.sig_iss, "pushpin");
    assert_eq!(p.sig_key, "changeme");
    assert_eq!(p.upstream_key, "");
    assert_eq!(p.sockjs_url, DEFAULT_SOCKJS_URL);

    let h = &c.handler;
    assert_eq!(h.push_in_spec.as_deref(), Some("tcp://127.0.0.1:5560"));
    assert_eq!(h.push_in_sub_specs, vec!["tcp://127.0.0.1:5562"]);
    assert!(!h.push_in_sub_connect);
    assert_eq!(h.push_in_http_listen(), Some(addr("127.0.0.1:5561")));
    assert_eq!(h.push_in_http_max_headers_size, 10000);
    assert_eq!(h.push_in_http_max_body_size, 1_000_000);
    assert_eq!(
        h.stats_spec.as_deref(),
        Some("ipc:///var/run/pushpin/pushpin-stats")
    );
    assert_eq!(h.command_spec.as_deref(), Some("tcp://127.0.0.1:5563"));
    assert_eq!(h.message_rate, Some(2500));
    assert_eq!(h.message_hwm, Some(25000));
    assert_eq!(h.message_block_size, None);
    assert_eq!(h.message_wait, 5000);
    assert_eq!(h.id_cache_ttl, 60);
    assert_eq!(h.connection_subscription_max, 20);
    assert_eq!(h.subscription_linger, 60);
    assert_eq!(h.stats_subscription_ttl, 60);
    assert_eq!(h.stats_report_interval, 10);
    assert_eq!(h.stats_format, StatsFormat::Tnetstring);
    assert!(h.update_on_first_subscription);
    assert_eq!(h.ipc_file_mode, None);
}

#[test]
fn debian_config_without_internal_conf() {
    // Holdfast has no internal.conf: a missing {libdir}/internal.conf is skipped silently.
    let (c, warnings) = load_files(DEBIAN_CONF, &[], &Overrides::default()).unwrap();
    assert_eq!(warnings, vec![]);
    assert_eq!(c.include, None);
    assert_eq!(c.runner.http_ports, vec![listen("0.0.0.0:7999")]);
}

#[test]
fn debian_config_with_id() {
    let (c, _) = load_files(DEBIAN_CONF, &[], &with_id(2)).unwrap();
    assert_eq!(c.ipc_prefix, "p2-");
    assert_eq!(c.port_offset, 20);
    assert_eq!(
        c.handler.push_in_spec.as_deref(),
        Some("tcp://127.0.0.1:5580")
    );
    assert_eq!(c.handler.push_in_sub_specs, vec!["tcp://127.0.0.1:5582"]);
    assert_eq!(
        c.handler.command_spec.as_deref(),
        Some("tcp://127.0.0.1:5583")
    );
    assert_eq!(c.handler.push_in_http_port, Some(5581));
    assert_eq!(
        c.handler.stats_spec.as_deref(),
        Some("ipc:///var/run/pushpin/p2-stats")
    );
    // Observed with Pushpin 1.36 `--id 1`: the client HTTP port is not offset.
    assert_eq!(c.runner.http_ports, vec![listen("0.0.0.0:7999")]);
    assert_eq!(
        c.connmgr_spec(),
        "ipc:///var/run/pushpin/p2-holdfast-connmgr"
    );
}

#[test]
fn upstream_internal_conf_keys_are_all_known() {
    let main = "[global]\ninclude=internal.conf\nrundir=run\n";
    let (c, warnings) = load_files(
        main,
        &[("/usr/lib/pushpin/internal.conf", UPSTREAM_INTERNAL)],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(warnings, vec![]);
    // `include=internal.conf` exactly means {libdir}/internal.conf.
    assert_eq!(
        c.include,
        Some(PathBuf::from("/usr/lib/pushpin/internal.conf"))
    );
    assert_eq!(c.rundir, PathBuf::from("/etc/cfg/run"));
}

#[test]
fn include_in_memory_main_wins() {
    let main = "[global]\ninclude=extra.conf\n[proxy]\nsig_iss=main\n";
    let extra = "[proxy]\nsig_iss=extra\nsig_key=from-extra\n[handler]\nmessage_wait=42\n";
    let (c, w) = load_files(
        main,
        &[("/etc/cfg/extra.conf", extra)],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(w, vec![]);
    assert_eq!(c.include, Some(PathBuf::from("/etc/cfg/extra.conf")));
    assert_eq!(c.proxy.sig_iss, "main");
    assert_eq!(c.proxy.sig_key, "from-extra");
    assert_eq!(c.handler.message_wait, 42);
}

#[test]
fn missing_explicit_include_is_an_error() {
    match load_files("[global]\ninclude=extra.conf\n", &[], &Overrides::default()) {
        Err(ConfigError::Read { path, .. }) => {
            assert_eq!(path, PathBuf::from("/etc/cfg/extra.conf"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn include_uses_libdir() {
    let main = "[global]\nlibdir=/opt/pp\ninclude={libdir}/internal.conf\n";
    let (c, _) = load_files(
        main,
        &[("/opt/pp/internal.conf", "[handler]\nmessage_wait=7\n")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(c.include, Some(PathBuf::from("/opt/pp/internal.conf")));
    assert_eq!(c.handler.message_wait, 7);
}

#[test]
fn unknown_keys_in_include_are_reported() {
    let (_, w) = load_files(
        "[global]\ninclude=x.conf\n",
        &[("/etc/cfg/x.conf", "[proxy]\nbogus=1\n")],
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(
        w,
        vec![ConfigWarning::UnknownKey {
            section: "proxy".into(),
            key: "bogus".into()
        }]
    );
}

#[test]
fn unreadable_main_file() {
    let err = Config::load(
        Path::new("/nonexistent/holdfast/pushpin.conf"),
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err
        .to_string()
        .starts_with("cannot read config file /nonexistent/holdfast/pushpin.conf"));
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("holdfast-proto-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn include_from_real_files() {
    let tmp = TempDir::new("include");
    tmp.write(
        "conf/shared/common.conf",
        "[global]\nipc_prefix=shared-\n[proxy]\nsig_iss=shared\ndebug=true\n",
    );
    let main = tmp.write(
        "conf/pushpin.conf",
        "[global]\ninclude=shared/common.conf\nrundir=run\n[proxy]\nsig_iss=main\n[handler]\nstats_spec=ipc://{rundir}/{ipc_prefix}stats\n",
    );
    let (c, w) = Config::load(&main, &Overrides::default()).unwrap();
    assert_eq!(w, vec![]);
    let dir = tmp.0.join("conf");
    assert_eq!(c.dir, dir);
    assert_eq!(c.include, Some(dir.join("shared/common.conf")));
    assert_eq!(c.proxy.sig_iss, "main");
    assert!(c.proxy.debug);
    assert_eq!(c.ipc_prefix, "shared-");
    assert_eq!(c.rundir, dir.join("run"));
    assert_eq!(
        c.handler.stats_spec,
        Some(format!("ipc://{}/shared-stats", dir.join("run").display()))
    );
}

#[test]
fn real_debian_config_copy_loads() {
    let tmp = TempDir::new("debian");
    let main = tmp.write("pushpin.conf", DEBIAN_CONF);
    let (c, w) = Config::load(&main, &Overrides::default()).unwrap();
    assert_eq!(w, vec![]);
    assert_eq!(c.proxy.routesfile, Some(tmp.0.join("routes")));
    // The real {libdir}/internal.conf is read when Pushpin is installed, skipped otherwise.
    let installed = Path::new("/usr/lib/pushpin/internal.conf").is_file();
    assert_eq!(c.include.is_some(), installed);
}

#[test]
fn relative_config_path_is_made_absolute() {
    let (c, _) = Config::load_with(Path::new("pushpin.conf"), &Overrides::default(), |_| {
        Ok("[proxy]\nroutesfile=routes\n".to_string())
    })
    .unwrap();
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(c.path, Some(cwd.join("pushpin.conf")));
    assert_eq!(c.proxy.routesfile, Some(cwd.join("routes")));
}

#[test]
fn builtin_defaults() {
    let c = Config::builtin(&Overrides::default());
    assert_eq!(c.path, None);
    assert_eq!(c.rundir, std::env::temp_dir().join("holdfast"));
    assert_eq!(c.ipc_prefix, "pushpin-");
    assert_eq!(c.port_offset, 0);
    assert_eq!(c.runner.services, vec!["connmgr", "proxy", "handler"]);
    assert_eq!(c.runner.http_ports, vec![listen("0.0.0.0:7999")]);
    assert_eq!(c.runner.logdir, None);
    assert_eq!(c.proxy.sig_key, "changeme");
    assert_eq!(c.proxy.set_x_forwarded_protocol, Some(false));
    assert_eq!(
        c.handler.push_in_spec.as_deref(),
        Some("tcp://127.0.0.1:5560")
    );
    assert_eq!(
        c.handler.push_in_http_listen(),
        Some(addr("127.0.0.1:5561"))
    );
    assert_eq!(c.handler.message_rate, Some(2500));
    assert_eq!(c.handler.id_cache_ttl, 60);
    let stats = format!("ipc://{}/pushpin-stats", c.rundir.display());
    assert_eq!(c.handler.stats_spec, Some(stats));
    assert!(c.connmgr_spec().ends_with("/pushpin-holdfast-connmgr"));
}

#[test]
fn builtin_matches_debian_config_where_shipped() {
    // The built-in defaults are Pushpin's shipped values: loading Debian's file gives the same
    // settings except for the paths.
    let b = Config::builtin(&Overrides::default());
    let (d, _) = load_files(DEBIAN_CONF, &[], &Overrides::default()).unwrap();
    assert_eq!(b.runner.services, d.runner.services);
    assert_eq!(b.runner.http_ports, d.runner.http_ports);
    assert_eq!(b.proxy.sig_iss, d.proxy.sig_iss);
    assert_eq!(b.proxy.sig_key, d.proxy.sig_key);
    assert_eq!(
        b.proxy.set_x_forwarded_protocol,
        d.proxy.set_x_forwarded_protocol
    );
    assert_eq!(b.handler.push_in_spec, d.handler.push_in_spec);
    assert_eq!(b.handler.push_in_sub_specs, d.handler.push_in_sub_specs);
    assert_eq!(b.handler.command_spec, d.handler.command_spec);
    assert_eq!(
        b.handler.push_in_http_listen(),
        d.handler.push_in_http_listen()
    );
    assert_eq!(b.handler.message_rate, d.handler.message_rate);
    assert_eq!(b.handler.message_hwm, d.handler.message_hwm);
    assert_eq!(b.handler.id_cache_ttl, d.handler.id_cache_ttl);
}

#[test]
fn builtin_with_overrides() {
    let c = Config::builtin(&with_id(1));
    assert_eq!(c.ipc_prefix, "p1-");
    assert_eq!(c.port_offset, 10);
    assert_eq!(
        c.handler.push_in_spec.as_deref(),
        Some("tcp://127.0.0.1:5570")
    );
    assert_eq!(c.handler.push_in_http_port, Some(5571));
    assert_eq!(c.runner.http_ports, vec![listen("0.0.0.0:7999")]);
    let c = Config::builtin(&Overrides {
        port: Some("8080".into()),
        ..Overrides::default()
    });
    assert_eq!(c.runner.http_ports, vec![listen("0.0.0.0:8080")]);
}

#[test]
fn overrides_check() {
    assert!(Overrides::default().check().is_ok());
    assert!(with_id(5000).check().is_ok());
    assert!(with_id(6000).check().is_err());
    assert!(with_id(u32::MAX).check().is_err());
    let bad_port = Overrides {
        port: Some("x".into()),
        ..Overrides::default()
    };
    assert!(bad_port.check().is_err());
    // builtin never panics, even with an offset that does not fit.
    let c = Config::builtin(&with_id(u32::MAX));
    assert_eq!(c.handler.push_in_http_port, Some(u16::MAX));
}

#[test]
fn search_paths_order() {
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(
        Config::search_paths(),
        vec![
            cwd.join("config/pushpin.conf"),
            cwd.join("pushpin.conf"),
            PathBuf::from("/etc/holdfast/pushpin.conf"),
        ]
    );
    // Whatever it finds is one of them.
    if let Some(found) = Config::find() {
        assert!(Config::search_paths().contains(&found));
    }
}
