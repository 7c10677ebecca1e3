//! `holdfast-loadgen hold` end to end: the built binary against its own limit server, over
//! real loopback sockets. Checks the scenario's accounting (every subscriber set up or counted
//! as failed, one open latency per set-up) rather than its speed.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The limit server, killed on drop.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_holdfast-loadgen"))
}

/// Starts `limit-server` on a kernel-chosen port; its first stdout line names the address.
fn limit_server() -> Server {
    let mut child = loadgen()
        .args(["limit-server", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start limit-server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listen line");
    let v: Value = serde_json::from_str(&line).expect("listen line is JSON");
    let addr = v["listen"].as_str().expect("listen address").to_string();
    Server { child, addr }
}

/// Runs `hold` with `args` and returns its JSON result.
fn hold(args: &[&str]) -> Value {
    let out = loadgen()
        .arg("hold")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("run hold");
    assert!(out.status.success(), "hold exited with {}", out.status);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    serde_json::from_str(stdout.trim().lines().last().expect("a result line")).expect("JSON")
}

#[test]
fn every_subscriber_is_set_up_and_counted_once() {
    let server = limit_server();
    let url = format!("http://{}", server.addr);
    // More subscribers than lanes, and a lane count that does not divide them.
    let v = hold(&[
        "--url",
        &url,
        "-n",
        "203",
        "--concurrency",
        "16",
        "--idle",
        "0",
    ]);
    assert_eq!(v["scenario"], "hold");
    assert_eq!(v["ok"], 203, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["open_latency_us"]["count"], 203, "{v}");
    assert!(v["setup_rate"].as_f64().expect("rate") > 0.0, "{v}");
    assert_eq!(v["errors"], serde_json::json!({}), "{v}");
}

#[test]
fn refused_connections_are_counted_as_failures() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let v = hold(&[
        "--url",
        &url,
        "-n",
        "7",
        "--concurrency",
        "3",
        "--idle",
        "0",
    ]);
    assert_eq!(v["ok"], 0, "{v}");
    assert_eq!(v["failed"], 7, "{v}");
    let errors = v["errors"].as_object().expect("errors");
    let counted: u64 = errors.values().filter_map(Value::as_u64).sum();
    assert_eq!(counted, 7, "{v}");
    assert!(
        errors.keys().all(|e| e.starts_with("connect")),
        "unexpected errors: {v}"
    );
}
