"""Delivery limits end to end: `message_rate` paces deliveries, `message_hwm` drops beyond a
route's bucket (reference §6.5 step 3). Run with HOLDFAST_TEST_TARGET=pushpin to check the
expectations against Pushpin."""

import select
import socket
import time

from conftest import grip, publish_json

SUBSCRIBERS = 50


def open_streams(proxy, backend, count, path="/stream", channel="lim"):
    """`count` raw HTTP streams held on `channel`; returns the sockets once the backend saw
    every request and the subscriptions had a moment to settle."""
    backend.route(path, lambda r: (200, grip("stream", channel), "start\n"))
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", proxy.port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n".encode())
        socks.append(s)
    assert backend.wait_requests(path, count)
    bufs = {s: b"" for s in socks}
    read_until(bufs, lambda b: b"start\n" in b, 10)
    time.sleep(1.0)
    return bufs


def read_until(bufs, done, timeout):
    """Reads every socket until `done(buffer)` holds for all or `timeout` passes; returns the
    time at which the last one became done (None if some never did)."""
    deadline = time.time() + timeout
    last = None
    pending = [s for s, b in bufs.items() if not done(b)]
    while pending and time.time() < deadline:
        ready, _, _ = select.select(pending, [], [], max(0.0, deadline - time.time()))
        for s in ready:
            data = s.recv(65536)
            if not data:
                pending.remove(s)
                continue
            bufs[s] += data
            if done(bufs[s]):
                pending.remove(s)
                last = time.time()
    if any(not done(b) for b in bufs.values()):
        return None
    return last or time.time()


def stream_items(*contents):
    return [{"channel": "lim", "formats": {"http-stream": {"content": c}}} for c in contents]


def close_all(bufs):
    for s in bufs:
        s.close()


def test_message_rate_paces_deliveries(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"], handler_conf=["message_rate=20"])
    bufs = open_streams(proxy, backend, SUBSCRIBERS)
    start = time.time()
    status, _, _ = publish_json(proxy, stream_items("one\n", "two\n"))
    assert status == 200
    end = read_until(bufs, lambda b: b"one\n" in b and b"two\n" in b, 30)
    close_all(bufs)
    assert end is not None, "not every stream got both messages"
    elapsed = end - start
    # 100 deliveries at 20/s: the first at once, then one every 50 ms (about 4.95 s).
    assert 4.0 <= elapsed < 12.0, elapsed
    for b in bufs.values():
        assert b.index(b"one\n") < b.index(b"two\n")


def test_unlimited_delivery_is_immediate(make_proxy, backend):
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    bufs = open_streams(proxy, backend, SUBSCRIBERS)
    start = time.time()
    publish_json(proxy, stream_items("one\n", "two\n"))
    end = read_until(bufs, lambda b: b"two\n" in b, 10)
    close_all(bufs)
    assert end is not None
    assert end - start < 2.0


def test_message_hwm_drops_most_of_a_burst(make_proxy, backend):
    proxy = make_proxy(
        [f"* 127.0.0.1:{backend.port}"], handler_conf=["message_rate=20", "message_hwm=10"]
    )
    bufs = open_streams(proxy, backend, SUBSCRIBERS)
    publish_json(proxy, stream_items("burst\n"))
    # Whatever fit the bucket goes out within about half a second at 20/s.
    read_until(bufs, lambda b: b"burst\n" in b, 3)
    got = sum(1 for b in bufs.values() if b"burst\n" in b)
    close_all(bufs)
    assert 1 <= got <= 15, got


def test_stream_next_link_is_fetched_after_its_timeout(make_proxy, backend):
    """§4.5 next-link timeout: a silent channel makes the proxy fetch the link (with
    `Grip-Last` for channels given a prev-id) and append its body."""
    link = ("Grip-Link", "</next>; rel=next; timeout=3")
    backend.route("/stream", lambda r: (200, grip("stream", "nl; prev-id=7", [link]), "start\n"))
    backend.route("/next", lambda r: (200, [("Content-Type", "text/plain")], "recovered\n"))
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    # Subscribe the channel first: Pushpin's first-subscription update (1 s after a channel's
    # first subscriber) also fetches the next links of the streams then held.
    first = open_streams(proxy, backend, 1, "/plain", "nl")
    time.sleep(1.0)
    s = socket.create_connection(("127.0.0.1", proxy.port))
    start = time.time()
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: example.com\r\n\r\n")
    bufs = {s: b""}
    end = read_until(bufs, lambda b: b"recovered\n" in b, 20)
    s.close()
    close_all(first)
    assert end is not None, bufs[s]
    assert 2.5 <= end - start < 10, end - start
    body = bufs[s]
    assert body.index(b"start\n") < body.index(b"recovered\n")
    nexts = backend.requests_to("/next")
    assert len(nexts) == 1
    assert nexts[0]["method"] == "GET"
    assert nexts[0]["headers"].get("Grip-Last") == "nl; last-id=7"


def test_first_subscription_update_fetches_a_stream_next_link(make_proxy, backend):
    """A channel's first subscription updates its held requests after 1 s: a stream with a next
    link fetches it then, long before the link's timeout."""
    link = ("Grip-Link", "</next>; rel=next; timeout=60")
    backend.route("/stream", lambda r: (200, grip("stream", "fresh", [link]), "start\n"))
    backend.route("/next", lambda r: (200, [("Content-Type", "text/plain")], "updated\n"))
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"])
    s = socket.create_connection(("127.0.0.1", proxy.port))
    start = time.time()
    s.sendall(b"GET /stream HTTP/1.1\r\nHost: example.com\r\n\r\n")
    bufs = {s: b""}
    end = read_until(bufs, lambda b: b"updated\n" in b, 15)
    s.close()
    assert end is not None, bufs[s]
    assert 0.8 <= end - start < 5, end - start
