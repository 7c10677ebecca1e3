"""WebSocket passthrough (reference §5.1, §5.2: route targets without `over_http`) and the `test`
target's `/ws`, driven by the Python `websockets` client against a real `websockets` backend
server started by each test. Every expectation was observed on Pushpin 1.36
(HOLDFAST_TEST_TARGET=pushpin runs the same file against it).
"""

import asyncio
import threading
import time

import httpx
import pytest
import websockets
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response
from websockets.sync.client import connect

from conftest import free_port

class WsBackend:
    """A `websockets` server in its own thread. `handler(conn, log)` is an async function;
    `log` is a list the test can inspect. `grip` adds `Sec-WebSocket-Extensions: grip...` to
    the 101; `reject` answers the handshake with (status, reason, headers, body) instead."""

    def __init__(self, handler, grip=None, reject=None):
        self.log = []
        self.requests = []
        ready = threading.Event()
        backend = self

        def process_request(conn, request):
            backend.requests.append(request)
            if reject is not None:
                status, reason, headers, body = reject
                return Response(status, reason, Headers(headers), body)
            return None

        def process_response(conn, request, response):
            if grip is not None:
                response.headers["Sec-WebSocket-Extensions"] = grip
            return response

        async def handle(conn):
            try:
                await handler(conn, backend.log)
            except ConnectionClosed:
                pass
            backend.log.append(("closed", conn.close_code, conn.close_reason))

        async def main():
            async with websockets.serve(
                handle,
                "127.0.0.1",
                0,
                ping_interval=None,
                process_request=process_request,
                process_response=process_response,
                max_size=None,
                select_subprotocol=lambda conn, offered: "chat" if "chat" in offered else None,
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.loop = asyncio.get_running_loop()
                self.stop_future = self.loop.create_future()
                ready.set()
                await self.stop_future

        self.thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def wait_log(self, predicate, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [e for e in list(self.log) if predicate(e)]
            if found:
                return found[0]
            time.sleep(0.02)
        return None

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_future.set_result, None)
        self.thread.join(10)


@pytest.fixture
def ws_backends():
    started = []

    def make(handler, **kwargs):
        b = WsBackend(handler, **kwargs)
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()


async def echo(conn, log):
    async for msg in conn:
        log.append(("msg", msg))
        if msg == "close-me":
            await conn.close(4001, "bye")
            return
        await conn.send(msg)


def url(proxy, path="/ws"):
    return f"ws://127.0.0.1:{proxy.port}{path}"


def test_echo_and_handshake_headers(make_proxy, ws_backends):
    b = ws_backends(echo)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(
        url(proxy, "/ws?a=1"),
        subprotocols=["chat"],
        additional_headers={"X-Client": "c"},
        ping_interval=None,
    ) as ws:
        assert ws.subprotocol == "chat"
        assert ws.response.headers.get("Server", "").startswith("Python/")
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("text")
        assert ws.recv(timeout=10) == "text"
        ws.send(b"\x00bin")
        assert ws.recv(timeout=10) == b"\x00bin"
        client_key = ws.request.headers["Sec-WebSocket-Key"]
    req = b.requests[0]
    assert req.path == "/ws?a=1"
    h = req.headers
    assert h["X-Client"] == "c"
    assert h["Sec-WebSocket-Protocol"] == "chat"
    # The client's deflate offer is dropped; the proxy offers grip and signs.
    assert h.get_all("Sec-WebSocket-Extensions") == ["grip"]
    assert "Grip-Sig" in h
    # The proxy makes its own handshake.
    assert h["Sec-WebSocket-Key"] != client_key
    assert h["Sec-WebSocket-Version"] == "13"
    names = [n.lower() for n, _ in h.raw_items()]
    assert names[-4:] == ["upgrade", "connection", "sec-websocket-version", "sec-websocket-key"]


def test_no_grip_route_offers_nothing(make_proxy, ws_backends):
    b = ws_backends(echo)
    proxy = make_proxy([f"*,proto=ws,no_grip 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
    h = b.requests[0].headers
    assert "Sec-WebSocket-Extensions" not in h
    assert "Grip-Sig" not in h


def test_messages_stay_in_order_both_ways(make_proxy, ws_backends):
    async def burst(conn, log):
        async for msg in conn:
            if msg == "go":
                for i in range(100):
                    await conn.send(f"b{i}:" + "y" * 500)
            else:
                log.append(msg)

    b = ws_backends(burst)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        for i in range(100):
            ws.send(f"c{i}:" + "x" * 500)
        ws.send("go")
        got = [ws.recv(timeout=10) for _ in range(100)]
    assert [m.split(":")[0] for m in got] == [f"b{i}" for i in range(100)]
    deadline = time.time() + 10
    while len(b.log) < 100 and time.time() < deadline:
        time.sleep(0.05)
    assert [m.split(":")[0] for m in b.log[:100]] == [f"c{i}" for i in range(100)]


def test_close_codes_both_ways(make_proxy, ws_backends):
    b = ws_backends(echo)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        ws.send("close-me")
        with pytest.raises(ConnectionClosed) as err:
            ws.recv(timeout=10)
        assert (err.value.rcvd.code, err.value.rcvd.reason) == (4001, "bye")
    with connect(url(proxy), ping_interval=None) as ws:
        ws.close(4002, "cya")
        assert (ws.close_code, ws.close_reason) == (4002, "cya")
    assert b.wait_log(lambda e: e == ("closed", 4002, "cya"))


def test_rejection_relays_status_and_body_only(make_proxy, ws_backends):
    b = ws_backends(echo, reject=(403, "Nope", [("X-Why", "because"), ("Content-Length", "8")], b"go away\n"))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with pytest.raises(InvalidStatus) as err:
        with connect(url(proxy), ping_interval=None):
            pass
    r = err.value.response
    assert r.status_code == 403
    assert r.reason_phrase == ""
    assert bytes(r.body) == b"go away\n"
    assert "X-Why" not in r.headers


def test_unreachable_target_falls_through(make_proxy, ws_backends):
    b = ws_backends(echo)
    dead = free_port()
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{dead} 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
    only_dead = make_proxy([f"*,proto=ws 127.0.0.1:{dead}"])
    with pytest.raises(InvalidStatus) as err:
        with connect(url(only_dead), ping_interval=None):
            pass
    assert err.value.response.status_code == 502
    assert bytes(err.value.response.body) == b"Error while proxying to origin.\n"


def test_backend_vanishing_drops_the_client(make_proxy, ws_backends):
    async def vanish(conn, log):
        await conn.recv()
        conn.transport.abort()

    b = ws_backends(vanish)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        ws.send("x")
        with pytest.raises(ConnectionClosed) as err:
            ws.recv(timeout=10)
        # No close frame: the TCP connection was just closed.
        assert err.value.rcvd is None


def test_client_vanishing_drops_the_backend(make_proxy, ws_backends):
    b = ws_backends(echo)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        ws.socket.close()
    assert b.wait_log(lambda e: e[0] == "closed") == ("closed", 1006, "")


def test_grip_mode_prefix_control_and_detach(make_proxy, ws_backends):
    async def grip_origin(conn, log):
        async for msg in conn:
            log.append(("msg", msg))
            if msg == "detach":
                await conn.send('c:{"type":"detach"}')
            else:
                await conn.send("unprefixed " + msg)
                await conn.send("p>" + msg)

    b = ws_backends(grip_origin, grip='grip; message-prefix="p>"')
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("one")
        assert ws.recv(timeout=10) == "one"
        ws.send("detach")
        # The backend gets a close frame without a code.
        assert b.wait_log(lambda e: e[0] == "closed") == ("closed", 1005, "")
        ws.send("after detach")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1)
        ws.close(4003, "done")
        # Pushpin answers the client's close itself.
        assert ws.close_code == 1000
    assert ("msg", "after detach") not in b.log


def test_message_larger_than_the_response_window(make_proxy, ws_backends):
    """Backend messages beyond the connmgr's response window (64 KiB) pass whole, in order,
    interleaved with small ones: a larger message waits until the whole window is back and
    then goes alone (the rule in proto/src/internal.rs, "Flow control")."""

    async def big(conn, log):
        async for msg in conn:
            await conn.send("z" * 200000)
            await conn.send("small")
            await conn.send(b"\x01" * 100000)

    b = ws_backends(big)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None, max_size=None) as ws:
        for _ in range(3):
            ws.send("go")
        for _ in range(3):
            assert ws.recv(timeout=10) == "z" * 200000
            assert ws.recv(timeout=10) == "small"
            assert ws.recv(timeout=10) == b"\x01" * 100000
        # The connection still carries small messages both ways afterwards.
        ws.send("go")
        assert len(ws.recv(timeout=10)) == 200000


def test_test_target_ws_echo_and_publish(make_proxy):
    proxy = make_proxy(["* test"])
    with connect(url(proxy), ping_interval=None) as ws:
        assert "Sec-WebSocket-Protocol" not in ws.response.headers
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
        ws.send(b"\x01bin")
        assert ws.recv(timeout=10) == b"\x01bin"
        ws.send("m:as is")
        assert ws.recv(timeout=10) == "m:as is"
        item = {"channel": "test", "formats": {"ws-message": {"content": "pub!"}}}
        deadline = time.time() + 10
        got = None
        while got is None and time.time() < deadline:
            httpx.post(proxy.control_uri + "/publish/", json={"items": [item]})
            try:
                got = ws.recv(timeout=0.5)
            except TimeoutError:
                pass
        assert got == "pub!"
        ws.close(4005, "r")
        assert (ws.close_code, ws.close_reason) == (4005, "r")


def test_test_target_ws_channels_and_other_paths(make_proxy):
    proxy = make_proxy(["*,path_beg=/t/ test"])
    with connect(url(proxy, "/t/ws/?channel=a&channel=b"), ping_interval=None) as ws:
        def publish(channel, content):
            item = {"channel": channel, "formats": {"ws-message": {"content": content}}}
            httpx.post(proxy.control_uri + "/publish/", json={"items": [item]})

        deadline = time.time() + 10
        got = None
        while got is None and time.time() < deadline:
            publish("a", "A")
            try:
                got = ws.recv(timeout=0.5)
            except TimeoutError:
                pass
        assert got == "A"
        while True:  # drain retries
            try:
                ws.recv(timeout=0.5)
            except TimeoutError:
                break
        publish("test", "T")
        publish("b", "B")
        assert ws.recv(timeout=5) == "B"
    for path in ["/t/", "/t/response", "/t/foo"]:
        with pytest.raises(InvalidStatus) as err:
            with connect(url(proxy, path), ping_interval=None):
                pass
        r = err.value.response
        assert (r.status_code, r.reason_phrase) == (404, "Not Found")
        assert bytes(r.body) == b"no such test resource\n"
