"""The chat example's HTTP front: one short-lived process per WebSocket-over-HTTP request.

Holdfast (or Pushpin) turns every WebSocket connection into a series of HTTP POSTs carrying
`application/websocket-events` bodies (WebSocket-over-HTTP). This server does no chat logic itself:
like a serverless platform, it starts a fresh `handler.py` process for each such POST, gives it the
request body on stdin and the request headers in CGI-style environment variables, and relays what
the process prints (CGI-style headers, a blank line, then the body) as the HTTP response. Nothing
survives between requests except what the proxy keeps (the connection's subscriptions and meta).

Plain GET requests serve the chat web page (`index.html`), so the page and its WebSocket both reach
this backend through the proxy's single route.

Settings (environment): CHAT_HOST (default 127.0.0.1), CHAT_PORT (default 3000); GRIP_URL is
passed through to the handler processes (default http://localhost:5561, the publish API).
"""

import http.server
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HANDLER = os.path.join(HERE, "handler.py")
PAGE = os.path.join(HERE, "index.html")
EVENTS_TYPE = "application/websocket-events"

# Bounds on one request: the proxy never sends more than its outbound buffer (200000 bytes), and a
# handler that publishes one message finishes in well under a second.
MAX_BODY = 1_000_000
HANDLER_TIMEOUT = 20.0


class ChatHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if os.environ.get("CHAT_LOG"):
            super().log_message(fmt, *args)

    def send_plain(self, status, text, extra=()):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path not in ("/", "/index.html"):
            self.send_plain(404, "not found\n")
            return
        with open(PAGE, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != EVENTS_TYPE:
            self.send_plain(415, f"expected Content-Type: {EVENTS_TYPE}\n")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_plain(400, "bad Content-Length\n")
            return
        if length < 0 or length > MAX_BODY:
            self.send_plain(413, "request body too large\n")
            return
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, out = run_handler(self, body)
        except HandlerError as e:
            # Any non-200 answer makes the proxy drop (or refuse) the client's connection.
            self.send_plain(500, f"handler failed: {e}\n")
            return
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class HandlerError(Exception):
    """The handler process failed, timed out or printed something that is not a CGI response."""


def cgi_env(request, length):
    """The CGI meta-variables (RFC 3875) for one request: HTTP_* for every request header.

    Inherited HTTP_* variables are dropped first so that only this request's headers appear, and a
    client's `Proxy` header is never passed on: as HTTP_PROXY it would redirect the handler's
    publish calls through a host the client chose ("httpoxy")."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HTTP_")}
    env.update(
        {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REQUEST_METHOD": request.command,
            "REQUEST_URI": request.path,
            "PATH_INFO": request.path.split("?", 1)[0],
            "QUERY_STRING": request.path.split("?", 1)[1] if "?" in request.path else "",
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "SERVER_PROTOCOL": request.request_version,
            "REMOTE_ADDR": request.client_address[0],
        }
    )
    for name, value in request.headers.items():
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_PROXY"):
            continue
        # Repeated headers are joined, as CGI servers do.
        env[key] = f"{env[key]}, {value}" if key in env else value
    return env


def run_handler(request, body):
    """Runs one handler process for this request and parses its CGI output into a response."""
    try:
        proc = subprocess.run(
            [sys.executable, HANDLER],
            input=body,
            capture_output=True,
            env=cgi_env(request, len(body)),
            timeout=HANDLER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise HandlerError(f"no answer within {HANDLER_TIMEOUT} s") from e
    except OSError as e:
        raise HandlerError(f"cannot start {HANDLER}: {e}") from e
    if proc.stderr:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
    if proc.returncode != 0:
        raise HandlerError(f"exit status {proc.returncode}")
    return parse_cgi_output(proc.stdout)


def parse_cgi_output(out):
    """Splits `Name: value` lines, a blank line and the body; `Status: 200 OK` sets the status."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = out.find(sep)
        if at != -1:
            head, body = out[:at], out[at + len(sep) :]
            break
    else:
        raise HandlerError("output has no blank line after the headers")
    status = 200
    headers = []
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise HandlerError(f"bad header line {line!r}")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            try:
                status = int(value.split()[0])
            except (ValueError, IndexError) as e:
                raise HandlerError(f"bad Status {value!r}") from e
        elif name.lower() != "content-length":
            headers.append((name, value))
    return status, headers, body


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # Many WebSocket connections may send their OPEN at once (e.g. after a proxy restart).
    request_queue_size = 1024


def main():
    host = os.environ.get("CHAT_HOST", "127.0.0.1")
    port = int(os.environ.get("CHAT_PORT", "3000"))
    server = Server((host, port), ChatHandler)
    print(f"chat backend listening on http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
