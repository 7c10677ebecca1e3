"""Gone links (reference §4.5): when the client of a held request disconnects, the handler POSTs
an empty body to the `Grip-Link: <…>; rel=gone` URL of the initial response."""

import socket

from conftest import grip


def test_client_disconnect_posts_to_gone_link(proxy, backend):
    backend.route(
        "/s",
        lambda r: (200, grip("stream", "g", [("Grip-Link", "</gone>; rel=gone")]), "start\n"),
    )
    backend.route("/gone", lambda r: (200, [("Content-Type", "text/plain")], "ok\n"))
    host, port = proxy.base.split("//")[1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(b"GET /s HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        data = b""
        while b"start\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
    finally:
        sock.close()
    assert backend.wait_requests("/gone", 1, timeout=5), proxy.log()
    (req,) = backend.requests_to("/gone")
    assert req["method"] == "POST"
    assert req["body"] == b""
