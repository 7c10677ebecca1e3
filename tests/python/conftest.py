"""Fixtures for the end-to-end tests driven by real GRIP client libraries.

Each test gets a fresh proxy (Holdfast by default; the real Pushpin 1.36 with
HOLDFAST_TEST_TARGET=pushpin, to check that a test encodes Pushpin's behaviour) on free loopback
ports, and a programmable backend (a real HTTP server in a thread) that records every request.
"""

import http.server
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = os.environ.get("HOLDFAST_TEST_TARGET", "holdfast")
BIN_DIR = os.environ.get("HOLDFAST_BIN_DIR", os.path.join(ROOT, "target", "release"))


# Ports handed out by free_port() come from below the kernel's ephemeral range (32768-60999 by
# default) and below the benchmark scripts' ports (29000 and up), so no outgoing connection's
# source port can take one between free_port() and the bind of the process under test, and a
# session never hands out the same port twice. (Asking the kernel for port 0 allowed both: a
# proxy once got the same port for its ZeroMQ PULL socket and its HTTP publish API.)
_PORT_LOW, _PORT_HIGH = 20000, 28999
_next_port = _PORT_LOW + (os.getpid() * 7919) % (_PORT_HIGH - _PORT_LOW)
_given = set()


def free_port():
    global _next_port
    for _ in range(_PORT_HIGH - _PORT_LOW):
        port = _next_port
        _next_port = _PORT_LOW if _next_port >= _PORT_HIGH else _next_port + 1
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError("no free port left in the test range")


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Reader:
    """Drains a socket in a thread so a test can wait for text without blocking the proxy."""

    def __init__(self, sock):
        self.sock = sock
        self.chunks = queue.Queue()
        self.seen = b""
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            self.sock.settimeout(None)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.chunks.put(data)
        except OSError:
            pass
        self.chunks.put(None)

    def wait_for(self, text, timeout=10.0):
        deadline = time.time() + timeout
        while text not in self.seen:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise AssertionError(f"{text!r} not received; got {self.seen[-300:]!r}")
            try:
                data = self.chunks.get(timeout=min(remaining, 0.2))
            except queue.Empty:
                continue
            if data is None:
                self.closed = True
                raise AssertionError(f"closed before {text!r}; got {self.seen[-300:]!r}")
            self.seen += data
        return self.seen

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def children(pid):
    """(pid, comm) of the live (not zombie) children of `pid`, from /proc."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append((int(entry), stat[stat.index("(") + 1 : stat.rindex(")")]))
    return out


class Backend:
    """A real HTTP/1.1 backend. `handlers` maps a path (without query) to a function taking the
    request (a dict) and returning (status, headers list, body bytes)."""

    def __init__(self):
        self.handlers = {}
        self.requests = []
        self.lock = threading.Lock()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                req = {
                    "method": self.command,
                    "path": self.path,
                    "headers": self.headers,
                    "body": body,
                }
                with backend.lock:
                    backend.requests.append(req)
                fn = backend.handlers.get(path)
                if fn is None:
                    status, headers, out = 404, [("Content-Type", "text/plain")], b"not found\n"
                else:
                    status, headers, out = fn(req)
                if isinstance(out, str):
                    out = out.encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = handle_any

        class Server(http.server.ThreadingHTTPServer):
            # The default listen backlog of 5 drops connection attempts when a thousand held
            # requests reach the backend at once.
            request_queue_size = 4096

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def route(self, path, fn):
        self.handlers[path] = fn

    def requests_to(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"].split("?")[0] == path]

    def wait_requests(self, path, count, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self.requests_to(path)) >= count:
                return True
            time.sleep(0.02)
        return False

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Proxy:
    """A running Holdfast (or Pushpin) with its own directory, config and ports."""

    def __init__(self, routes, proxy_conf=(), handler_conf=(), runner_conf=(), sub_specs=None):
        # sub_specs: replaces the default `push_in_sub_specs` (a bound SUB on sub_port), e.g. a
        # publisher's XPUB endpoint together with handler_conf `push_in_sub_connect=true`.
        self.dir = tempfile.mkdtemp(prefix="hf-py-")
        self.port = free_port()
        self.publish_port = free_port()
        self.pull_port = free_port()
        self.sub_port = free_port()
        self.command_port = free_port()
        self.kind = TARGET
        run = os.path.join(self.dir, "run")
        log = os.path.join(self.dir, "log")
        os.makedirs(run)
        os.makedirs(log)
        lines = ["[global]"]
        if self.kind == "pushpin":
            lines.append("include={libdir}/internal.conf")
        lines += [f"rundir={run}", "ipc_prefix=t-", "[runner]"]
        if self.kind == "pushpin":
            lines += [
                "services=condure,zurl,pushpin-proxy,pushpin-handler",
                f"logdir={log}",
            ]
        else:
            lines.append("services=condure,pushpin-proxy,pushpin-handler")
        lines += [
            f"http_port=127.0.0.1:{self.port}",
            "log_level=2",
            "client_buffer_size=8192",
            "client_maxconn=50000",
            *runner_conf,
            "[proxy]",
            "routesfile=routes",
            "sig_key=changeme",
        ]
        if self.kind == "pushpin":
            lines += [
                "zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in",
                "zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream",
                "zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out",
            ]
        lines += [
            *proxy_conf,
            "[handler]",
            f"push_in_spec=tcp://127.0.0.1:{self.pull_port}",
            f"push_in_sub_specs={sub_specs or f'tcp://127.0.0.1:{self.sub_port}'}",
            "push_in_http_addr=127.0.0.1",
            f"push_in_http_port={self.publish_port}",
            f"command_spec=tcp://127.0.0.1:{self.command_port}",
            "stats_spec=ipc://{rundir}/{ipc_prefix}stats",
            *handler_conf,
        ]
        self.config = os.path.join(self.dir, "pushpin.conf")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(self.dir, "routes"), "w") as f:
            f.write("\n".join(routes) + "\n")
        self.log_path = os.path.join(self.dir, "out.log")
        out = open(self.log_path, "w")
        if self.kind == "pushpin":
            cmd = ["pushpin", f"--config={self.config}"]
        else:
            cmd = [os.path.join(BIN_DIR, "holdfast"), f"--config={self.config}", "-m"]
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        if not (wait_port(self.port) and wait_port(self.publish_port)):
            self.stop()
            raise RuntimeError(f"proxy did not start:\n{self.log()}")

    @property
    def stats_uri(self):
        """The handler's stats socket (`stats_spec` of the generated config)."""
        return "ipc://" + os.path.join(self.dir, "run", "t-stats")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def control_uri(self):
        return f"http://127.0.0.1:{self.publish_port}"

    def log(self):
        text = ""
        try:
            logs = os.listdir(os.path.join(self.dir, "log"))
        except OSError:
            logs = []
        for path in [self.log_path] + [os.path.join(self.dir, "log", n) for n in logs]:
            try:
                with open(path) as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def stop(self):
        stop_process(self.process)
        shutil.rmtree(self.dir, ignore_errors=True)


def stop_process(process, timeout=15):
    """SIGTERM (a proxy's graceful stop), then SIGKILL if it is not gone within `timeout`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def backend():
    b = Backend()
    yield b
    b.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Keeps each phase's report on the test item, so fixtures can tell a failed test.
    report = yield
    setattr(item, "rep_" + report.when, report)
    return report


@pytest.fixture
def make_proxy(request):
    proxies = []

    def make(routes, **kwargs):
        p = Proxy(routes, **kwargs)
        proxies.append(p)
        return p

    yield make
    failed = getattr(request.node, "rep_call", None)
    for p in proxies:
        if failed is not None and failed.failed:
            # The proxy's own account of a failure ends up in the test report.
            alive = "running" if p.process.poll() is None else f"exited {p.process.returncode}"
            print(f"--- proxy on port {p.port} ({alive}) log:\n{p.log()[-6000:]}")
        p.stop()


@pytest.fixture
def proxy(make_proxy, backend):
    """A proxy routing everything to the backend fixture."""
    return make_proxy([f"* 127.0.0.1:{backend.port}"])


def grip(hold=None, channel=None, extra=(), ctype="text/plain"):
    """Response headers for a GRIP instruction."""
    headers = [("Content-Type", ctype)]
    if hold:
        headers.append(("Grip-Hold", hold))
    if channel:
        headers.append(("Grip-Channel", channel))
    headers.extend(extra)
    return headers


def publish_json(proxy, items, accept=None):
    """POSTs {"items": items} to the control API; returns (status, headers, body text)."""
    import httpx

    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    r = httpx.post(proxy.control_uri + "/publish/", content=json.dumps({"items": items}), headers=headers)
    return r.status_code, r.headers, r.text
