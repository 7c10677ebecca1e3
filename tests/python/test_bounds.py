"""Bounds (issue 7): every limit from the configuration is enforced, and a client that never
reads cannot grow either process's memory with what is published to it.

Observed on Pushpin 1.36 (HOLDFAST_TEST_TARGET=pushpin), which these tests match: the same
head, URI and header-count limits (Pushpin closes the connection where Holdfast answers `400`
with a text first), the GRIP request body capture limit and GRIP response limit (100000 bytes), the
control API's header and body limits under their 1.36 names, clients that never read (condure and
pushpin-handler stay within the same bound). Holdfast-only checks, skipped on Pushpin with the
observed reason: connections beyond `client_maxconn` wait in the listen backlog (condure 1.9.1
panics), and a WebSocket message over 16 MiB closes the connection with 1009 (Pushpin has no such
limit).
"""

import os
import socket
import struct
import time

import httpx
import pytest

from websockets.sync.client import connect as ws_connect

from conftest import Reader, children, grip
from test_bad_input import (
    HOLDFAST,
    Witness,
    bad_request,
    close_frame,
    exchange,
    read_until_closed,
    wait_ready,
    ws_frame,
    ws_open_raw,
)


@pytest.fixture
def witness(proxy, backend):
    w = Witness(proxy, backend)
    yield w
    w.close()


def assert_refused(port, data, text):
    out, closed = exchange(port, data)
    assert closed, out
    if HOLDFAST:
        assert out == bad_request(text)
    else:
        assert out == b"", out


def get_plain(port, head_extra=b"", target=b"/plain"):
    out, closed = exchange(
        port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + head_extra + b"\r\n"
    )
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"plain\n"), out[:200]


# --- request heads -----------------------------------------------------------------------------


def test_client_buffer_size_bounds_the_request_head(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"], runner_conf=["client_buffer_size=2048"])
    witness = Witness(proxy, backend)
    try:
        get_plain(proxy.port, b"X-Fits: " + b"a" * 1500 + b"\r\n")
        assert_refused(
            proxy.port,
            b"GET /plain HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n",
            "Request header size exceeded limit of 2048 bytes.\n",
        )
        witness.check()
    finally:
        witness.close()


def test_uri_length_limit(proxy, backend, witness):
    get_plain(proxy.port, target=b"/plain?" + b"a" * 4000)
    assert_refused(
        proxy.port,
        b"GET /plain?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
        "Request URI exceeded limit of 4096 bytes.\n",
    )
    witness.check()


def test_header_count_limit(proxy, backend, witness):
    def headers(n):
        # Host and Connection plus n - 2 more.
        return b"".join(b"X-%d: y\r\n" % i for i in range(n - 2))

    get_plain(proxy.port, headers(64))
    assert_refused(
        proxy.port,
        b"GET /plain HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + headers(65) + b"\r\n",
        "Failed to parse request: too many headers\n",
    )
    witness.check()


# --- request and response bodies ---------------------------------------------------------------


def test_request_body_limits(proxy, backend, witness):
    backend.route("/echo-len", lambda r: (200, [("Content-Type", "text/plain")], f"{len(r['body'])}\n"))
    backend.route("/hold", lambda r: (200, grip("stream", "bodies"), "start\n"))
    # Proxied bodies are streamed, not limited.
    big = os.urandom(1_000_000)
    r = httpx.post(proxy.base + "/echo-len", content=big, timeout=30)
    assert (r.status_code, r.text) == (200, "1000000\n")
    assert backend.requests_to("/echo-len")[0]["body"] == big
    # A request answered with a GRIP instruction must fit the capture limit (100000 bytes).
    r = httpx.post(proxy.base + "/hold", content=b"y" * 150_000, timeout=30)
    assert (r.status_code, r.text) == (400, "Request too large to accept GRIP instruct.\n")
    witness.check()


def test_response_body_limits(proxy, backend, witness):
    body = os.urandom(3_000_000)
    backend.route("/big", lambda r: (200, [("Content-Type", "application/octet-stream")], body))
    backend.route("/big-grip", lambda r: (200, grip("response", "c"), "x" * 150_000))
    r = httpx.get(proxy.base + "/big", timeout=30)
    assert (r.status_code, r.content) == (200, body)
    # A GRIP instruction is read whole, up to 100000 bytes.
    r = httpx.get(proxy.base + "/big-grip", timeout=30)
    assert (r.status_code, r.text) == (502, "Error while proxying to origin.\n")
    witness.check()


# --- publish API -------------------------------------------------------------------------------


def test_publish_api_header_and_body_limits(make_proxy, backend):
    # The 1.36 key names (Holdfast also reads push_in_http_max_*).
    proxy = make_proxy(
        [f"* 127.0.0.1:{backend.port}"],
        handler_conf=["push_in_max_headers_size=1000", "push_in_max_body_size=2000"],
    )
    witness = Witness(proxy, backend)
    try:
        item = {"channel": "witness", "formats": {"http-stream": {"content": "x" * 2100 + "\n"}}}
        r = httpx.post(proxy.control_uri + "/publish/", json={"items": [item]}, timeout=10)
        assert (r.status_code, r.text) == (400, "Request body too large.\n")
        small = {"channel": "witness", "formats": {"http-stream": {"content": "small\n"}}}
        r = httpx.post(proxy.control_uri + "/publish/", json={"items": [small]}, headers={"X-Big": "a" * 1200}, timeout=10)
        assert (r.status_code, r.text) == (400, "Request header too large.\n")
        r = httpx.post(proxy.control_uri + "/publish/", json={"items": [small]}, timeout=10)
        assert (r.status_code, r.text) == (200, "Published\n")
        seen = witness.stream.wait_for(b"small\n")
        assert b"x" * 100 not in seen
        witness.check()
    finally:
        witness.close()


def test_connection_subscription_max_for_http_streams(make_proxy, backend):
    """An HTTP stream naming more channels than `connection_subscription_max` is subscribed to
    the first ones only (the WebSocket side is in test_ws_grip.py)."""
    backend.route("/many", lambda r: (200, grip("stream", ",".join(f"ch{i}" for i in range(5))), "many\n"))
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"], handler_conf=["connection_subscription_max=3"])
    witness = Witness(proxy, backend)
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    many = Reader(sock)
    try:
        sock.sendall(b"GET /many HTTP/1.1\r\nHost: a\r\n\r\n")
        many.wait_for(b"many\n")
        # Subscriptions are live once a publish to the first channel gets through.
        deadline = time.time() + 10
        while True:
            publish_stream(proxy, "ch0", "ready\n")
            try:
                many.wait_for(b"ready\n", timeout=0.3)
                break
            except AssertionError:
                assert time.time() < deadline, "the stream never got a publish"
        for i in range(5):
            publish_stream(proxy, f"ch{i}", f"to ch{i}\n")
        publish_stream(proxy, "ch2", "last\n")
        seen = many.wait_for(b"last\n")
        assert b"to ch0\n" in seen and b"to ch1\n" in seen and b"to ch2\n" in seen
        assert b"to ch3\n" not in seen and b"to ch4\n" not in seen
        witness.check()
    finally:
        many.close()
        witness.close()


def publish_stream(proxy, channel, content):
    item = {"channel": channel, "formats": {"http-stream": {"content": content}}}
    r = httpx.post(proxy.control_uri + "/publish/", json={"items": [item]}, timeout=10)
    assert r.status_code == 200


# --- WebSocket messages ------------------------------------------------------------------------

MAX_MESSAGE = 16 * 1024 * 1024  # connmgr --max-message-size default


@pytest.mark.skipif(
    not HOLDFAST,
    reason="Pushpin 1.36 has no client message size limit of its own: condure forwards fragments "
    "as they come (observed: its test target echoes only the first ~24 KB of a larger message)",
)
def test_websocket_message_size_limit(make_proxy):
    proxy = make_proxy(["* test"])
    wait_ready(proxy, "/")
    sock, rest = ws_open_raw(proxy.port)
    with sock:
        # A 1 MiB message in 64 KiB fragments is echoed.
        chunk = b"a" * 65536
        frames = [ws_frame(0x01 if i == 0 else 0x00, chunk) for i in range(15)]
        frames.append(ws_frame(0x80, chunk))
        sock.sendall(b"".join(frames))
        want = 1 << 20
        got = rest
        sock.settimeout(10)
        while len(got) < want + 10:
            data = sock.recv(1 << 20)
            assert data, got[:20]
            got += data
        assert got[:2] == b"\x81\x7f" and struct.unpack(">Q", got[2:10])[0] == want
        # Fragments adding up to more than the limit: 1009 once the limit is crossed.
        big = b"b" * (1 << 20)
        n = MAX_MESSAGE // len(big) + 1
        try:
            for i in range(n):
                sock.sendall(ws_frame(0x01 if i == 0 else 0x00, big))
        except OSError:
            pass
        out, closed = read_until_closed(sock, timeout=10)
        assert closed
        assert out == close_frame(1009)


# --- connections -------------------------------------------------------------------------------


@pytest.mark.skipif(
    not HOLDFAST,
    reason="condure 1.9.1 (Pushpin 1.36) panics when a connection arrives beyond "
    "--stream-maxconn (observed: 'worker-0 panicked at src/server.rs:1684', streams cut)",
)
def test_client_maxconn_leaves_extra_connections_waiting(make_proxy, backend):
    backend.route("/hold", lambda r: (200, grip("stream", "maxconn"), "start\n"))
    backend.route("/plain", lambda r: (200, [("Content-Type", "text/plain")], "plain\n"))
    proxy = make_proxy(
        [f"* 127.0.0.1:{backend.port}"], runner_conf=["client_maxconn=4", "connmgr_workers=1"]
    )
    wait_ready(proxy)
    holds = []
    try:
        # wait_ready's connections may still be closing: let the count settle.
        time.sleep(0.5)
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            sock.sendall(b"GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
            holds.append(Reader(sock))
            holds[-1].wait_for(b"start\n")
        extra = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        extra.sendall(b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n")
        waiting = Reader(extra)
        with pytest.raises(AssertionError):
            waiting.wait_for(b"plain\n", timeout=1.5)
        # The held streams still get their publishes.
        item = {"channel": "maxconn", "formats": {"http-stream": {"content": "to all\n"}}}
        assert httpx.post(proxy.control_uri + "/publish/", json={"items": [item]}).status_code == 200
        for h in holds:
            h.wait_for(b"to all\n")
        holds.pop().close()
        waiting.wait_for(b"plain\n", timeout=10)
        waiting.close()
    finally:
        for h in holds:
            h.close()


# --- a client that never reads -----------------------------------------------------------------

SUBSCRIBERS = 50
ITEM = 32 * 1024
PUBLISHES = 200  # 6.4 MB to each subscriber, 320 MB in all
QUEUE_ITEMS = 100  # per-connection queue of pending deliveries (handler/src/grip/hub/outflow.rs)
RESPONSE_WINDOW = 64 * 1024  # connmgr response credit window: max(client_buffer_size, 64 KiB)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def sleeper(proxy, request):
    """A client that sends `request` and never reads. Its small receive buffer (no autotuning)
    means the kernel cannot absorb the flood either."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", proxy.port))
    sock.sendall(request)
    return sock


def flood(proxy, fmt, witness_channel, wait_witness):
    """Publishes PUBLISHES items of ITEM bytes to channel `flood` (and a small numbered one to
    `witness_channel`) while sampling the RSS of the runner's children; asserts that none grew
    beyond what the configuration bounds."""
    pids = dict(children(proxy.process.pid))
    assert pids, "no child processes found"
    before = {pid: rss_kib(pid) for pid in pids}
    peak = dict(before)
    payload = "x" * (ITEM - 16)
    for i in range(PUBLISHES):
        items = [
            {"channel": "flood", "formats": {fmt: {"content": f"{i:08d} {payload}\n"}}},
            {"channel": witness_channel, "formats": {fmt: {"content": f"w{i}\n"}}},
        ]
        r = httpx.post(proxy.control_uri + "/publish/", json={"items": items}, timeout=30)
        assert r.status_code == 200
        if i % 20 == 0:
            for pid in pids:
                peak[pid] = max(peak[pid], rss_kib(pid))
    # The reading witness gets every one of its messages, in order, meanwhile.
    order = wait_witness()
    assert order == list(range(PUBLISHES))
    time.sleep(1)
    for pid in pids:
        peak[pid] = max(peak[pid], rss_kib(pid))

    # What each process may hold for the sleepers: per connection its read and write buffers
    # (client_buffer_size each) and its response window; the per-connection queues of
    # QUEUE_ITEMS items, whose payloads are shared by every connection (one publish is one
    # payload), twice (queued, and in flight between the processes); 16 MiB of allocator and
    # socket-library slack. Anything that grew with what was published (320 MB) would be far
    # beyond it.
    per_conn = 2 * 8192 + RESPONSE_WINDOW
    bound_kib = (SUBSCRIBERS * per_conn + 2 * QUEUE_ITEMS * ITEM + (16 << 20)) // 1024
    published_kib = SUBSCRIBERS * PUBLISHES * ITEM // 1024
    assert bound_kib < published_kib // 10
    growth = {pids[pid]: peak[pid] - before[pid] for pid in pids}
    print(f"RSS growth (KiB) {growth}, bound {bound_kib}, published {published_kib}")
    for pid in pids:
        assert peak[pid] - before[pid] <= bound_kib, (pids[pid], growth, bound_kib)
    if HOLDFAST:
        log = proxy.log()
        assert "dropped" in log and "deliveries" in log, log[-3000:]


def test_http_streams_that_never_read_do_not_grow_memory(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    backend.route("/sub", lambda r: (200, grip("stream", "flood"), "start\n"))
    witness = Witness(proxy, backend)
    sleepers = []
    try:
        for _ in range(SUBSCRIBERS):
            sleepers.append(sleeper(proxy, b"GET /sub HTTP/1.1\r\nHost: a\r\n\r\n"))
        assert backend.wait_requests("/sub", SUBSCRIBERS)
        time.sleep(1)

        def wait_witness():
            seen = witness.stream.wait_for(f"w{PUBLISHES - 1}\n".encode(), timeout=30)
            body = seen.split(b"start\n", 1)[1]
            return [int(line[1:]) for line in body.split(b"\n") if line.startswith(b"w")]

        flood(proxy, "http-stream", "witness", wait_witness)
        witness.check()
    finally:
        for s in sleepers:
            s.close()
        witness.close()


def test_websockets_that_never_read_do_not_grow_memory(make_proxy):
    proxy = make_proxy(["* test"])
    wait_ready(proxy, "/")
    upgrade = (
        b"GET /ws?channel=flood HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    sleepers = [sleeper(proxy, upgrade) for _ in range(SUBSCRIBERS)]
    try:
        with ws_connect(f"ws://127.0.0.1:{proxy.port}/ws?channel=wsw", ping_interval=None, max_size=None) as ws:
            # Subscriptions are live once a publish gets through to the witness.
            deadline = time.time() + 10
            while True:
                publish_ws(proxy, "wsw", "ready")
                try:
                    assert ws.recv(timeout=0.5) == "ready"
                    break
                except TimeoutError:
                    assert time.time() < deadline, "the witness never got a publish"
            while True:  # drain repeated readiness publishes
                try:
                    ws.recv(timeout=0.5)
                except TimeoutError:
                    break

            def wait_witness():
                return [int(ws.recv(timeout=30)[1:]) for _ in range(PUBLISHES)]

            flood(proxy, "ws-message", "wsw", wait_witness)
            publish_ws(proxy, "wsw", "still here")
            assert ws.recv(timeout=10) == "still here"
    finally:
        for s in sleepers:
            s.close()


def publish_ws(proxy, channel, content):
    item = {"channel": channel, "formats": {"ws-message": {"content": content}}}
    r = httpx.post(proxy.control_uri + "/publish/", json={"items": [item]}, timeout=10)
    assert r.status_code == 200
