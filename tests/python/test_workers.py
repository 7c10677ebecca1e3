"""`[proxy] workers`: how many threads the handler runs its work on.

Holdfast's handler does the proxying, GRIP and publishing that Pushpin's `pushpin-proxy` and
`pushpin-handler` do. One worker (the default, as for Pushpin's `[proxy] workers`) runs all of
it on one thread; more run a multi-threaded runtime with that many worker threads. Either way
plain requests, held streams and publishes are served side by side.
"""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from gripcontrol import GripPubControl, HttpStreamFormat
from pubcontrol import Item

from conftest import TARGET, children, grip

STREAMS = 8
PLAIN_REQUESTS = 200
MESSAGES = 20


def handler_worker_threads(proxy):
    """Threads of the handler process that the runtime named `handler`."""
    handler = [pid for pid, comm in children(proxy.process.pid) if comm == "holdfast-handle"]
    assert len(handler) == 1, children(proxy.process.pid)
    names = []
    for task in os.listdir(f"/proc/{handler[0]}/task"):
        try:
            with open(f"/proc/{handler[0]}/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return names.count("handler")


@pytest.mark.skipif(TARGET != "holdfast", reason="Pushpin 1.36 has no [proxy] workers (1.39+)")
@pytest.mark.parametrize("workers", [None, 3])
def test_handler_serves_requests_streams_and_publishes_on_its_workers(make_proxy, backend, workers):
    backend.route("/plain", lambda r: (200, [("Content-Type", "text/plain")], r["path"]))
    backend.route("/stream", lambda r: (200, grip("stream", "w"), "start\n"))
    conf = [f"workers={workers}"] if workers else []
    proxy = make_proxy([f"* 127.0.0.1:{backend.port}"], proxy_conf=conf)

    # One worker runs on the handler's main thread; N workers are N threads of the runtime. The
    # runtime also names its blocking-pool threads `handler` (one or two start with the process
    # for name lookups), so a 2-worker default would count 3 or more.
    threads = handler_worker_threads(proxy)
    assert (workers or 0) <= threads <= (workers or 0) + 2
    assert f"{workers or 1} worker thread" in proxy.log()

    received = [b""] * STREAMS
    opened = threading.Barrier(STREAMS + 1)

    def listen(i):
        with httpx.stream("GET", proxy.base + "/stream", timeout=30) as resp:
            assert resp.status_code == 200
            chunks = resp.iter_raw()
            received[i] = next(chunks)
            opened.wait()
            for chunk in chunks:
                received[i] += chunk

    listeners = [threading.Thread(target=listen, args=(i,)) for i in range(STREAMS)]
    for t in listeners:
        t.start()
    opened.wait(timeout=20)

    def plain(i):
        r = httpx.get(f"{proxy.base}/plain?n={i}", timeout=20)
        return r.status_code, r.text

    pub = GripPubControl({"control_uri": proxy.control_uri})
    with ThreadPoolExecutor(16) as pool:
        answers = pool.map(plain, range(PLAIN_REQUESTS))
        for m in range(MESSAGES):
            pub.publish_http_stream("w", f"m{m}\n", blocking=True)
        answers = list(answers)
    pub.publish("w", Item(HttpStreamFormat(close=True)), blocking=True)
    for t in listeners:
        t.join(timeout=20)
        assert not t.is_alive()

    assert answers == [(200, f"/plain?n={i}") for i in range(PLAIN_REQUESTS)]
    expected = b"start\n" + b"".join(f"m{m}\n".encode() for m in range(MESSAGES))
    assert received == [expected] * STREAMS
