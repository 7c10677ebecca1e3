"""The HTTP control API (reference §6.2): status codes and exact error texts as Pushpin gives
them, content negotiation, all-or-nothing validation, and connections kept for clients that ask
(`Connection: keep-alive`; Pushpin closes every one)."""

import json
import socket
import time

import httpx
import pytest

from conftest import TARGET, grip, publish_json


def post(proxy, path, body, headers=None):
    return httpx.post(proxy.control_uri + path, content=body, headers=headers or {}, timeout=10)


def test_root_answers(proxy):
    r = httpx.get(proxy.control_uri + "/", timeout=10)
    assert r.status_code == 200
    assert r.text == "Pushpin API\n"


@pytest.mark.parametrize(
    "body,message",
    [
        (b"{not json", "Body is not valid JSON."),
        (b"[1]", "Invalid format."),
        (b"{}", "Invalid format: object does not contain 'items'"),
        (b'{"items": 5}', "Invalid format: object contains 'items' with wrong type"),
        (b'{"items": [{"formats": {}}]}', "Invalid format: publish item object does not contain 'channel'"),
        (
            b'{"items": [{"channel": "x", "formats": {"http-stream": {}}}]}',
            "Invalid format: 'http-stream' does not contain 'content' or 'content-bin'",
        ),
    ],
)
def test_bad_publishes_get_pushpin_errors(proxy, body, message):
    r = post(proxy, "/publish/", body, {"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text == message + "\n"


def test_all_or_nothing(proxy, backend):
    good = {"channel": "x", "formats": {"http-stream": {"content": "hi"}}}
    bad = {"channel": "y", "formats": {"http-stream": {}}}
    status, _, text = publish_json(proxy, [good, bad])
    assert status == 400


def test_success_text_and_json(proxy):
    item = {"channel": "x", "formats": {"http-stream": {"content": "hi"}}}
    status, headers, text = publish_json(proxy, [item])
    assert (status, text) == (200, "Published\n")
    status, headers, text = publish_json(proxy, [item], accept="application/json")
    assert status == 200
    assert json.loads(text) == {"message": "Published"}
    status, headers, text = publish_json(proxy, [item], accept="image/png")
    assert status == 406
    assert text == "Not Acceptable. Supported formats are text/plain and application/json.\n"


def test_method_not_allowed_and_not_found(proxy):
    r = httpx.get(proxy.control_uri + "/publish/", timeout=10)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"
    assert r.text == "Method not allowed: GET.\n"
    r = httpx.get(proxy.control_uri + "/nothing", timeout=10)
    assert r.status_code == 404
    assert r.text == "Not Found\n"


def test_recover(proxy):
    r = post(proxy, "/recover", b"")
    assert r.status_code == 200
    assert r.text == "Updated\n"


def raw_publish(channel, content, connection=None):
    """The bytes of a one-item publish request, with a `Connection` header if given."""
    body = json.dumps({"items": [{"channel": channel, "formats": {"http-stream": {"content": content}}}]})
    extra = f"Connection: {connection}\r\n" if connection else ""
    head = f"POST /publish/ HTTP/1.1\r\nHost: x\r\n{extra}Content-Type: application/json\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body.encode()


def read_answer(f):
    """Reads one answer framed by Content-Length from `f` (a socket's `makefile("rb")`);
    returns (head text, body bytes)."""
    head = ""
    while True:
        line = f.readline()
        assert line.endswith(b"\r\n"), f"closed before an answer; got {head!r} {line!r}"
        if line == b"\r\n":
            break
        head += line.decode()
    length = int(next(h.split(":")[1] for h in head.split("\r\n") if h.lower().startswith("content-length:")))
    return head, f.read(length)


def closed_by_peer(f):
    """The peer closes the connection (nothing more arrives) within the socket's timeout."""
    try:
        return f.read(1) == b""
    except ConnectionResetError:
        return True
    except (socket.timeout, TimeoutError):
        return False


def test_a_publish_connection_is_kept_only_when_the_client_asks(proxy, backend):
    backend.route("/stream", lambda r: (200, grip("stream", "ka"), "start\n"))
    addr = ("127.0.0.1", proxy.publish_port)
    with httpx.stream("GET", proxy.base + "/stream", timeout=20) as resp:
        chunks = resp.iter_raw()
        assert next(chunks) == b"start\n"
        time.sleep(0.3)
        # Not asked: answered with `Connection: close` and closed, as Pushpin always does.
        with socket.create_connection(addr, timeout=10) as s, s.makefile("rb") as f:
            s.sendall(raw_publish("ka", "one\n"))
            head, body = read_answer(f)
            assert "\r\nConnection: close\r\n" in head and body == b"Published\n"
            assert closed_by_peer(f)
        expected = [b"one\n"]
        with socket.create_connection(addr, timeout=10) as s, s.makefile("rb") as f:
            s.sendall(raw_publish("ka", "two\n", "keep-alive"))
            head, body = read_answer(f)
            assert body == b"Published\n"
            expected.append(b"two\n")
            if TARGET == "pushpin":
                assert "\r\nConnection: close\r\n" in head and closed_by_peer(f)
            else:
                assert "\r\nConnection: keep-alive\r\n" in head
                # Two more requests in one write; the last one asks to close.
                s.sendall(raw_publish("ka", "three\n", "keep-alive") + raw_publish("ka", "four\n", "keep-alive, close"))
                head, body = read_answer(f)
                assert "\r\nConnection: keep-alive\r\n" in head and body == b"Published\n"
                head, body = read_answer(f)
                assert "\r\nConnection: close\r\n" in head and body == b"Published\n"
                assert closed_by_peer(f)
                expected += [b"three\n", b"four\n"]
        got = b""
        while len(got) < len(b"".join(expected)):
            got += next(chunks)
    assert got == b"".join(expected)


def test_idle_kept_connections_give_way_to_new_clients(proxy):
    """Every one of the 128 places held by an idle kept-alive connection: a new client is still
    answered (well before the 30 s an idle connection may otherwise wait)."""
    kept = []
    try:
        for _ in range(128):
            s = socket.create_connection(("127.0.0.1", proxy.publish_port), timeout=10)
            f = s.makefile("rb")
            kept.append((s, f))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            assert read_answer(f)[1] == b"Pushpin API\n"
        r = httpx.get(proxy.control_uri + "/", timeout=10)
        assert (r.status_code, r.text) == (200, "Pushpin API\n")
        assert closed_by_peer(kept[0][1])
    finally:
        for s, f in kept:
            f.close()
            s.close()
