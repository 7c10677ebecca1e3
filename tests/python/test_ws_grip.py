"""GRIP on WebSockets (reference §5.2, §5.4, §6.1 ws-message): implicit `sub=` subscriptions,
the route prefix, `unsubscribe`, `set-meta` with the `skip-self` filter,
`connection_subscription_max`, too many filters, `keep-alive`, `send-delayed`/`flush-delayed`
and `action: refresh` (the last two are Holdfast-only checks: Pushpin 1.36 lacks them, see the
skip reasons). The origin is a WebSocket-over-HTTP backend written with gripcontrol's
events helpers; clients are the Python `websockets` library; publishes go through gripcontrol
or the HTTP publish API. Every test also runs against Pushpin (HOLDFAST_TEST_TARGET=pushpin).
"""

import json
import time

import pytest
import requests
import websockets
from gripcontrol import (
    GripPubControl,
    WebSocketEvent,
    WebSocketMessageFormat,
    decode_websocket_events,
    encode_websocket_events,
    websocket_control_message,
)
from pubcontrol import Item
from websockets.sync.client import connect

from conftest import TARGET

EVENTS = "application/websocket-events"


def ws_url(proxy, path="/ws"):
    return f"ws://127.0.0.1:{proxy.port}{path}"


def control(kind, **fields):
    return WebSocketEvent("TEXT", "c:" + websocket_control_message(kind, fields))


def grip_backend(on_open=(), on_text=None):
    """A WOH origin in GRIP mode: OPEN is answered with OPEN + `on_open` events (a list, or a
    function of the request); each TEXT with `on_text(content)` events."""

    def handle(req):
        out = []
        extra = []
        for e in decode_websocket_events(req["body"]):
            if e.type == "OPEN":
                out.append(WebSocketEvent("OPEN"))
                extra.append(("Sec-WebSocket-Extensions", "grip"))
                out.extend(on_open(req) if callable(on_open) else on_open)
            elif e.type == "TEXT" and on_text is not None:
                out.extend(on_text(e.content.decode()))
            elif e.type == "CLOSE":
                out.append(WebSocketEvent("CLOSE", e.content))
        return 200, [("Content-Type", EVENTS), *extra], encode_websocket_events(out)

    return handle


def publish_ws(proxy, channel, content, meta=None):
    item = {"channel": channel, "formats": {"ws-message": {"content": content}}}
    if meta:
        item["meta"] = meta
    r = requests.post(proxy.control_uri + "/publish/", data=json.dumps({"items": [item]}), timeout=10)
    assert r.status_code == 200, r.text


def wait_delivery(proxy, clients, channel):
    """Publishes probes on `channel` until each client got one (subscriptions are
    asynchronous), then drains the extra probes."""
    for ws in clients:
        deadline = time.time() + 10
        while True:
            publish_ws(proxy, channel, "probe")
            try:
                if ws.recv(timeout=0.5) == "probe":
                    break
            except TimeoutError:
                pass
            assert time.time() < deadline, f"no delivery on {channel}"
    drain(clients)


def drain(clients, quiet=0.3):
    for ws in clients:
        while True:
            try:
                ws.recv(timeout=quiet)
            except TimeoutError:
                break


def assert_silent(ws, wait=0.7):
    with pytest.raises(TimeoutError):
        got = ws.recv(timeout=wait)
        print("unexpected", got)


def test_implicit_sub_without_grip_and_it_cannot_be_unsubscribed(make_proxy, backend):
    # The origin never negotiates GRIP; `sub=` still subscribes, unprefixed.
    def handle(req):
        out = []
        for e in decode_websocket_events(req["body"]):
            if e.type == "OPEN":
                out.append(WebSocketEvent("OPEN"))
            elif e.type == "CLOSE":
                out.append(WebSocketEvent("CLOSE", e.content))
        return 200, [("Content-Type", EVENTS)], encode_websocket_events(out)

    backend.route("/ws", handle)
    proxy = make_proxy([f"*,proto=ws,prefix=p- 127.0.0.1:{backend.port},over_http,sub=news"])
    with connect(ws_url(proxy)) as ws:
        wait_delivery(proxy, [ws], "news")
        publish_ws(proxy, "p-news", "prefixed")
        publish_ws(proxy, "news", "headline")
        assert ws.recv(timeout=10) == "headline"

    # A GRIP origin's unsubscribe does not remove an implicit subscription.
    backend.route(
        "/ws",
        grip_backend(on_text=lambda t: [control("unsubscribe", channel="news"), WebSocketEvent("TEXT", "m:ok")]),
    )
    proxy2 = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http,sub=news"])
    with connect(ws_url(proxy2)) as ws:
        wait_delivery(proxy2, [ws], "news")
        ws.send("unsubscribe please")
        assert ws.recv(timeout=10) == "ok"
        publish_ws(proxy2, "news", "still here")
        assert ws.recv(timeout=10) == "still here"


def test_prefix_subscribe_and_unsubscribe(make_proxy, backend):
    def on_text(text):
        if text == "leave":
            return [control("unsubscribe", channel="room"), WebSocketEvent("TEXT", "m:left")]
        return []

    backend.route("/ws", grip_backend([control("subscribe", channel="room")], on_text))
    proxy = make_proxy([f"*,proto=ws,prefix=app- 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy)) as ws:
        wait_delivery(proxy, [ws], "app-room")
        publish_ws(proxy, "room", "unprefixed channel")
        publish_ws(proxy, "app-room", "hello")
        assert ws.recv(timeout=10) == "hello"
        ws.send("leave")
        assert ws.recv(timeout=10) == "left"
        publish_ws(proxy, "app-room", "after leaving")
        assert_silent(ws)


def test_set_meta_and_skip_self(make_proxy, backend):
    def on_open(req):
        user = req["headers"].get("X-User", "")
        return [
            control("set-meta", name="user", value=user),
            control("subscribe", channel="chat", filters=["skip-self"]),
        ]

    backend.route("/ws", grip_backend(on_open))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy), additional_headers={"X-User": "alice"}) as alice, connect(
        ws_url(proxy), additional_headers={"X-User": "bob"}
    ) as bob:
        wait_delivery(proxy, [alice, bob], "chat")
        publish_ws(proxy, "chat", "from alice", meta={"sender": "alice"})
        publish_ws(proxy, "chat", "from carol", meta={"sender": "carol"})
        assert bob.recv(timeout=10) == "from alice"
        assert bob.recv(timeout=10) == "from carol"
        assert alice.recv(timeout=10) == "from carol"
        assert_silent(alice)


def test_connection_subscription_max(make_proxy, backend):
    backend.route(
        "/ws",
        grip_backend([control("subscribe", channel=f"c{i}") for i in range(3)]),
    )
    proxy = make_proxy(
        [f"*,proto=ws 127.0.0.1:{backend.port},over_http"],
        handler_conf=["connection_subscription_max=2"],
    )
    with connect(ws_url(proxy)) as ws:
        wait_delivery(proxy, [ws], "c1")
        publish_ws(proxy, "c2", "over the limit")
        publish_ws(proxy, "c0", "first")
        assert ws.recv(timeout=10) == "first"
        assert_silent(ws)


@pytest.mark.skipif(
    TARGET == "pushpin", reason="Pushpin 1.36 accepts any number of filters; §5.4 documents the 1011"
)
def test_too_many_filters_closes_with_1011(make_proxy, backend):
    filters = ["skip-self", "skip-users", "require-sub", "a", "b", "c"]
    backend.route("/ws", grip_backend([control("subscribe", channel="x", filters=filters)]))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy)) as ws:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
            ws.recv(timeout=10)
        assert err.value.rcvd.code == 1011


def test_keep_alive_control_message(make_proxy, backend):
    backend.route(
        "/ws",
        grip_backend([control("keep-alive", content="ka", timeout=2, mode="interval")]),
    )
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy)) as ws:
        start = time.time()
        assert ws.recv(timeout=5) == "ka"
        assert ws.recv(timeout=5) == "ka"
        elapsed = time.time() - start
        # Two keep-alives, each 1-2 s after the previous output (Pushpin takes up to 1 s of
        # jitter off the 2 s timeout).
        assert 1.9 <= elapsed <= 4.6, elapsed


def test_send_delayed_and_flush(make_proxy, backend):
    def on_text(text):
        if text == "delay":
            return [control("send-delayed", content="delayed", timeout=1)]
        if text == "delay-long":
            return [control("send-delayed", content="flushed", timeout=30)]
        if text == "flush":
            return [control("flush-delayed")]
        return []

    backend.route("/ws", grip_backend(on_text=on_text))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy)) as ws:
        start = time.time()
        ws.send("delay")
        assert ws.recv(timeout=5) == "delayed"
        assert time.time() - start >= 0.9
        ws.send("delay-long")
        assert_silent(ws, 0.5)
        ws.send("flush")
        assert ws.recv(timeout=5) == "flushed"


@pytest.mark.skipif(
    TARGET == "pushpin",
    reason="Pushpin 1.36 answers 400 'Invalid format: ' to ws-message action refresh (§6.1 lists it)",
)
def test_ws_message_refresh_makes_a_request(make_proxy, backend):
    backend.route("/ws", grip_backend([control("subscribe", channel="r")]))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    with connect(ws_url(proxy)) as ws:
        wait_delivery(proxy, [ws], "r")
        before = len(backend.requests_to("/ws"))
        body = {"items": [{"channel": "r", "formats": {"ws-message": {"action": "refresh"}}}]}
        r = requests.post(proxy.control_uri + "/publish/", data=json.dumps(body), timeout=10)
        assert r.status_code == 200
        backend.wait_requests("/ws", before + 1)
        refresh = backend.requests_to("/ws")[before]
        assert refresh["body"] == b""
        assert refresh["headers"]["Connection-Id"]


def test_gripcontrol_publishes_binary_and_text_in_order(make_proxy, backend):
    backend.route("/ws", grip_backend([control("subscribe", channel="seq")]))
    proxy = make_proxy([f"*,proto=ws 127.0.0.1:{backend.port},over_http"])
    pub = GripPubControl({"control_uri": proxy.control_uri})
    with connect(ws_url(proxy)) as ws:
        wait_delivery(proxy, [ws], "seq")
        for i in range(50):
            if i % 2:
                pub.publish("seq", Item(WebSocketMessageFormat(bytes([i]), binary=True)))
            else:
                pub.publish("seq", Item(WebSocketMessageFormat(f"t{i}")))
        got = [ws.recv(timeout=10) for _ in range(50)]
        assert got == [bytes([i]) if i % 2 else f"t{i}" for i in range(50)]
