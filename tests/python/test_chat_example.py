"""The chat example (examples/chat/) end to end, as its README runs it.

The proxy routes everything to the example backend with `over_http`; the backend runs one
`handler.py` process per WebSocket-over-HTTP request (reference §5.3), which subscribes each
connection to channel `room` (§5.4) and publishes every text message as a `ws-message` (§6.1)
through the proxy's publish API. Real clients chat through it: two `wscat` processes, then two
headless Chromium pages (Debian's /usr/bin/chromium driven by playwright-core) using the example's
web page, which the same route serves.

The JavaScript clients come from tests/js (installed by tools/setup.sh with `npm ci`).
"""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT, free_port, wait_port

EXAMPLE = os.path.join(ROOT, "examples", "chat")
JS = os.path.join(ROOT, "tests", "js")
WSCAT = os.path.join(JS, "node_modules", ".bin", "wscat")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


class ChatBackend:
    """examples/chat/server.py as a subprocess, publishing to `control_uri`."""

    def __init__(self, port, control_uri):
        self.port = port
        env = dict(os.environ, CHAT_HOST="127.0.0.1", CHAT_PORT=str(port), GRIP_URL=control_uri)
        # The handler processes use the interpreter the server runs on: this venv has gripcontrol.
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(EXAMPLE, "server.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not wait_port(port):
            self.stop()
            raise RuntimeError(f"chat backend did not start:\n{self.log()}")

    def _read(self):
        for line in self.process.stdout:
            self.output.append(line.decode(errors="replace"))

    def log(self):
        return "".join(self.output)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def chat(make_proxy):
    """A proxy in front of the chat backend, as in examples/chat/README.md; yields the proxy."""
    port = free_port()
    proxy = make_proxy([f"* 127.0.0.1:{port},over_http"])
    backend = ChatBackend(port, proxy.control_uri)
    proxy.chat_backend = backend
    yield proxy
    backend.stop()


class Wscat:
    """One `wscat -c URL` terminal: lines written to its stdin are sent, received messages are
    read from its stdout. Without a TTY wscat prints each received message on a line of its own,
    after the `> ` prompt it writes (with no newline) each time it has sent a line."""

    def __init__(self, url):
        assert os.access(WSCAT, os.X_OK), f"{WSCAT} missing: run tools/setup.sh (npm ci in tests/js)"
        self.process = subprocess.Popen(
            [WSCAT, "-c", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self.lines = queue.Queue(maxsize=10000)
        self.seen = []
        self.errors = []
        threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._read_errors, daemon=True).start()

    @staticmethod
    def _read(stream, lines):
        for raw in stream:
            line = raw.decode(errors="replace").rstrip("\r\n")
            while line.startswith("> "):
                line = line[2:]
            lines.put(line)

    def _read_errors(self):
        for line in self.process.stderr:
            self.errors.append(line.decode(errors="replace"))

    def type_line(self, text):
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def wait_for(self, text, timeout):
        """True once a received line equals `text` (lines read on the way are kept in `seen`)."""
        if text in self.seen:
            return True
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return False
            self.seen.append(line)
            if line == text:
                return True

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def join_room(client, name, timeout=20.0):
    """Types until the client sees its own line come back from the room. wscat prints nothing on
    connect when it has no TTY and drops lines typed before the connection is open, so seeing its
    own message is the proof that it is connected and subscribed."""
    deadline = time.time() + timeout
    attempt = 0
    while time.time() < deadline:
        attempt += 1
        line = f"{name} joined ({attempt})"
        client.type_line(line)
        if client.wait_for(line, 1.0):
            return
        assert client.process.poll() is None, f"wscat exited: {''.join(client.errors)}"
    raise AssertionError(f"{name} never got its own message back; saw {client.seen}, {client.errors}")


def test_two_wscat_clients_chat(chat):
    url = f"ws://127.0.0.1:{chat.port}/"
    alice, bob = Wscat(url), Wscat(url)
    try:
        join_room(alice, "alice")
        join_room(bob, "bob")

        alice.type_line("hello bob, it's alice")
        assert bob.wait_for("hello bob, it's alice", 10), (bob.seen, bob.errors, chat.log())
        assert alice.wait_for("hello bob, it's alice", 10), (alice.seen, alice.errors)

        bob.type_line("hi alice! ünïcödé ✓")
        assert alice.wait_for("hi alice! ünïcödé ✓", 10), (alice.seen, alice.errors)
        assert bob.wait_for("hi alice! ünïcödé ✓", 10), (bob.seen, bob.errors)

        # Each message arrives once, in the order it was sent.
        for client in (alice, bob):
            client.wait_for("<nothing more>", 0.5)
            tail = [m for m in client.seen if " joined (" not in m]
            assert tail == ["hello bob, it's alice", "hi alice! ünïcödé ✓"], client.seen
    finally:
        alice.stop()
        bob.stop()
    assert chat.chat_backend.process.poll() is None, chat.chat_backend.log()


def test_web_page_is_served_through_the_proxy(chat):
    import httpx

    r = httpx.get(chat.base + "/", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'new WebSocket(scheme + location.host + "/")' in r.text
    assert httpx.get(chat.base + "/index.html", timeout=10).text == r.text


def test_two_browser_pages_chat(chat):
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} missing: run tools/setup.sh (apt chromium)"
    script = os.path.join(JS, "chat_browser.js")
    proc = subprocess.run(
        ["node", script, chat.base + "/"],
        cwd=JS,
        env=dict(os.environ, CHROMIUM=CHROMIUM),
        capture_output=True,
        timeout=180,
        check=False,
    )
    stderr = proc.stderr.decode(errors="replace")
    try:
        result = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(f"chat_browser.js printed no result (exit {proc.returncode}):\n{stderr}")
    context = (result, stderr, chat.chat_backend.log())
    assert result["failures"] == [], context
    assert proc.returncode == 0, context
    first, second = result["sent"]
    for name in ("alice", "bob"):
        page = result["pages"][name]
        assert page["title"] == "Holdfast chat", context
        # Both messages, once each and in order, on both pages; the input box was cleared.
        assert page["messages"] == [first, second], context
        assert page["input"] == "", context
