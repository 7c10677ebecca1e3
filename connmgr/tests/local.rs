//! Unix-domain socket listeners (`--local-listen`, Pushpin's `local_ports`): the real
//! connection manager with the fake handler and a std `UnixStream` client.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::{temp_dir, Connmgr, FakeHandler, WAIT};

#[test]
fn requests_over_a_unix_socket_reach_the_handler_without_a_peer_address() {
    let dir = temp_dir("local");
    let path = dir.join("server.sock");
    // A stale socket file from an earlier run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let mut handler = FakeHandler::bind("local");
    let arg = format!("--local-listen={},mode=600", path.display());
    let cm = Connmgr::start(&mut handler, &[&arg, "--workers=2"]);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    for round in 0..3 {
        let deadline = Instant::now() + WAIT;
        let mut client = loop {
            match UnixStream::connect(&path) {
                Ok(c) => break c,
                Err(e) => {
                    assert!(Instant::now() < deadline, "never listened: {e}");
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        client.set_read_timeout(Some(WAIT)).unwrap();
        client
            .write_all(b"GET /local HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let head = handler.request();
        assert_eq!(head.target, "/local");
        assert_eq!(head.peer_addr, "", "a Unix-socket client has no address");
        assert_eq!(head.peer_port, 0);
        assert_eq!(head.local_port, 0);
        assert!(!head.secure);
        let body = format!("unix {round}");
        handler.respond(head.id, 200, "OK", &[], &body, false);
        let mut out = String::new();
        client.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.ends_with(&body), "{out}");
    }
    drop(cm);
    let _ = std::fs::remove_dir_all(&dir);
}
