//! `holdfast-publish` end to end: the built binary against an HTTP server, an HTTPS server
//! (rustls, private CA through `SSL_CERT_FILE`) and a ZeroMQ PULL socket, all in this process
//! on loopback ports chosen by the OS, plus the failure paths (400 answer, nothing listening,
//! a server that never answers, command-line errors).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// Test CA (P-256, valid until 2126) that signed [`LEAF_CERT`].
const CA_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBrTCCAVOgAwIBAgIUPvt9HAJxSk1zskDAl05Wb/jjagEwCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYaG9sZGZhc3QtcHVibGlzaCB0ZXN0IENBMCAXDTI2MTEyMjE2
MDcwMFoYDzIxMjYxMDI5MTYwNzAwWjAjMSEwHwYDVQQDDBhob2xkZmFzdC1wdWJs
aXNoIHRlc3QgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQwFokK9WKp3Nza
sRJJo5y0Ss6U5U6HkvVXV2ShdPA0+sbpk3eXnFtyyOeJAdEhUcoDQgBg9caQnVTD
MRXom8WIo2MwYTAdBgNVHQ4EFgQUw77sN+44PVI2cJLbEJYSTByghoowHwYDVR0j
BBgwFoAUw77sN+44PVI2cJLbEJYSTByghoowDwYDVR0TAQH/BAUwAwEB/zAOBgNV
HQ8BAf8EBAMCAQYwCgYIKoZIzj0EAwIDSAAwRQIhAMtItpqSjaEwq/PrhdLCObqc
eo1Ufdh0JmSoVMEQuXMLAiBGLB1B5fS6q731hoYiLCPN/emyCrxkvOpx571e/FNA
Ow==
-----END CERTIFICATE-----
";

/// Server certificate for `localhost` and `127.0.0.1`.
const LEAF_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIByzCCAXGgAwIBAgIUEpVFc/p8R77nGXN3dv9h+bxf7yswCgYIKoZIzj0EAwIw
IzEhMB8GA1UEAwwYaG9sZGZhc3QtcHVibGlzaCB0ZXN0IENBMCAXDTI2MTEyMjE2
MDcwMFoYDzIxMjYxMDI5MTYwNzAwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTAT
BgcqhkjOPQIBBggqhkjOPQMBBwNCAASOyG/zbjm4DegqztQ/P9v5wgvBbs/vSmd9
WpB1wOFoWv7wrCOifboauoyUCDs34MYbrzYE3VKrK7uvmL4I2u5ro4GPMIGMMBoG
A1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAJBgNVHRMEAjAAMA4GA1UdDwEB/wQE
AwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNVHQ4EFgQUH6jOuFjXoWO5Hvcd
E+ARVAW2AyswHwYDVR0jBBgwFoAUw77sN+44PVI2cJLbEJYSTByghoowCgYIKoZI
zj0EAwIDSAAwRQIgHPAt8G4z7Q95j9m3pJcKzswYgj3K+wyTCX+T49tm2r0CIQDR
sgwyCfeoWJclxd9++WlDoll6SQiBtbUScDO3CF79vQ==
-----END CERTIFICATE-----
";

/// Private key of [`LEAF_CERT`] (PKCS#8).
const LEAF_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+kEZuvojU7bRQmTz
a39r1BPeZ2Ji++JrDz9Zp/fc/9uhRANCAASOyG/zbjm4DegqztQ/P9v5wgvBbs/v
Smd9WpB1wOFoWv7wrCOifboauoyUCDs34MYbrzYE3VKrK7uvmL4I2u5r
-----END PRIVATE KEY-----
";

const PUBLISHED_ITEM: &str = r#"{"items":[{"channel":"room","formats":{"http-response":{"body":"hello\n","code":200,"headers":[["X-A","1"]]},"http-stream":{"content":"hello\n"},"ws-message":{"content":"hello"}},"id":"m2","meta":{"sender":"alice"},"prev-id":"m1"}]}"#;

/// The binary with a clean environment for what it reads (`GRIP_URL`, `SSL_CERT_FILE`).
fn publish() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_holdfast-publish"));
    cmd.env_remove("GRIP_URL").env_remove("SSL_CERT_FILE");
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// A recorded request: the head lines and the body.
struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head[1..].iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one request (head, then `Content-Length` bytes of body).
fn read_request(stream: &mut impl Read) -> Request {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<String> = String::from_utf8(buf[..end].to_vec())
                .unwrap()
                .split("\r\n")
                .map(str::to_string)
                .collect();
            let req = Request {
                head,
                body: Vec::new(),
            };
            let len: usize = req.header("content-length").unwrap().parse().unwrap();
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).unwrap();
                assert!(n > 0, "request body cut short");
                buf.extend_from_slice(&chunk[..n]);
            }
            return Request {
                body: buf[end + 4..end + 4 + len].to_vec(),
                ..req
            };
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed before the request head ended");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A one-request HTTP server like Pushpin's control API; the handle yields the request.
fn http_server(status: &'static str, body: &'static str) -> (u16, JoinHandle<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let req = read_request(&mut stream);
        stream.write_all(response(status, body).as_bytes()).unwrap();
        req
    });
    (port, handle)
}

/// A one-request HTTPS server with the test certificate.
fn https_server() -> (u16, JoinHandle<Request>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(LEAF_CERT.as_bytes()).unwrap()],
            PrivateKeyDer::from_pem_slice(LEAF_KEY.as_bytes()).unwrap(),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let conn = ServerConnection::new(Arc::new(config)).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        let req = read_request(&mut tls);
        tls.write_all(response("200 OK", "Published\n").as_bytes())
            .unwrap();
        tls.conn.send_close_notify();
        tls.flush().unwrap();
        req
    });
    (port, handle)
}

/// A loopback port with nothing listening (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("holdfast-publish-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

const ITEM_ARGS: [&str; 10] = [
    "--id",
    "m2",
    "--prev-id",
    "m1",
    "--sender",
    "alice",
    "-H",
    "X-A: 1",
    "room",
    "hello",
];

#[test]
fn http_posts_the_item_and_prints_published() {
    let (port, server) = http_server("200 OK", "Published\n");
    let spec = format!("http://127.0.0.1:{port}");
    let out = run(publish().args(["--spec", &spec]).args(ITEM_ARGS));
    assert_eq!(out, (0, "Published\n".to_string(), String::new()));

    let req = server.join().unwrap();
    assert_eq!(req.head[0], "POST /publish/ HTTP/1.0");
    assert_eq!(
        req.header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(
        req.header("content-length"),
        Some(req.body.len().to_string().as_str())
    );
    assert_eq!(req.header("authorization"), None);
    assert_eq!(String::from_utf8(req.body).unwrap(), PUBLISHED_ITEM);
}

#[test]
fn grip_url_is_the_default_spec_and_base_paths_keep_their_prefix() {
    let (port, server) = http_server("200 OK", "Published\n");
    let out = run(publish()
        .env("GRIP_URL", format!("http://127.0.0.1:{port}/prefix/"))
        .args(["--hint", "room"]));
    assert_eq!(out.0, 0, "{out:?}");
    let req = server.join().unwrap();
    assert_eq!(req.head[0], "POST /prefix/publish/ HTTP/1.0");
    assert_eq!(
        String::from_utf8(req.body).unwrap(),
        r#"{"items":[{"channel":"room","formats":{"http-response":{"action":"hint"},"http-stream":{"action":"hint"},"ws-message":{"action":"hint"}}}]}"#
    );
}

#[test]
fn http_400_prints_the_server_error_text() {
    let text = "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'\n";
    let (port, server) = http_server("400 Bad Request", text);
    let spec = format!("http://127.0.0.1:{port}");
    let (code, stdout, stderr) = run(publish().args(["--spec", &spec, "room", "x"]));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(stderr, format!("Error: {text}"));
    server.join().unwrap();
}

#[test]
fn unreachable_http_spec_is_a_clear_error() {
    let port = closed_port();
    let spec = format!("http://127.0.0.1:{port}");
    let (code, stdout, stderr) = run(publish().args(["--spec", &spec, "room", "x"]));
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert!(
        stderr.starts_with(&format!("Error: cannot connect to 127.0.0.1:{port}: ")),
        "{stderr}"
    );
}

#[test]
fn silent_http_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("http://{}", listener.local_addr().unwrap());
    let (code, _, stderr) = run(publish().args(["--spec", &spec, "--timeout", "1", "room", "x"]));
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with("Error: timed out reading the response from"),
        "{stderr}"
    );
    drop(listener);
}

#[test]
fn credentials_require_https() {
    // Nothing listens: the check happens before connecting.
    let spec = format!("http://127.0.0.1:{}", closed_port());
    let (code, _, stderr) = run(publish().args(["--spec", &spec, "-u", "a:b", "room", "x"]));
    assert_eq!(
        (code, stderr.as_str()),
        (1, "Error: Authentication requires https\n")
    );
}

#[test]
fn https_with_private_ca_and_basic_auth() {
    let ca = temp_file("ca.pem", CA_CERT.as_bytes());
    let (port, server) = https_server();
    let spec = format!("https://localhost:{port}");
    let out = run(publish()
        .env("SSL_CERT_FILE", &ca)
        .args(["--spec", &spec, "-u", "user:pass"])
        .args(ITEM_ARGS));
    assert_eq!(out, (0, "Published\n".to_string(), String::new()));
    let req = server.join().unwrap();
    assert_eq!(req.head[0], "POST /publish/ HTTP/1.0");
    assert_eq!(req.header("authorization"), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(String::from_utf8(req.body).unwrap(), PUBLISHED_ITEM);

    // Without the CA the certificate is rejected.
    let (port, _server) = https_server();
    let spec = format!("https://127.0.0.1:{port}");
    let (code, _, stderr) = run(publish().args(["--spec", &spec, "-B", "tok", "room", "x"]));
    assert_eq!(code, 1);
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    std::fs::remove_file(ca).unwrap();
}

#[test]
fn zmq_pushes_one_bare_tnetstring_frame() {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    pull.set_rcvtimeo(10_000).unwrap();
    let spec = pull.get_last_endpoint().unwrap().unwrap();

    let out = run(publish()
        .args(["--spec", &spec, "--no-seq"])
        .args(ITEM_ARGS));
    assert_eq!(out, (0, "Published\n".to_string(), String::new()));
    let frames = pull.recv_multipart(0).unwrap();
    assert_eq!(frames.len(), 1);
    assert_eq!(
        String::from_utf8(frames[0].clone()).unwrap(),
        "253:7:channel,4:room,7:formats,152:13:http-response,57:4:body,6:hello\n,4:code,3:200#\
         7:headers,14:10:3:X-A,1:1,]]}11:http-stream,19:7:content,6:hello\n,}\
         10:ws-message,18:7:content,5:hello,}}2:id,2:m2,4:meta,17:6:sender,5:alice,}\
         6:no-seq,4:true!7:prev-id,2:m1,}"
    );
    let item = holdfast_proto::publish::parse_frame(&frames[0], None).unwrap();
    assert_eq!(item.channel, "room");
}

#[test]
fn zmq_without_listener_times_out() {
    let spec = format!("tcp://127.0.0.1:{}", closed_port());
    let (code, stdout, stderr) =
        run(publish().args(["--spec", &spec, "--timeout", "1", "room", "x"]));
    assert_eq!((code, stdout.as_str()), (1, ""));
    assert_eq!(
        stderr,
        format!("Error: no ZeroMQ peer accepted the connection at {spec} within 1s\n")
    );
}

#[test]
fn command_line_errors_exit_1() {
    let (code, _, stderr) = run(&mut publish());
    assert_eq!(code, 1);
    assert!(stderr.contains("<channel>"), "{stderr}");
    let (code, _, stderr) = run(publish().args(["room"]));
    assert_eq!(
        (code, stderr.as_str()),
        (1, "Error: must specify content\n")
    );
    let (code, _, stderr) = run(publish().args(["--code", "1000", "room", "x"]));
    assert_eq!(
        (code, stderr.as_str()),
        (1, "Error: code must be an integer between 0 and 999\n")
    );
    let (code, stdout, _) = run(publish().arg("--help"));
    assert_eq!(code, 0);
    assert!(stdout.contains("GRIP URL or ZeroMQ PUSH spec"));
}

#[test]
fn file_content_is_sent_verbatim() {
    let file = temp_file("content.bin", b"a\xffb");
    let (port, server) = http_server("200 OK", "Published\n");
    let spec = format!("http://127.0.0.1:{port}");
    let content = format!("@{}", file.display());
    let out = run(publish().args(["--spec", &spec, "room", &content]));
    assert_eq!(out.0, 0, "{out:?}");
    assert_eq!(
        String::from_utf8(server.join().unwrap().body).unwrap(),
        r#"{"items":[{"channel":"room","formats":{"http-response":{"body-bin":"Yf9i","code":200},"http-stream":{"content-bin":"Yf9i"},"ws-message":{"content-bin":"Yf9i"}}}]}"#
    );
    std::fs::remove_file(file).unwrap();
}
