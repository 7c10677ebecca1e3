"""JSON-P with auto cross-origin (reference §8.2, §4.7): request rewriting from the query and
the wrapping of proxied and held responses. The expected bytes were observed on Pushpin 1.36
(run with HOLDFAST_TEST_TARGET=pushpin to check)."""

import json
import socket
import threading
import time

from conftest import grip, publish_json


def raw_get(port, target, timeout=10):
    """Sends a GET with `Connection: close`; returns (status line, headers list, body)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {target} HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n".encode())
    s.settimeout(timeout)
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = [tuple(x.split(": ", 1)) for x in lines[1:]]
    if any(n.lower() == "transfer-encoding" for n, _ in headers):
        out = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out += rest[:n]
            body = rest[n + 2 :]
        body = out
    return lines[0], headers, body


def header(headers, name):
    return [v for n, v in headers if n.lower() == name.lower()]


def echo(req):
    text = "echo {} {} {!r} {!r}\n".format(
        req["method"], req["path"], req["body"].decode(), req["headers"].get("X-Foo")
    )
    return 200, [("Content-Type", "text/plain"), ("X-A", "1"), ("X-A", "2"), ("Cache-Control", "no-cache")], text


def unwrap(body, cb="cb"):
    assert body.startswith(f"/**/{cb}(".encode()), body
    assert body.endswith(b");\n"), body
    return body[len(cb) + 5 : -3]


def test_extended_mode_wraps_code_headers_and_body(make_proxy, backend):
    backend.route("/echo", echo)
    proxy = make_proxy([f"*,aco 127.0.0.1:{backend.port}"])
    status, headers, body = raw_get(proxy.port, "/echo?callback=cb&x=1")
    assert status == "HTTP/1.1 200 OK"
    assert header(headers, "Content-Type") == ["application/javascript"]
    assert not header(headers, "Access-Control-Allow-Origin")
    payload = unwrap(body)
    assert payload.startswith(b'{"code": 200, "reason": "OK", "headers": {"Cache-Control":"no-cache",')
    assert payload.endswith(b'"X-A":"1"}, "body": "echo GET /echo?x=1 \'\' None\\n"}')
    assert json.loads(payload)["headers"]["X-A"] == "1"


def test_basic_mode_wraps_the_body_and_defaults_to_post(make_proxy, backend):
    backend.route("/echo", echo)
    proxy = make_proxy([f"*,aco,jsonp_mode=basic 127.0.0.1:{backend.port}"])
    status, headers, body = raw_get(proxy.port, "/echo?callback=cb&x=1")
    assert status == "HTTP/1.1 200 OK"
    assert body == b"/**/cb(echo POST /echo?x=1 '' None);\n"


def test_method_body_and_headers_come_from_the_query(make_proxy, backend):
    backend.route("/echo", echo)
    proxy = make_proxy([f"*,aco 127.0.0.1:{backend.port}"])
    target = "/echo?callback=cb&_method=POST&_body=hello&_headers=%7B%22X-Foo%22%3A%22bar%22%7D"
    _, _, body = raw_get(proxy.port, target)
    assert json.loads(unwrap(body))["body"] == "echo POST /echo 'hello' 'bar'\n"


def test_non_jsonp_requests_and_errors(make_proxy, backend):
    backend.route("/echo", echo)
    proxy = make_proxy([f"*,aco 127.0.0.1:{backend.port}"])
    status, headers, body = raw_get(proxy.port, "/echo?x=1&_method=PUT")
    assert status == "HTTP/1.1 200 OK"
    assert body == b"echo GET /echo?x=1&_method=PUT '' None\n"
    assert header(headers, "Access-Control-Allow-Origin") == ["*"]
    for target, text in [
        ("/echo?callback=&x=1", b"Invalid callback parameter.\n"),
        ("/echo?callback=cb&_headers=notjson", b"Invalid _headers parameter.\n"),
    ]:
        status, headers, body = raw_get(proxy.port, target)
        assert status == "HTTP/1.1 400 Bad Request"
        assert body == text
        assert header(headers, "Access-Control-Allow-Origin") == ["*"]
    # Without auto cross-origin there is no JSON-P.
    plain = make_proxy([f"* 127.0.0.1:{backend.port}"])
    _, _, body = raw_get(plain.port, "/echo?callback=cb")
    assert body == b"echo GET /echo?callback=cb '' None\n"


def held(req):
    return 200, grip("response", "jc", [("X-A", "1"), ("X-A", "2"), ("Grip-Timeout", "2")]), "timeout body\n"


def test_held_timeout_is_compact_sorted_and_merged(make_proxy, backend):
    backend.route("/poll", held)
    proxy = make_proxy([f"*,aco 127.0.0.1:{backend.port}"])
    status, headers, body = raw_get(proxy.port, "/poll?callback=cb")
    assert status == "HTTP/1.1 200 OK"
    assert header(headers, "Content-Type") == ["application/javascript"]
    assert header(headers, "X-A") == ["1", "2"], (status, headers, body)
    assert not header(headers, "Access-Control-Allow-Origin")
    payload = unwrap(body)
    assert payload.startswith(b'{"body":"timeout body\\n","code":200,"headers":{"Content-Type":"text/plain",')
    assert payload.endswith(b'"X-A":"1, 2"},"reason":"OK"}')


def test_held_basic_completion_by_publish(make_proxy, backend):
    backend.route("/poll", held)
    proxy = make_proxy([f"*,aco,jsonp_mode=basic 127.0.0.1:{backend.port}"])
    result = {}

    def run():
        result["r"] = raw_get(proxy.port, "/poll?callback=cb")

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert backend.wait_requests("/poll", 1)
    time.sleep(0.5)
    publish_json(proxy, [{"channel": "jc", "formats": {"http-response": {"body": "{\"a\": 1}\n"}}}])
    t.join(10)
    assert result["r"][2] == b'/**/cb({"a": 1});\n'
