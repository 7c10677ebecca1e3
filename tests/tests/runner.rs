//! The runner: defaults, Pushpin configs, flags, routes reload, signals and supervision.

use std::time::Duration;

use holdfast_tests::client::get;
use holdfast_tests::holdfast::{binary, process_alive, send_signal};
use holdfast_tests::{free_port, temp_dir, wait_until, Backend, BackendResponse, Holdfast};

#[test]
fn test_route_serves_the_built_in_backend() {
    let holdfast = Holdfast::builder().route("* test").start();
    let resp = get(holdfast.port, "/");
    assert_eq!(resp.code, 200);
    assert_eq!(resp.header("Content-Type"), Some("text/plain"));
    assert_eq!(resp.text(), "Hello from the Holdfast test handler!\n");
}

#[test]
fn route_flags_replace_the_routes_file() {
    let backend = Backend::start(|_| BackendResponse::text("from flag\n"));
    let holdfast = Holdfast::builder()
        .route("* test")
        .route_flag(&format!("* 127.0.0.1:{}", backend.port))
        .start();
    assert_eq!(get(holdfast.port, "/").text(), "from flag\n");
}

#[test]
fn unknown_config_keys_are_reported_by_name() {
    let holdfast = Holdfast::builder()
        .route("* test")
        .config("proxy", "no_such_key_here=1")
        .config("runner", "condure_bin=condure")
        .start();
    assert!(
        holdfast.wait_for_log("no_such_key_here", Duration::from_secs(5)),
        "{}",
        holdfast.log_text()
    );
    assert!(
        !holdfast.log_text().contains("condure_bin"),
        "known Pushpin keys must be accepted quietly"
    );
    assert!(holdfast.log_text().contains("'zurl'") || !holdfast.log_text().contains("zurl"));
}

#[test]
fn routes_file_changes_and_sighup_reload_without_dropping_connections() {
    let first = Backend::start(|_| BackendResponse::text("first\n"));
    let second = Backend::start(|_| BackendResponse::text("second\n"));
    let third = Backend::start(|_| BackendResponse::text("third\n"));
    let holdfast = Holdfast::builder()
        .route(&format!("* 127.0.0.1:{}", first.port))
        .start();

    let mut kept = holdfast_tests::Client::connect(holdfast.port);
    kept.send(b"GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(kept.read_response(false).text(), "first\n");

    std::fs::write(
        holdfast.routes_path(),
        format!("* 127.0.0.1:{}\n", second.port),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || get(holdfast.port, "/").text()
            == "second\n"),
        "routes file change was not picked up; log:\n{}",
        holdfast.log_text()
    );

    // SIGHUP to the runner reloads too (write without relying on the watcher's timing).
    std::fs::write(
        holdfast.routes_path(),
        format!("* 127.0.0.1:{}\n", third.port),
    )
    .unwrap();
    holdfast.signal("HUP");
    assert!(wait_until(Duration::from_secs(10), || get(
        holdfast.port,
        "/"
    )
    .text()
        == "third\n"));

    // The connection opened before the reloads still works.
    kept.send(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(kept.read_response(false).code, 200);
}

#[test]
fn sigterm_stops_everything_cleanly() {
    let mut holdfast = Holdfast::builder().route("* test").start();
    let handler = holdfast.child_pid("holdfast-handler");
    let connmgr = holdfast.child_pid("holdfast-connmgr");
    assert!(process_alive(handler) && process_alive(connmgr));
    holdfast.signal("TERM");
    let status = holdfast
        .wait_exit(Duration::from_secs(15))
        .expect("runner exits after SIGTERM");
    assert!(
        status.success(),
        "clean stop exits 0: {status:?}\n{}",
        holdfast.log_text()
    );
    assert!(wait_until(Duration::from_secs(2), || !process_alive(
        handler
    ) && !process_alive(
        connmgr
    )));
}

#[test]
fn a_dying_child_stops_the_runner_with_an_error() {
    for victim in ["holdfast-handler", "holdfast-connmgr"] {
        let mut holdfast = Holdfast::builder().route("* test").start();
        let handler = holdfast.child_pid("holdfast-handler");
        let connmgr = holdfast.child_pid("holdfast-connmgr");
        send_signal(holdfast.child_pid(victim), "KILL");
        let status = holdfast
            .wait_exit(Duration::from_secs(15))
            .expect("runner exits when a child dies");
        assert!(
            !status.success(),
            "{victim} death must give a non-zero exit"
        );
        assert!(
            holdfast
                .log_text()
                .contains(&format!("{victim} exited unexpectedly")),
            "{}",
            holdfast.log_text()
        );
        assert!(
            wait_until(Duration::from_secs(3), || !process_alive(handler)
                && !process_alive(connmgr)),
            "no orphan processes after {victim} died"
        );
    }
}

#[test]
fn runner_without_config_uses_pushpin_defaults_and_the_test_route() {
    // Run from an empty directory so no ./pushpin.conf is found: Pushpin's default client port
    // 7999 and the built-in `* test` route.
    let dir = temp_dir("noconfig");
    let mut child = std::process::Command::new(binary("holdfast"))
        .current_dir(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start holdfast");
    let ready = wait_until(Duration::from_secs(20), || get_ok(7999));
    let text = if ready {
        get(7999, "/").text()
    } else {
        String::new()
    };
    send_signal(child.id(), "TERM");
    let status = child.wait().expect("wait");
    assert!(ready, "no listener on 7999");
    assert_eq!(text, "Hello from the Holdfast test handler!\n");
    assert!(status.success());
}

fn get_ok(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn version_and_help_flags() {
    let out = std::process::Command::new(binary("holdfast"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("holdfast "));
    let out = std::process::Command::new(binary("holdfast"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--port",
        "--route",
        "--id",
        "--merge-output",
        "--loglevel",
        "--verbose",
        "--logfile",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn port_flag_overrides_the_config() {
    let port = free_port();
    let holdfast = Holdfast::builder()
        .route("* test")
        .arg(&format!("--port=127.0.0.1:{port}"))
        .start_without_wait();
    assert!(wait_until(Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    assert_eq!(get(port, "/").code, 200);
    drop(holdfast);
}

/// Debian's shipped Pushpin 1.36 `pushpin.conf`, with only the directories and ports changed so
/// the test can run anywhere: every other line (the `{libdir}/internal.conf` include, Pushpin's
/// service names, zurl/mongrel2 keys, `sig_key`, ...) is as shipped.
#[test]
fn debian_pushpin_conf_runs_unchanged() {
    let shipped = include_str!("../../proto/src/config/testdata/debian-1.36-pushpin.conf");
    let dir = temp_dir("debianconf");
    let port = free_port();
    let replace = |text: &str, key: &str, value: String| {
        let prefix = format!("{key}=");
        let mut found = false;
        let out: Vec<String> = text
            .lines()
            .map(|line| {
                if line.starts_with(&prefix) {
                    found = true;
                    format!("{key}={value}")
                } else {
                    line.to_string()
                }
            })
            .collect();
        assert!(found, "{key} not in the shipped config");
        out.join("\n") + "\n"
    };
    let mut text = shipped.to_string();
    text = replace(&text, "rundir", dir.join("run").display().to_string());
    text = replace(&text, "logdir", dir.join("log").display().to_string());
    text = replace(&text, "http_port", format!("127.0.0.1:{port}"));
    for key in ["push_in_spec", "push_in_sub_specs", "command_spec"] {
        text = replace(&text, key, format!("tcp://127.0.0.1:{}", free_port()));
    }
    text = replace(&text, "push_in_http_port", free_port().to_string());
    let config = dir.join("pushpin.conf");
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.join("routes"), "* test\n").unwrap();

    let out = std::fs::File::create(dir.join("runner.log")).unwrap();
    let mut child = std::process::Command::new(binary("holdfast"))
        .arg(format!("--config={}", config.display()))
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let ready = wait_until(Duration::from_secs(20), || get_ok(port));
    let text = if ready {
        get(port, "/").text()
    } else {
        String::new()
    };
    send_signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    let runner_log = std::fs::read_to_string(dir.join("runner.log")).unwrap();
    assert!(ready, "not listening; runner log:\n{runner_log}");
    assert_eq!(text, "Hello from the Holdfast test handler!\n");
    assert!(status.success(), "{runner_log}");
    assert!(!runner_log.contains("unknown config key"), "{runner_log}");
    // Without -m, each child logs to its own file in logdir, as Pushpin's services do.
    let handler_log =
        std::fs::read_to_string(dir.join("log/holdfast-handler.log")).unwrap_or_default();
    assert!(
        handler_log.contains("GET http://"),
        "handler log:\n{handler_log}"
    );
    assert!(dir.join("log/holdfast-connmgr.log").exists());
}

#[test]
fn connections_over_client_maxconn_wait_until_one_closes() {
    let holdfast = Holdfast::builder()
        .route("* test")
        .config("runner", "client_maxconn=2")
        .config("runner", "connmgr_workers=1")
        .start();
    let mut first = holdfast_tests::Client::connect(holdfast.port);
    let mut second = holdfast_tests::Client::connect(holdfast.port);
    for client in [&mut first, &mut second] {
        client.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(client.read_response(false).code, 200);
    }
    // The third connection is not served while two are open...
    let mut third = holdfast_tests::Client::connect(holdfast.port);
    third.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    third.set_timeout(Duration::from_millis(500));
    assert!(
        third.try_read_response(false).is_err(),
        "over the limit, nothing is served"
    );
    // ...and is served as soon as one closes.
    drop(first);
    third.set_timeout(Duration::from_secs(5));
    assert_eq!(third.read_response(false).code, 200);
    // The first two keep working.
    second.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(second.read_response(false).code, 200);
}
