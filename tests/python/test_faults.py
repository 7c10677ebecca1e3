"""Failures (issue 7): a backend that is down or resets mid-response, and a proxy process killed
with SIGKILL while client connections are held. Each test drives the real runner over real
sockets with real clients (raw sockets for byte-exact HTTP, the `websockets` library for
WebSockets) and checks what clients see, what the runner logs, its exit status, and that no
child process is left behind (read from /proc). Every test also runs against Pushpin
(HOLDFAST_TEST_TARGET=pushpin) where Pushpin behaves the same; where it does not, the skip reason
says what Pushpin does instead.
"""

import os
import signal
import socket
import struct
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import TARGET, children, grip
from test_ws_grip import control, grip_backend, ws_url

# The name each target gives its two main processes in /proc/<pid>/comm (15 bytes at most).
HANDLER = "pushpin-handler" if TARGET == "pushpin" else "holdfast-handle"
CONNMGR = "condure" if TARGET == "pushpin" else "holdfast-connmg"


def alive(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def wait_gone(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


def child_pid(proxy, comm):
    found = [pid for pid, name in children(proxy.process.pid) if name == comm]
    assert found, f"no {comm} child in {children(proxy.process.pid)}"
    return found[0]


def read_until_eof(sock, timeout):
    """Everything `sock` sends until it is closed; raises TimeoutError if it is still open after
    `timeout` seconds. A reset counts as a close."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        except socket.timeout:
            raise TimeoutError(f"still open after {timeout}s; got {data[:200]!r}")
        if not chunk:
            return data
        data += chunk


def raw_request(port, path, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: example\r\n\r\n".encode())
    return s


def read_head(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before the head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.decode(), rest


def wait_served(proxy, path="/ok", timeout=10):
    """Waits until `path` is answered 200: Pushpin answers 500 `Accept service unavailable.`
    for a moment after its listener opens."""
    deadline = time.time() + timeout
    while True:
        s = raw_request(proxy.port, path)
        try:
            head = read_head(s)[0]
        except (AssertionError, OSError) as e:
            head = repr(e)
        finally:
            s.close()
        if head.startswith("HTTP/1.1 200"):
            return
        assert time.time() < deadline, head
        time.sleep(0.2)


def read_response(sock, timeout=10):
    """A whole Content-Length response from `sock`: (head, body)."""
    head, body = read_head(sock, timeout)
    length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-body: {head} {body!r}"
        body += chunk
    return head, body


class ResettingBackend:
    """A raw-socket origin. `/ok` answers normally; any other path sends `prefix` (part of a
    response) and then resets the connection (SO_LINGER 0), like a crashing origin."""

    def __init__(self, prefix, port=0):
        self.prefix = prefix
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            if data.split(b" ")[1].startswith(b"/ok"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
                time.sleep(0.2)
                return
            conn.sendall(self.prefix)
            time.sleep(0.3)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def stop(self):
        # shutdown() wakes the thread blocked in accept(); close() alone would leave the socket
        # listening until the next connection arrives.
        try:
            self.srv.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.srv.close()


@pytest.fixture
def resetting():
    made = []

    def make(prefix):
        b = ResettingBackend(prefix)
        made.append(b)
        return b

    yield make
    for b in made:
        b.stop()


def test_backend_down_gives_502_then_recovers(make_proxy, resetting):
    # Nothing listens on the dead port: connection refused -> Pushpin's 502 text, and the
    # client's keep-alive connection stays usable.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead = probe.getsockname()[1]
    probe.close()
    live = resetting(b"")
    proxy = make_proxy([f"*,path_beg=/dead 127.0.0.1:{dead}", f"* 127.0.0.1:{live.port}"])
    wait_served(proxy)
    s = raw_request(proxy.port, "/dead/x")
    head, body = read_response(s)
    assert head.startswith("HTTP/1.1 502 Bad Gateway"), head
    assert "Content-Type: text/plain" in head
    assert body == b"Error while proxying to origin.\n"
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: example\r\n\r\n")
    assert read_response(s)[0].startswith("HTTP/1.1 200")
    # The origin goes down while the proxy runs, then comes back on the same port.
    port = live.port
    live.stop()
    time.sleep(0.5)  # the origin's open connections close too
    s.sendall(b"GET /ok HTTP/1.1\r\nHost: example\r\n\r\n")
    head, body = read_response(s)
    assert head.startswith("HTTP/1.1 502 Bad Gateway"), head
    assert body == b"Error while proxying to origin.\n"
    back = ResettingBackend(b"", port=port)
    try:
        s2 = raw_request(proxy.port, "/ok")
        assert read_head(s2)[0].startswith("HTTP/1.1 200")
    finally:
        back.stop()
    s.close()


@pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36 leaves the client waiting forever for the rest of a Content-Length body "
    "after the origin reset the connection (observed on loopback)",
)
def test_backend_reset_mid_body_closes_the_client_connection(make_proxy, resetting):
    backend = resetting(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n" + b"a" * 5000
    )
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    wait_served(proxy)
    other = raw_request(proxy.port, "/ok")
    assert read_head(other)[0].startswith("HTTP/1.1 200")
    s = raw_request(proxy.port, "/big")
    started = time.time()
    data = read_until_eof(s, timeout=10)
    # The head and the bytes the origin sent arrive, then the connection is closed (the client
    # sees a body shorter than its Content-Length: a truncated response, never a hang).
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"Content-Length: 100000" in head
    assert body == b"a" * 5000
    assert time.time() - started < 5
    # Other clients are unaffected: the kept-alive connection opened before still works.
    other.sendall(b"GET /ok HTTP/1.1\r\nHost: example\r\n\r\n")
    assert read_head(other)[0].startswith("HTTP/1.1 200")


@pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36 ends the client's chunked body with a last chunk (0\\r\\n\\r\\n) after the "
    "origin reset, so the truncated response looks complete; Holdfast closes the connection instead",
)
def test_backend_reset_mid_chunked_body_truncates_the_stream(make_proxy, resetting):
    backend = resetting(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    )
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    wait_served(proxy)
    s = raw_request(proxy.port, "/chunked")
    data = read_until_eof(s, timeout=10)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:200]
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"5\r\nhello\r\n", "no last chunk: the client can tell the body is incomplete"
    assert read_head(raw_request(proxy.port, "/ok"))[0].startswith("HTTP/1.1 200")


def test_backend_reset_before_the_head_gives_502(make_proxy, resetting):
    backend = resetting(b"HTTP/1.1 200 OK\r\nContent-Ty")
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    wait_served(proxy)
    s = raw_request(proxy.port, "/half")
    head, rest = read_head(s)
    assert head.startswith("HTTP/1.1 502 Bad Gateway"), head
    while len(rest) < len(b"Error while proxying to origin.\n"):
        rest += s.recv(4096)
    assert rest == b"Error while proxying to origin.\n"
    assert read_head(raw_request(proxy.port, "/ok"))[0].startswith("HTTP/1.1 200")


def held_clients(proxy, backend):
    """A held SSE stream (raw socket, head and first event read), a GRIP WebSocket (WebSocket
    over HTTP, subscribed) and a plain request in flight to a slow origin."""
    backend.route(
        "/sse",
        lambda r: (200, grip(hold="stream", channel="c", ctype="text/event-stream"), "event: hi\ndata: x\n\n"),
    )
    backend.route("/ws", grip_backend(on_open=[control("subscribe", channel="c")]))

    def slow(req):
        time.sleep(float(req["path"].split("=")[1]))
        return 200, [("Content-Type", "text/plain")], "slow done\n"

    backend.route("/slow", slow)
    # Pushpin answers 500 `Accept service unavailable.` until its handler has connected.
    deadline = time.time() + 10
    while True:
        sse = raw_request(proxy.port, "/sse")
        head, first = read_head(sse)
        if head.startswith("HTTP/1.1 200") or time.time() > deadline:
            break
        sse.close()
        time.sleep(0.2)
    assert head.startswith("HTTP/1.1 200"), head
    while b"data: x" not in first:
        first += sse.recv(4096)
    ws = connect(ws_url(proxy))
    return sse, ws


@pytest.mark.parametrize("victim", ["handler", "connmgr"])
def test_killed_child_closes_clients_and_stops_the_runner(make_proxy, backend, victim):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port},over_http"])
    sse, ws = held_clients(proxy, backend)
    slow = raw_request(proxy.port, "/slow?t=3")
    assert backend.wait_requests("/slow", 1)
    kids = [pid for pid, _ in children(proxy.process.pid)]
    killed_at = time.time()
    os.kill(child_pid(proxy, HANDLER if victim == "handler" else CONNMGR), signal.SIGKILL)

    # Held connections are closed promptly (no client is left hanging on a dead process).
    assert read_until_eof(sse, timeout=5) == b""
    assert read_until_eof(slow, timeout=5) == b"", "the request in flight is lost, not answered"
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    if TARGET == "holdfast" and victim == "handler":
        # The surviving connmgr closes WebSockets with a close frame: 1001 going away.
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert time.time() - killed_at < 5

    # The runner stops the rest, logs why, and exits non-zero (so a supervisor restarts it).
    status = proxy.process.wait(timeout=15)
    assert status != 0
    assert time.time() - killed_at < 5, "the survivor is stopped at once, not drained"
    if TARGET == "holdfast":
        program = "holdfast-handler" if victim == "handler" else "holdfast-connmgr"
        assert f"{program} exited unexpectedly (killed by signal 9)" in proxy.log(), proxy.log()
    assert wait_gone(kids, 5), f"orphans: {[(p, alive(p)) for p in kids]}"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1)


@pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36's services (condure, zurl, pushpin-proxy, pushpin-handler) keep running, "
    "orphaned, after its runner is killed with SIGKILL (observed on loopback)",
)
def test_killed_runner_leaves_no_orphans(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port},over_http"])
    sse, ws = held_clients(proxy, backend)
    kids = [pid for pid, _ in children(proxy.process.pid)]
    assert len(kids) >= 2
    os.kill(proxy.process.pid, signal.SIGKILL)
    proxy.process.wait(timeout=5)
    # The children notice their parent died and stop on their own (Holdfast: the kernel sends
    # them SIGTERM, so they drain and close their clients within their deadline).
    assert wait_gone(kids, 10), f"orphans: {[(p, alive(p)) for p in kids]}"
    assert read_until_eof(sse, timeout=2) == b""
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=2)
