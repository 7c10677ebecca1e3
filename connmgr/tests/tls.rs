//! HTTPS and WSS: the real connection manager with `--tls-listen` and a certificates directory
//! laid out as Pushpin's, driven by a real rustls client (and tungstenite over it), with the
//! fake handler. Certificates are generated here with rcgen.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{free_port, temp_dir, Connmgr, FakeHandler, WAIT};
use holdfast_proto::internal::{ToConnmgr, ToHandler, WsAccept, WsKind, WsMessage};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use tungstenite::client::IntoClientRequest;
use tungstenite::Message;

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A test CA that signs leaf certificates into a certificates directory.
struct Certs {
    dir: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Certs {
    fn new(name: &str) -> Self {
        let dir = temp_dir(name).join("certs");
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "holdfast test CA");
        let ca_cert = params.self_signed(&ca_key).unwrap();
        Self {
            dir,
            ca_cert,
            ca_key,
        }
    }

    /// Writes `<file>.crt`/`.key` for `dns_name`; returns the leaf certificate (DER).
    fn write(&self, file: &str, dns_name: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![dns_name.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        // Written whole under another name, then renamed: a reader never sees half a file.
        let put = |ext: &str, text: String| {
            let tmp = self.dir.join(format!(".{file}.{ext}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, self.dir.join(format!("{file}.{ext}"))).unwrap();
        };
        put("key", key.serialize_pem());
        put("crt", cert.pem() + &self.ca_cert.pem());
        cert.der().to_vec()
    }

    /// A client that verifies against the test CA.
    fn verifying_client(&self) -> Arc<ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_cert.der().clone()).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
    }
}

/// Accepts any certificate (signatures are still checked), so a test can see which one the
/// server picked for names it does not cover.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn any_cert_client() -> Arc<ClientConfig> {
    let provider = provider();
    Arc::new(
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth(),
    )
}

/// Starts connmgr with a TLS listener on a fresh port over `certs`; returns it and the port.
fn start(handler: &mut FakeHandler, certs: &Certs, tls_port: u16, extra: &[&str]) -> Connmgr {
    let mut args = vec![
        format!("--tls-listen=127.0.0.1:{tls_port}"),
        format!("--tls-certs-dir={}", certs.dir.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cm = Connmgr::start(handler, &args);
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(Instant::now() < deadline, "TLS port never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    cm
}

/// Connects and completes the handshake with SNI `sni` (`None`: no SNI).
fn connect(port: u16, config: Arc<ClientConfig>, sni: Option<&str>) -> Result<Tls, std::io::Error> {
    let name = match sni {
        Some(name) => ServerName::try_from(name.to_string()).unwrap(),
        // An IP address as the server name: rustls sends no SNI.
        None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
    };
    let conn = ClientConnection::new(config, name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(WAIT))?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// The leaf certificate the server presented.
fn served(tls: &Tls) -> Vec<u8> {
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

/// Reads one response with a Content-Length body (enough for these tests).
fn read_response(tls: &mut Tls) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while data.len() < end + 4 + len {
                let n = tls.read(&mut buf).expect("read body");
                assert!(n > 0, "EOF in body");
                data.extend_from_slice(&buf[..n]);
            }
            return (head, data[end + 4..end + 4 + len].to_vec());
        }
        let n = tls.read(&mut buf).expect("read head");
        assert!(n > 0, "EOF before the response head");
        data.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn https_request_reaches_the_handler_as_secure_and_the_response_comes_back() {
    let certs = Certs::new("tls-basic");
    let port = free_port();
    certs.write(&format!("default_{port}"), "localhost");
    let mut handler = FakeHandler::bind("tls-basic");
    let cm = start(&mut handler, &certs, port, &[]);

    // Verified against the CA, by name.
    let mut tls = connect(port, certs.verifying_client(), Some("localhost")).expect("handshake");
    for round in 0..2 {
        tls.write_all(b"GET /secure?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let head = handler.request();
        assert_eq!(head.target, "/secure?x=1");
        assert!(head.secure, "a TLS request is marked secure");
        assert_eq!(head.local_port, port);
        let body = format!("hello over TLS {round}");
        handler.respond(
            head.id,
            200,
            "OK",
            &[("Content-Type", "text/plain")],
            &body,
            false,
        );
        let (resp, got) = read_response(&mut tls);
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert_eq!(got, body.as_bytes());
    }

    // The plain listener beside it is still plain.
    let mut plain = cm.connect();
    plain
        .write_all(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = handler.request();
    assert!(!head.secure);
    assert_eq!(head.local_port, cm.port);
    handler.respond(head.id, 204, "No Content", &[], "", false);
    common::expect_bytes(&mut plain, "HTTP/1.1 204 No Content\r\n");
}

#[test]
fn sni_picks_the_exact_name_then_a_one_level_wildcard_then_the_default() {
    let certs = Certs::new("tls-sni");
    let port = free_port();
    let default = certs.write(&format!("default_{port}"), "default.test");
    let exact = certs.write("www.example.com", "www.example.com");
    let wildcard = certs.write("_.example.org", "*.example.org");
    let mut handler = FakeHandler::bind("tls-sni");
    let _cm = start(&mut handler, &certs, port, &[]);

    let pick = |sni: Option<&str>| served(&connect(port, any_cert_client(), sni).unwrap());
    assert_eq!(pick(Some("www.example.com")), exact);
    assert_eq!(
        pick(Some("WWW.Example.COM")),
        exact,
        "names are case-insensitive"
    );
    assert_eq!(pick(Some("a.example.org")), wildcard);
    assert_eq!(pick(Some("a.b.example.org")), default, "one level only");
    assert_eq!(pick(Some("example.org")), default);
    assert_eq!(pick(Some("other.net")), default);
    assert_eq!(pick(None), default, "no SNI: the listener's default");

    // And the exact and wildcard certificates verify for their names.
    connect(port, certs.verifying_client(), Some("www.example.com")).unwrap();
    connect(port, certs.verifying_client(), Some("x.example.org")).unwrap();
}

#[test]
fn without_a_matching_certificate_only_that_handshake_fails_and_new_files_are_picked_up() {
    let certs = Certs::new("tls-missing");
    let port = free_port();
    certs.write("www.example.com", "www.example.com");
    let mut handler = FakeHandler::bind("tls-missing");
    let cm = start(&mut handler, &certs, port, &[]);

    let mut good = connect(port, any_cert_client(), Some("www.example.com")).unwrap();
    let err = connect(port, any_cert_client(), Some("other.net")).unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("alert"),
        "the handshake is refused with an alert: {err}"
    );
    // The established connection is unaffected.
    good.write_all(b"GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = handler.request();
    handler.respond(head.id, 200, "OK", &[], "fine", false);
    assert_eq!(read_response(&mut good).1, b"fine");

    // A default certificate that appears later is used without a restart.
    let default = certs.write(&format!("default_{port}"), "default.test");
    std::thread::sleep(Duration::from_millis(1200));
    let tls = connect(port, any_cert_client(), Some("other.net")).expect("default now");
    assert_eq!(served(&tls), default);
    assert!(
        cm.log().contains("no TLS certificate"),
        "the refusal is logged:\n{}",
        cm.log()
    );
}

#[test]
fn a_changed_certificate_file_is_reloaded() {
    let certs = Certs::new("tls-reload");
    let port = free_port();
    let first = certs.write("www.example.com", "www.example.com");
    let mut handler = FakeHandler::bind("tls-reload");
    let cm = start(&mut handler, &certs, port, &[]);
    let pick = || served(&connect(port, any_cert_client(), Some("www.example.com")).unwrap());
    assert_eq!(pick(), first);

    let second = certs.write("www.example.com", "www.example.com");
    assert_ne!(first, second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pick() != second {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A broken replacement is refused and the loaded certificate stays in use.
    std::fs::write(certs.dir.join("www.example.com.crt"), "garbage").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(pick(), second);
    assert!(
        cm.log().contains("unusable TLS certificate"),
        "{}",
        cm.log()
    );
}

#[test]
fn wss_handshake_and_messages_both_ways() {
    let certs = Certs::new("tls-wss");
    let port = free_port();
    certs.write("ws.example.com", "ws.example.com");
    let mut handler = FakeHandler::bind("tls-wss");
    let _cm = start(&mut handler, &certs, port, &[]);
    let config = certs.verifying_client();

    let client = std::thread::spawn(move || {
        let tls = connect(port, config, Some("ws.example.com")).expect("handshake");
        let req = "wss://ws.example.com/ws".into_client_request().unwrap();
        let (mut ws, resp) = tungstenite::client::client(req, tls).expect("ws handshake");
        assert_eq!(resp.status(), 101);
        ws.send(Message::Text("ping over tls".into())).unwrap();
        loop {
            let m = ws.read().unwrap();
            if m.is_text() {
                return m;
            }
        }
    });

    let head = match handler.next() {
        ToHandler::Upgrade(head) => head,
        other => panic!("expected an Upgrade, got {other:?}"),
    };
    assert!(head.secure, "a WSS upgrade is marked secure");
    assert_eq!(head.target, "/ws");
    handler.send(vec![ToConnmgr::WsAccept(WsAccept {
        id: head.id,
        headers: Vec::new(),
    })]);
    let msg = match handler.next() {
        ToHandler::WsMessage(m) => m,
        other => panic!("expected a WsMessage, got {other:?}"),
    };
    assert_eq!(&msg.data[..], b"ping over tls");
    handler.send(vec![ToConnmgr::WsMessage(WsMessage {
        id: head.id,
        kind: WsKind::Text,
        data: Bytes::from_static(b"pong over tls"),
    })]);
    assert_eq!(
        client.join().unwrap(),
        Message::Text("pong over tls".into())
    );
}

#[test]
fn a_large_response_flows_within_credits_over_tls() {
    let certs = Certs::new("tls-large");
    let port = free_port();
    certs.write(&format!("default_{port}"), "localhost");
    let mut handler = FakeHandler::bind("tls-large");
    let _cm = start(&mut handler, &certs, port, &["--buffer-size=4096"]);
    let mut tls = connect(port, any_cert_client(), None).unwrap();
    tls.write_all(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = handler.request();
    const TOTAL: usize = 2 << 20;
    let size = TOTAL.to_string();
    handler.respond(head.id, 200, "OK", &[("Content-Length", &size)], "", true);

    // The client reads on its own thread; the handler sends only within its credits.
    let reader = std::thread::spawn(move || read_response(&mut tls).1);
    let mut credits = head.credits as usize;
    let mut sent = 0;
    let chunk = vec![b'z'; 16 * 1024];
    while sent < TOTAL {
        let n = chunk.len().min(TOTAL - sent).min(credits);
        if n > 0 {
            sent += n;
            credits -= n;
            handler.body(head.id, &chunk[..n], sent < TOTAL);
            continue;
        }
        match handler.next_matching(|m| matches!(m, ToHandler::Credit(_))) {
            ToHandler::Credit(c) => credits += c.bytes as usize,
            _ => unreachable!(),
        }
    }
    let body = reader.join().unwrap();
    assert_eq!(body.len(), TOTAL);
    assert!(body.iter().all(|&b| b == b'z'));
}

#[test]
fn plain_http_on_the_tls_port_closes_only_that_connection() {
    let certs = Certs::new("tls-plain");
    let port = free_port();
    certs.write(&format!("default_{port}"), "localhost");
    let mut handler = FakeHandler::bind("tls-plain");
    let _cm = start(&mut handler, &certs, port, &[]);
    let mut good = connect(port, certs.verifying_client(), Some("localhost")).unwrap();

    let mut bad = TcpStream::connect(("127.0.0.1", port)).unwrap();
    bad.set_read_timeout(Some(WAIT)).unwrap();
    bad.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    // The server answers with a TLS alert record (content type 21) at most, then closes.
    let _ = bad.read_to_end(&mut got);
    assert!(
        got.is_empty() || got[0] == 21,
        "no HTTP response on a TLS port: {got:?}"
    );
    assert!(!String::from_utf8_lossy(&got).contains("HTTP/1.1"));

    good.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = handler.request();
    assert_eq!(head.target, "/ok");
    handler.respond(head.id, 200, "OK", &[], "still here", false);
    assert_eq!(read_response(&mut good).1, b"still here");
}

#[test]
fn a_client_that_stops_mid_handshake_does_not_block_others() {
    let certs = Certs::new("tls-stall");
    let port = free_port();
    certs.write(&format!("default_{port}"), "localhost");
    let mut handler = FakeHandler::bind("tls-stall");
    let _cm = start(&mut handler, &certs, port, &["--workers=1"]);
    // Half a ClientHello record header, then nothing.
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).unwrap();
    let mut tls = connect(port, certs.verifying_client(), Some("localhost")).unwrap();
    tls.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let head = handler.request();
    handler.respond(head.id, 200, "OK", &[], "ok", false);
    assert_eq!(read_response(&mut tls).1, b"ok");
    drop(stalled);
}

#[test]
fn a_closing_response_ends_with_close_notify() {
    let certs = Certs::new("tls-close");
    let port = free_port();
    certs.write(&format!("default_{port}"), "localhost");
    let mut handler = FakeHandler::bind("tls-close");
    let _cm = start(&mut handler, &certs, port, &[]);
    let mut tls = connect(port, certs.verifying_client(), Some("localhost")).unwrap();
    tls.write_all(b"GET /bye HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let head = handler.request();
    handler.respond(head.id, 200, "OK", &[], "bye", false);
    // rustls reports a TCP close without close_notify as an error: this read must end cleanly.
    let mut all = Vec::new();
    tls.read_to_end(&mut all).expect("a clean TLS close");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nbye"), "{text}");
}
