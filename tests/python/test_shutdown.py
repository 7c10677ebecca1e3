"""Staged graceful shutdown (DESIGN.md, issue 7): on SIGTERM the runner asks both processes to
stop; the connection manager stops accepting (new connections are refused) and closes idle
keep-alive connections, plain requests in flight complete, held streams and WebSockets are then
closed (WebSockets with close code 1001 going away), and everything exits 0 within the deadline.
A second SIGTERM/SIGINT stops everything at once. Every stage is checked over real sockets.

Pushpin 1.36 has no drain: on SIGTERM it closes every connection at once, requests in flight
included (WebSockets without a close frame); the tests that encode the drain are Holdfast-only
and say so.
"""

import signal
import socket
import threading
import time

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from conftest import TARGET, children
from test_faults import (
    alive,
    held_clients,
    raw_request,
    read_response,
    read_until_eof,
    wait_gone,
    ws_url,
)

NO_DRAIN = "Pushpin 1.36 does not drain on SIGTERM: it closes every connection at once, requests in flight included"


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


def in_background(fn):
    result = {}

    def run():
        try:
            result["value"] = fn()
        except Exception as e:  # reported by the test through `result`
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, result


@pytest.mark.skipif(TARGET == "pushpin", reason=NO_DRAIN)
def test_sigterm_stops_accepting_finishes_requests_then_closes_held_connections(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port},over_http"])
    sse, ws = held_clients(proxy, backend)
    idle = raw_request(proxy.port, "/slow?t=0")
    assert read_response(idle, 10)[0].startswith("HTTP/1.1 200")
    slow = raw_request(proxy.port, "/slow?t=2")
    assert backend.wait_requests("/slow?t=2".split("?")[0], 2)
    slow_done = in_background(lambda: (read_response(slow, 10), time.time()))
    kids = [pid for pid, _ in children(proxy.process.pid)]

    stopped_at = time.time()
    proxy.process.send_signal(signal.SIGTERM)

    # Stage 1: no new connections; idle keep-alive connections are closed.
    deadline = time.time() + 1
    while not refused(proxy.port) and time.time() < deadline:
        time.sleep(0.02)
    assert refused(proxy.port), "the listener is closed at once"
    assert read_until_eof(idle, timeout=1) == b""

    # Stage 2: the request in flight completes (and is told the connection will close).
    slow_done[0].join(10)
    assert "error" not in slow_done[1], slow_done[1]
    (head, body), finished_at = slow_done[1]["value"]
    assert head.startswith("HTTP/1.1 200"), head
    assert "Connection: close" in head
    assert body == b"slow done\n"
    assert finished_at - stopped_at > 1.5, "it was not cut short"

    # Stage 3: held streams and WebSockets are closed; WebSockets with 1001 going away.
    assert read_until_eof(sse, timeout=6) == b""
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=6)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value

    # Stage 4: everything exits 0 within the deadline.
    assert proxy.process.wait(timeout=10) == 0, proxy.log()
    assert time.time() - stopped_at < 8
    assert wait_gone(kids, 2), [(p, alive(p)) for p in kids]
    log = proxy.log()
    assert "[runner] stopping..." in log and "[runner] stopped" in log, log


@pytest.mark.skipif(TARGET == "pushpin", reason=NO_DRAIN)
def test_a_request_longer_than_the_deadline_is_cut_at_the_deadline(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port},over_http"])
    sse, _ws = held_clients(proxy, backend)
    slow = raw_request(proxy.port, "/slow?t=30")
    assert backend.wait_requests("/slow", 1)
    kids = [pid for pid, _ in children(proxy.process.pid)]
    stopped_at = time.time()
    proxy.process.send_signal(signal.SIGTERM)
    # The drain deadline is 5 s: the request is abandoned then, its connection closed.
    assert read_until_eof(slow, timeout=9) == b""
    assert 4 < time.time() - stopped_at < 9
    assert read_until_eof(sse, timeout=2) == b""
    assert proxy.process.wait(timeout=10) == 0, proxy.log()
    assert wait_gone(kids, 2)
    log = proxy.log()
    assert "shutdown deadline reached" in log or "cancelled streams at shutdown" in log, log


def test_a_second_signal_stops_everything_at_once(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port},over_http"])
    sse, ws = held_clients(proxy, backend)
    slow = raw_request(proxy.port, "/slow?t=30")
    assert backend.wait_requests("/slow", 1)
    kids = [pid for pid, _ in children(proxy.process.pid)]
    proxy.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    second_at = time.time()
    if proxy.process.poll() is None:  # Pushpin has already stopped after the first one
        proxy.process.send_signal(signal.SIGINT)
    status = proxy.process.wait(timeout=5)
    assert time.time() - second_at < 2
    if TARGET == "holdfast":
        assert status != 0, "a forced stop is not a clean one"
        assert "second signal: killing the remaining processes" in proxy.log(), proxy.log()
    assert wait_gone(kids, 2), [(p, alive(p)) for p in kids]
    for sock in (slow, sse):
        assert read_until_eof(sock, timeout=2) == b""
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=2)
    assert refused(proxy.port)


def test_sigterm_with_nothing_open_exits_at_once(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    # Served once, so every process is up (Pushpin answers 500 until its handler is).
    deadline = time.time() + 10
    while True:
        head = read_response(raw_request(proxy.port, "/none"), 10)[0]
        if head.startswith("HTTP/1.1 404") or time.time() > deadline:
            break
        time.sleep(0.2)
    assert head.startswith("HTTP/1.1 404"), head
    kids = [pid for pid, _ in children(proxy.process.pid)]
    started = time.time()
    proxy.process.send_signal(signal.SIGTERM)
    assert proxy.process.wait(timeout=10) == 0
    assert time.time() - started < 2
    assert wait_gone(kids, 2)


def test_websocket_clients_see_going_away_not_a_reset(make_proxy, backend):
    if TARGET == "pushpin":
        pytest.skip("Pushpin 1.36 drops WebSockets without a close frame on SIGTERM (1006)")
    proxy = make_proxy([f"* 127.0.0.1:{backend.port},over_http"])
    _sse, _ = held_clients(proxy, backend)
    clients = [connect(ws_url(proxy)) for _ in range(5)]
    proxy.process.send_signal(signal.SIGTERM)
    for ws in clients:
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=6)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert proxy.process.wait(timeout=10) == 0
