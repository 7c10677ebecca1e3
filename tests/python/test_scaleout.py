"""Scale-out: several instances on one machine behind a real load balancer (HAProxy), with
publishers reaching every instance (reference §6.2, §6.4, §7.1 `--id` / `port_offset`).

Each test starts three instances and an HAProxy that balances client requests round robin over
them, with one GRIP backend behind all of them. SSE and long-poll subscribers connect through
HAProxy, so every instance holds some of them; HAProxy names the instance it picked in a request
header (`http-send-name-header`), which the backend records, so the test knows where each
subscriber lives. Then a publisher reaches every instance:

* over HTTP, with gripcontrol's `GripPubControl` configured with every instance's control URI;
* with one ZeroMQ socket that every instance's SUB socket connects to (`push_in_sub_connect`),
  the publisher watching the subscriptions arrive on an XPUB socket (§6.4).

Every subscriber on every instance must get every message exactly once, in order.
HOLDFAST_TEST_TARGET=pushpin runs the same tests against Pushpin 1.36.
"""

import json
import os
import queue
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import httpx
import pytest
import sseclient
import zmq
from gripcontrol import GripPubControl, HttpResponseFormat, HttpStreamFormat
from pubcontrol import Item

from conftest import BIN_DIR, TARGET, Proxy, free_port, grip, stop_process, wait_port

HAPROXY = "/usr/sbin/haproxy"
INSTANCES = 3
SSE_PER_INSTANCE = 6
POLLS_PER_INSTANCE = 2
CHANNEL = "scale"
MESSAGES = 5
NAME_HEADER = "X-Holdfast-Instance"
CTX = zmq.Context.instance()


# --- instances -----------------------------------------------------------------------------------


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserve_base(instances):
    """A base port B such that B..B+3 plus every instance's offset (id×10) are free: the
    shared config names B (PULL), B+1 (HTTP control), B+2 (SUB), B+3 (command), and `--id N`
    moves them to B+10N+k."""
    for _ in range(200):
        base = random.randrange(20000, 50000, 10)
        ports = [base + 10 * i + k for i in range(instances + 1) for k in range(4)]
        if all(port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port range for the instances")


class IdInstance:
    """One instance started by the runner with `--id N --port P` from a config shared by all
    instances: the id gives it ipc prefix `p<N>-` and port offset N×10 (§7.1)."""

    def __init__(self, kind, config, dir, n, base):
        self.name = f"i{n}"
        self.port = free_port()
        self.publish_port = base + 10 * n + 1
        self.stats_uri = "ipc://" + os.path.join(dir, "run", f"p{n}-stats")
        self.log_path = os.path.join(dir, f"out-{n}.log")
        self.logdir = os.path.join(dir, "log")
        self.n = n
        out = open(self.log_path, "w")
        args = [f"--config={config}", f"--id={n}", f"--port=127.0.0.1:{self.port}"]
        if kind == "pushpin":
            cmd = ["pushpin", *args]
        else:
            cmd = [os.path.join(BIN_DIR, "holdfast"), *args, "-m"]
        self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    @property
    def control_uri(self):
        return f"http://127.0.0.1:{self.publish_port}"

    def log(self):
        text = ""
        paths = [self.log_path]
        if os.path.isdir(self.logdir):
            paths += [os.path.join(self.logdir, n) for n in os.listdir(self.logdir) if n.startswith(f"p{self.n}-")]
        for path in paths:
            try:
                with open(path) as f:
                    text += f.read()
            except OSError:
                pass
        return text

    def stop(self):
        stop_process(self.process)


class IdDeployment:
    """`count` instances from one pushpin.conf, told apart by `--id` (the README's first
    layout). `sub_spec` is the SUB input every instance connects to; an ipc:// spec is the same
    for all of them, while a tcp:// one would get each instance's port offset added."""

    def __init__(self, count, backend_port, sub_spec=None):
        self.dir = tempfile.mkdtemp(prefix="hf-scale-")
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "log"))
        base = reserve_base(count)
        lines = ["[global]"]
        if TARGET == "pushpin":
            lines.append("include={libdir}/internal.conf")
        lines += [f"rundir={os.path.join(self.dir, 'run')}", "[runner]"]
        if TARGET == "pushpin":
            lines += ["services=condure,zurl,pushpin-proxy,pushpin-handler", f"logdir={os.path.join(self.dir, 'log')}"]
        else:
            lines.append("services=condure,pushpin-proxy,pushpin-handler")
        # http_port is replaced by each instance's --port (the runner does not offset it).
        lines += ["http_port=127.0.0.1:7999", "log_level=2", "[proxy]", "routesfile=routes", "sig_key=changeme"]
        if TARGET == "pushpin":
            lines += [
                "zurl_out_specs=ipc://{rundir}/{ipc_prefix}zurl-in",
                "zurl_out_stream_specs=ipc://{rundir}/{ipc_prefix}zurl-in-stream",
                "zurl_in_specs=ipc://{rundir}/{ipc_prefix}zurl-out",
            ]
        lines += [
            "[handler]",
            f"push_in_spec=tcp://127.0.0.1:{base}",
            "push_in_http_addr=127.0.0.1",
            f"push_in_http_port={base + 1}",
            f"push_in_sub_specs={sub_spec or f'tcp://127.0.0.1:{base + 2}'}",
            f"command_spec=tcp://127.0.0.1:{base + 3}",
            "stats_spec=ipc://{rundir}/{ipc_prefix}stats",
        ]
        if sub_spec:
            lines.append("push_in_sub_connect=true")
        config = os.path.join(self.dir, "pushpin.conf")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(self.dir, "routes"), "w") as f:
            f.write(f"* 127.0.0.1:{backend_port}\n")
        self.instances = [IdInstance(TARGET, config, self.dir, n, base) for n in range(1, count + 1)]
        for i in self.instances:
            if not (wait_port(i.port) and wait_port(i.publish_port)):
                logs = "\n".join(x.log() for x in self.instances)
                self.stop()
                raise RuntimeError(f"instance {i.name} did not start:\n{logs}")

    def stop(self):
        for i in self.instances:
            i.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class FileInstances:
    """`count` instances each with its own pushpin.conf and explicit ports (no offset), all
    connecting their SUB socket to one tcp:// publisher endpoint (the README's second layout)."""

    def __init__(self, count, backend_port, sub_spec):
        self.instances = []
        try:
            for n in range(1, count + 1):
                p = Proxy(
                    [f"* 127.0.0.1:{backend_port}"],
                    sub_specs=sub_spec,
                    handler_conf=["push_in_sub_connect=true"],
                )
                p.name = f"i{n}"
                self.instances.append(p)
        except Exception:
            self.stop()
            raise

    def stop(self):
        for p in self.instances:
            p.stop()


# --- load balancer -------------------------------------------------------------------------------


class HAProxy:
    """HAProxy in front of the instances: HTTP mode, round robin per request, nothing buffered,
    timeouts long enough for held requests, streams and WebSockets; it names the instance it
    picked in NAME_HEADER so the backend can tell where each subscriber landed."""

    def __init__(self, instances):
        deadline = time.time() + 600
        # tools/setup.sh may still be installing haproxy in the background.
        while not os.access(HAPROXY, os.X_OK):
            if time.time() > deadline:
                raise RuntimeError(f"{HAPROXY} is not installed")
            time.sleep(2)
        self.dir = tempfile.mkdtemp(prefix="hf-haproxy-")
        self.port = free_port()
        servers = "\n".join(f"    server {i.name} 127.0.0.1:{i.port}" for i in instances)
        config = f"""global
    maxconn 4096

defaults
    mode http
    option http-server-close
    timeout connect 5s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 10s

frontend clients
    bind 127.0.0.1:{self.port}
    default_backend holdfast

backend holdfast
    balance roundrobin
    http-send-name-header {NAME_HEADER}
{servers}
"""
        path = os.path.join(self.dir, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.dir, "haproxy.log")
        out = open(self.log_path, "w")
        self.process = subprocess.Popen([HAPROXY, "-db", "-f", path], stdout=out, stderr=subprocess.STDOUT)
        out.close()
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("haproxy did not start")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- subscribers ---------------------------------------------------------------------------------


def setup_backend(backend):
    """GRIP endpoints: /sse (a stream hold that first tells the client its instance) and /lp (a
    response hold). Both record which instance HAProxy sent each subscriber to."""
    placed = {}

    def where(req):
        key = req["path"].split("c=", 1)[1]
        placed[key] = req["headers"].get(NAME_HEADER)
        return placed[key]

    def sse(req):
        name = where(req)
        return 200, grip("stream", CHANNEL, ctype="text/event-stream"), f"event: hello\ndata: {name}\n\n"

    def lp(req):
        where(req)
        return 200, grip("response", CHANNEL, extra=[("Grip-Timeout", "120")]), "timeout\n"

    backend.route("/sse", sse)
    backend.route("/lp", lp)
    return placed


class SseSubscriber(threading.Thread):
    """A real SSE client (sseclient over an httpx stream) that records every event."""

    def __init__(self, base, key):
        super().__init__(daemon=True)
        self.url = f"{base}/sse?c={key}"
        self.events = queue.Queue()
        self.error = None
        self.start()

    def run(self):
        try:
            timeout = httpx.Timeout(10, read=60)
            with httpx.stream("GET", self.url, timeout=timeout) as resp:
                for ev in sseclient.SSEClient(resp.iter_bytes()).events():
                    self.events.put((ev.event, ev.data))
                    if ev.data == "end":
                        return
        except Exception as e:  # reported by the test
            self.error = e

    def next(self, timeout=15):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.url}: no event within {timeout}s (error: {self.error})")

    def rest(self, timeout=20):
        """Every message event up to and including `end`."""
        got = []
        while not got or got[-1] != "end":
            kind, data = self.next(timeout)
            got.append(data if kind == "message" else f"{kind}:{data}")
        self.join(5)
        return got


class LongPoll(threading.Thread):
    def __init__(self, base, key):
        super().__init__(daemon=True)
        self.url = f"{base}/lp?c={key}"
        self.response = None
        self.error = None
        self.start()

    def run(self):
        try:
            self.response = httpx.get(self.url, timeout=60)
        except Exception as e:
            self.error = e


def subscribe_everywhere(lb, backend, placed, instances):
    """Opens SSE streams and long-polls through the load balancer until every instance holds
    some of each; returns (streams, polls) and checks HAProxy spread them evenly."""
    names = [i.name for i in instances]
    streams = {}
    for k in range(SSE_PER_INSTANCE * len(instances)):
        key = f"s{k}"
        streams[key] = SseSubscriber(lb.base, key)
    for key, s in streams.items():
        kind, data = s.next()
        assert kind == "hello" and data == placed[key], (kind, data, placed.get(key))
    polls = {}
    for k in range(POLLS_PER_INSTANCE * len(instances)):
        key = f"p{k}"
        polls[key] = LongPoll(lb.base, key)
    assert backend.wait_requests("/lp", len(polls)), "long-polls did not reach the backend"
    # Round robin over the instances: each holds the same share of streams and of polls.
    for prefix, share in (("s", SSE_PER_INSTANCE), ("p", POLLS_PER_INSTANCE)):
        counts = {n: 0 for n in names}
        for key, name in placed.items():
            if key.startswith(prefix):
                counts[name] += 1
        assert counts == {n: share for n in names}, counts
    return streams, polls


def stream_content(k):
    return f"event: message\ndata: {k}\n\n"


def check_everyone_got_everything(streams, polls, placed, first, skip=()):
    """Every stream got messages `first`..MESSAGES then `end`, exactly once and in order
    (streams on an instance in `skip` got the extra message `only-<name>` first); every
    long-poll completed with message `first`."""
    expected = [str(k) for k in range(first, MESSAGES + 1)] + ["end"]
    for key, s in streams.items():
        want = ([f"only-{placed[key]}"] if placed[key] in skip else []) + expected
        assert s.rest() == want, (key, placed[key])
    for key, p in polls.items():
        p.join(20)
        assert p.error is None and p.response is not None, (key, p.error)
        assert p.response.status_code == 200
        assert p.response.text == f"response {first}\n", (key, placed[key])


def wait_subscribed_locally(seconds=1.0):
    # Long-polls have no reply to wait for before they are held; the backend has answered all
    # of them, so their subscriptions are being set up: give the proxies a moment.
    time.sleep(seconds)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def cleanup():
    items = []
    yield items
    for item in reversed(items):
        item.stop()


def item(k):
    return Item(
        [HttpStreamFormat(stream_content(k)), HttpResponseFormat(body=f"response {k}\n")],
        id=f"m{k}",
    )


# --- tests ---------------------------------------------------------------------------------------


def test_http_publishing_to_every_control_uri_reaches_every_instance(backend, cleanup):
    placed = setup_backend(backend)
    dep = IdDeployment(INSTANCES, backend.port)
    cleanup.append(dep)
    lb = HAProxy(dep.instances)
    cleanup.append(lb)
    streams, polls = subscribe_everywhere(lb, backend, placed, dep.instances)
    wait_subscribed_locally()

    # One control URI reaches one instance only: a stream-only message sent to the first
    # instance alone reaches exactly the streams HAProxy put there.
    first = dep.instances[0]
    GripPubControl({"control_uri": first.control_uri}).publish(
        CHANNEL, Item(HttpStreamFormat(f"event: message\ndata: only-{first.name}\n\n")), blocking=True
    )

    pub = GripPubControl([{"control_uri": i.control_uri} for i in dep.instances])
    for k in range(1, MESSAGES + 1):
        pub.publish(CHANNEL, item(k), blocking=True)
    pub.publish(CHANNEL, Item(HttpStreamFormat(stream_content("end"))), blocking=True)
    check_everyone_got_everything(streams, polls, placed, first=1, skip={first.name})


def wait_subscriptions(xpub, count, timeout=15):
    """Waits until `count` SUB sockets have subscribed to CHANNEL (XPUB_VERBOSE passes every
    peer's subscription up, one per instance)."""
    seen = 0
    deadline = time.time() + timeout
    while seen < count:
        left = deadline - time.time()
        if left <= 0 or not xpub.poll(int(left * 1000)):
            raise AssertionError(f"{seen} of {count} instances subscribed to {CHANNEL!r}")
        if xpub.recv() == b"\x01" + CHANNEL.encode():
            seen += 1


def publish_zmq(xpub, payload):
    xpub.send_multipart([CHANNEL.encode(), b"J" + json.dumps(payload).encode()])


@pytest.mark.parametrize("layout", ["id-ipc", "files-tcp"])
def test_one_zmq_publisher_reaches_every_instance(backend, cleanup, layout):
    placed = setup_backend(backend)
    xpub = CTX.socket(zmq.XPUB)
    xpub.linger = 0
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)

    pub_dir = tempfile.mkdtemp(prefix="hf-pub-")

    class Closer:
        def stop(self):
            xpub.close()
            shutil.rmtree(pub_dir, ignore_errors=True)

    cleanup.append(Closer())
    if layout == "id-ipc":
        # One shared config started with --id: an ipc:// endpoint gets no port offset, so every
        # instance connects to the same socket.
        path = os.path.join(pub_dir, "publish")
        spec = f"ipc://{path}"
        xpub.bind(spec)
        dep = IdDeployment(INSTANCES, backend.port, sub_spec=spec)
    else:
        port = free_port()
        spec = f"tcp://127.0.0.1:{port}"
        xpub.bind(spec)
        dep = FileInstances(INSTANCES, backend.port, spec)
    cleanup.append(dep)
    lb = HAProxy(dep.instances)
    cleanup.append(lb)
    streams, polls = subscribe_everywhere(lb, backend, placed, dep.instances)
    wait_subscriptions(xpub, len(dep.instances))
    wait_subscribed_locally()

    for k in range(1, MESSAGES + 1):
        publish_zmq(
            xpub,
            {
                "id": f"m{k}",
                "formats": {
                    "http-stream": {"content": stream_content(k)},
                    "http-response": {"body": f"response {k}\n"},
                },
            },
        )
    publish_zmq(xpub, {"formats": {"http-stream": {"content": stream_content("end")}}})
    check_everyone_got_everything(streams, polls, placed, first=1)
