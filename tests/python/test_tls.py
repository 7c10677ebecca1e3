"""HTTPS and WSS listeners end to end, and `local_ports` Unix-socket listeners (reference §3.11, §7.2 `https_ports`, §7.3 `ssl=yes`, §4.9
X-Forwarded-Proto): the runner starts the connection manager with a TLS listener whose
certificate comes from `<config dir>/runner/certs/default_<port>.crt/.key`; httpx and the
`websockets` client connect over TLS and verify that certificate.
"""

import asyncio
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import time

import httpx
import pytest
from gripcontrol import WebSocketEvent, decode_websocket_events, encode_websocket_events
from websockets.asyncio.client import connect

from conftest import TARGET, free_port, wait_port

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")

EVENTS = "application/websocket-events"


def write_cert(certs_dir, name, dns_name):
    """A self-signed certificate for `dns_name` as `<name>.crt`/`.key`; returns the .crt path."""
    os.makedirs(certs_dir, exist_ok=True)
    crt = os.path.join(certs_dir, name + ".crt")
    key = os.path.join(certs_dir, name + ".key")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={dns_name}",
            "-addext", f"subjectAltName=DNS:{dns_name}",
        ],
        check=True,
        capture_output=True,
    )
    return crt


def start_tls_proxy(make_proxy, routes, proxy_conf=()):
    """A proxy with a plain port and a TLS port whose default certificate is for `localhost`;
    returns (proxy, tls_port, ssl context trusting that certificate)."""
    tls_port = free_port()
    proxy = make_proxy(
        routes,
        runner_conf=[f"https_ports=127.0.0.1:{tls_port}"],
        proxy_conf=proxy_conf,
    )
    # Certificates are looked up per handshake, so they may be written after the start.
    crt = write_cert(os.path.join(proxy.dir, "runner", "certs"), f"default_{tls_port}", "localhost")
    assert wait_port(tls_port), proxy.log()
    ctx = ssl.create_default_context(cafile=crt)
    return proxy, tls_port, ctx


def path_routes(backend):
    """Routes that tell TLS and plain requests apart by the path the backend sees."""
    return [
        f"*,ssl=yes,path_beg=/,replace_beg=/secure/ 127.0.0.1:{backend.port}",
        f"*,ssl=no,path_beg=/,replace_beg=/plain/ 127.0.0.1:{backend.port}",
    ]


def ok(req):
    return 200, [("Content-Type", "text/plain")], "ok " + req["path"]


def test_https_selects_the_ssl_route_and_sets_x_forwarded_proto(make_proxy, backend):
    backend.route("/secure/x", ok)
    backend.route("/plain/x", ok)
    proxy, tls_port, ctx = start_tls_proxy(
        make_proxy, path_routes(backend), proxy_conf=["set_x_forwarded_protocol=proto-only"]
    )
    with httpx.Client(verify=ctx) as client:
        r = client.get(f"https://localhost:{tls_port}/x", headers={"X-Forwarded-Proto": "http"})
        assert r.status_code == 200, r.text
        assert r.text == "ok /secure/x"
        # Keep-alive over the same TLS connection.
        assert client.get(f"https://localhost:{tls_port}/x").text == "ok /secure/x"
    secure = backend.requests_to("/secure/x")
    assert len(secure) == 2
    assert secure[0]["headers"].get_all("X-Forwarded-Proto") == ["https"]

    r = httpx.get(f"{proxy.base}/x", headers={"X-Forwarded-Proto": "https"})
    assert r.text == "ok /plain/x"
    plain = backend.requests_to("/plain/x")[0]
    assert plain["headers"].get("X-Forwarded-Proto") is None


def test_accept_x_forwarded_protocol_marks_a_plain_request_secure(make_proxy, backend):
    backend.route("/secure/x", ok)
    backend.route("/plain/x", ok)
    proxy, _, _ = start_tls_proxy(
        make_proxy,
        path_routes(backend),
        proxy_conf=["accept_x_forwarded_protocol=true", "set_x_forwarded_protocol=proto-only"],
    )
    r = httpx.get(f"{proxy.base}/x", headers={"X-Forwarded-Proto": "https"})
    assert r.text == "ok /secure/x"
    assert backend.requests_to("/secure/x")[0]["headers"].get_all("X-Forwarded-Proto") == ["https"]
    assert httpx.get(f"{proxy.base}/x").text == "ok /plain/x"


def wss_echo(req):
    out = []
    for e in decode_websocket_events(req["body"]):
        if e.type == "OPEN":
            out.append(WebSocketEvent("OPEN"))
        elif e.type == "TEXT":
            out.append(WebSocketEvent("TEXT", b"secure: " + e.content))
        elif e.type == "CLOSE":
            out.append(WebSocketEvent("CLOSE", e.content))
    return 200, [("Content-Type", EVENTS)], encode_websocket_events(out)


def wss_round_trip(tls_port, ctx, text):
    """Sends `text` over a WSS connection to /ws and returns the first message back.

    websockets' asyncio client, not its sync one: the sync client reads the socket in a thread
    of its own while the caller writes from another, and an OpenSSL connection is not meant to be
    used from two threads at once. One run hung that way: the TLS 1.3 session tickets sent right
    after the handshake woke the reader thread, which then waited inside `SSL_read` while the
    upgrade request was never sent."""

    async def exchange():
        async with connect(f"wss://localhost:{tls_port}/ws", ssl=ctx, close_timeout=10) as ws:
            await ws.send(text)
            return await ws.recv()

    return asyncio.run(asyncio.wait_for(exchange(), 30))


def test_wss_over_http_through_the_ssl_route(make_proxy, backend):
    backend.route("/ws", wss_echo)
    _, tls_port, ctx = start_tls_proxy(
        make_proxy,
        [f"*,proto=ws,ssl=yes 127.0.0.1:{backend.port},over_http"],
        proxy_conf=["set_x_forwarded_protocol=proto-only"],
    )
    assert wss_round_trip(tls_port, ctx, "hello") == "secure: hello"
    first = backend.requests_to("/ws")[0]
    assert first["body"] == b"OPEN\r\n"
    assert first["headers"].get("X-Forwarded-Proto") is not None, first["headers"]


def test_plain_http_on_the_tls_port_gets_no_http_answer(make_proxy, backend):
    backend.route("/secure/x", ok)
    _, tls_port, ctx = start_tls_proxy(make_proxy, path_routes(backend))
    with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/1." not in data
    # The listener still serves TLS clients.
    assert httpx.get(f"https://localhost:{tls_port}/x", verify=ctx).text == "ok /secure/x"


def test_wss_x_forwarded_proto_is_wss(make_proxy, backend):
    """§4.9: the value follows the request scheme; Pushpin 1.36 sends `wss` for a WSS client."""
    backend.route("/ws", wss_echo)
    _, tls_port, ctx = start_tls_proxy(
        make_proxy,
        [f"*,proto=ws,ssl=yes 127.0.0.1:{backend.port},over_http"],
        proxy_conf=["set_x_forwarded_protocol=proto-only"],
    )
    assert wss_round_trip(tls_port, ctx, "hello") == "secure: hello"
    assert backend.requests_to("/ws")[0]["headers"].get("X-Forwarded-Proto") == "wss"


def test_local_ports_unix_socket_listener(make_proxy, backend):
    """`local_ports` (§7.2): plain HTTP over a Unix-domain socket, as `curl --unix-socket`."""
    backend.route("/plain/x", ok)
    sock_dir = tempfile.mkdtemp(prefix="hf-uds-")
    path = os.path.join(sock_dir, "server")
    try:
        # `?mode=` is a Pushpin 1.37 addition: 1.36 takes it as part of the path.
        spec = path if TARGET == "pushpin" else f"{path}?mode=660"
        proxy = make_proxy(path_routes(backend), runner_conf=[f"local_ports={spec}"])
        deadline = time.time() + 20
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.05)
        assert stat.S_ISSOCK(os.stat(path).st_mode), proxy.log()
        if TARGET != "pushpin":
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        transport = httpx.HTTPTransport(uds=path)
        with httpx.Client(transport=transport) as client:
            r = client.get("http://localhost/x")
        assert r.status_code == 200, r.text
        assert r.text == "ok /plain/x"
    finally:
        shutil.rmtree(sock_dir, ignore_errors=True)
