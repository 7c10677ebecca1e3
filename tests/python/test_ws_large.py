"""WebSocket messages larger than the connmgr's response credit window (64 KiB by default): origin
messages over WebSocket-over-HTTP, published `ws-message` items (the hub's fast path and its
queue) and client messages echoed through passthrough. Each must arrive whole and in order with
the small messages around it (the rule in proto/src/internal.rs, "Flow control": a message larger
than the window goes when the sender holds the whole window). Clients are the Python `websockets`
library, origins a `websockets` server or a gripcontrol WebSocket-over-HTTP backend; publishes go
through the HTTP publish API. Every test also runs against Pushpin (HOLDFAST_TEST_TARGET=pushpin).
"""

import base64
import json

import pytest
import requests
from gripcontrol import WebSocketEvent, decode_websocket_events, encode_websocket_events
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from conftest import TARGET
from test_ws_grip import EVENTS, control, grip_backend, publish_ws, wait_delivery, ws_url
from test_ws_passthrough import url, ws_backends  # noqa: F401 (ws_backends is a fixture)

BIG = 200_000

# Observed on Pushpin 1.36: a WebSocket-over-HTTP reply message of 32768 bytes or more never
# reaches the client (32000 does), and the second of two back-to-back 200000-byte client
# messages is never delivered; of published messages in one request, the ones after a message of
# 40 KB or more are dropped. Holdfast delivers all of them; those tests run on Holdfast only.
pushpin_woh_limit = pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36 never delivers a WebSocket-over-HTTP reply message of 32 KiB or more",
)
pushpin_batch = pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36 drops a published message that comes while a previous one of 40 KB or "
    "more is still being written (Holdfast queues it, bounded, and keeps the order)",
)
pushpin_back_to_back = pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36 loses the second of two back-to-back 200000-byte client messages",
)


def big_text(i):
    """A distinct text of BIG bytes, so a swapped or truncated message shows."""
    head = f"big{i}:"
    return head + "z" * (BIG - len(head))


def test_woh_replies_filling_more_than_the_window(make_proxy, backend):
    """Replies under 32 KiB each (what Pushpin delivers) that together need the window three
    times over: each waits for credits, none is lost or reordered."""
    parts = [f"{i}:" + "w" * 30000 for i in range(7)]

    def on_text(text):
        return [WebSocketEvent("TEXT", "m:" + p) for p in parts]

    backend.route("/ws", grip_backend(on_text=on_text))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy), max_size=None) as ws:
        ws.send("go")
        assert [ws.recv(timeout=10) for _ in parts] == parts


@pushpin_woh_limit
def test_woh_replies_larger_than_the_window(make_proxy, backend):
    def on_text(text):
        if text == "big":
            return [
                WebSocketEvent("TEXT", "m:" + big_text(1)),
                WebSocketEvent("TEXT", "m:small"),
                WebSocketEvent("TEXT", "m:" + big_text(2)),
            ]
        return [WebSocketEvent("TEXT", "m:echo " + text)]

    backend.route("/ws", grip_backend(on_text=on_text))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy), max_size=None) as ws:
        ws.send("big")
        assert ws.recv(timeout=10) == big_text(1)
        assert ws.recv(timeout=10) == "small"
        assert ws.recv(timeout=10) == big_text(2)
        ws.send("after")
        assert ws.recv(timeout=10) == "echo after"


@pushpin_woh_limit
def test_woh_binary_reply_larger_than_the_window(make_proxy, backend):
    blob = bytes(range(256)) * (BIG // 256)

    def handle(req):
        out = []
        for e in decode_websocket_events(req["body"]):
            if e.type == "OPEN":
                out.append(WebSocketEvent("OPEN"))
            elif e.type == "TEXT":
                out.append(WebSocketEvent("BINARY", blob))
            elif e.type == "CLOSE":
                out.append(WebSocketEvent("CLOSE", e.content))
        return 200, [("Content-Type", EVENTS)], encode_websocket_events(out)

    backend.route("/ws", handle)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy), max_size=None) as ws:
        ws.send("go")
        ws.send("go")
        assert ws.recv(timeout=10) == blob
        assert ws.recv(timeout=10) == blob


def test_published_messages_larger_than_the_window(make_proxy, backend):
    backend.route("/ws", grip_backend([control("subscribe", channel="big")]))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy), max_size=None) as a, connect(ws_url(proxy), max_size=None) as b:
        wait_delivery(proxy, [a, b], "big")
        # One at a time, with nothing outstanding: the hub's fast path.
        for i in range(3):
            publish_ws(proxy, "big", big_text(i))
            for ws in (a, b):
                assert ws.recv(timeout=10) == big_text(i)
        publish_ws(proxy, "big", "small")
        for ws in (a, b):
            assert ws.recv(timeout=10) == "small"


@pushpin_batch
def test_published_batch_with_messages_larger_than_the_window(make_proxy, backend):
    backend.route("/ws", grip_backend([control("subscribe", channel="big")]))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy), max_size=None) as a, connect(ws_url(proxy), max_size=None) as b:
        wait_delivery(proxy, [a, b], "big")
        # In one publish request, between small ones: the big ones wait for the window in the
        # connection's queue and everything keeps its order.
        items = []
        expected = []
        for i in range(1, 3):
            for content in (f"s{i}", big_text(i)):
                items.append({"channel": "big", "formats": {"ws-message": {"content": content}}})
                expected.append(content)
        blob = bytes(range(256)) * 400
        items.append(
            {
                "channel": "big",
                "formats": {"ws-message": {"content-bin": base64.b64encode(blob).decode()}},
            }
        )
        expected.append(blob)
        r = requests.post(
            proxy.control_uri + "/publish/", data=json.dumps({"items": items}), timeout=10
        )
        assert r.status_code == 200, r.text
        for ws in (a, b):
            got = [ws.recv(timeout=10) for _ in expected]
            assert [len(m) for m in got] == [len(m) for m in expected]
            assert got == expected


def test_client_messages_larger_than_the_window_echoed(make_proxy, ws_backends):
    async def echo(conn, log):
        async for msg in conn:
            await conn.send(msg)

    b = ws_backends(echo)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None, max_size=None) as ws:
        for m in [big_text(1), "small", bytes(range(256)) * 400, big_text(2)]:
            ws.send(m)
            assert ws.recv(timeout=10) == m


@pushpin_back_to_back
def test_client_messages_larger_than_the_window_back_to_back(make_proxy, ws_backends):
    """Several large client messages sent at once: each waits in the connmgr until the handler
    has credited the previous one back, and the echoes (large too) come back in order."""

    async def echo(conn, log):
        async for msg in conn:
            await conn.send(msg)

    b = ws_backends(echo)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None, max_size=None) as ws:
        sent = [big_text(1), "small", bytes(range(256)) * 1000, big_text(2), big_text(3)]
        for m in sent:
            ws.send(m)
        assert [ws.recv(timeout=10) for _ in sent] == sent


def test_backend_message_beyond_the_size_limit_closes_the_connection(make_proxy, ws_backends):
    """Beyond the largest message the handler takes from a backend (16 MiB, the connmgr's
    default --max-message-size) the connection is closed without a close frame, as Pushpin does
    beyond its own (lower) limit; nothing larger is ever buffered."""

    async def huge(conn, log):
        async for msg in conn:
            await conn.send("h" * 17_000_000)

    b = ws_backends(huge)
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{b.port}"])
    with connect(url(proxy), ping_interval=None, max_size=None) as ws:
        ws.send("go")
        with pytest.raises(ConnectionClosedError) as err:
            ws.recv(timeout=20)
        assert err.value.rcvd is None
