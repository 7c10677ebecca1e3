"""Fan-out at scale: 10,000 SSE streams on one channel each receive 100 published messages, in
order, none lost or duplicated."""

import asyncio
import json
import re
import resource
import time

import httpx

from conftest import TARGET

STREAMS = 10_000
MESSAGES = 100


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def open_stream(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


async def collect(reader, writer, expected, deadline):
    """Reads until `expected` numbered events arrived; returns their numbers in order."""
    data = b""
    numbers = []
    pattern = re.compile(rb"data: m(\d+)\n\n")
    while len(numbers) < expected and time.time() < deadline:
        try:
            chunk = await asyncio.wait_for(reader.read(65536), max(0.1, deadline - time.time()))
        except asyncio.TimeoutError:
            break
        if not chunk:
            break
        data += chunk
        numbers = [int(m) for m in pattern.findall(data)]
    writer.close()
    return numbers


def test_ten_thousand_sse_streams_get_every_message_in_order(make_proxy):
    limit = raise_fd_limit(STREAMS + 1000)
    assert limit >= STREAMS + 200, f"RLIMIT_NOFILE {limit} is too low for {STREAMS} streams"
    proxy = make_proxy(["* test"])

    async def main():
        sem = asyncio.Semaphore(500)

        async def opened():
            async with sem:
                return await open_stream(proxy.port, "/stream?channel=fan")

        streams = await asyncio.gather(*(opened() for _ in range(STREAMS)))
        await asyncio.sleep(1.0)
        deadline = time.time() + 120
        collectors = [asyncio.create_task(collect(r, w, MESSAGES, deadline)) for r, w in streams]

        def publish_all():
            with httpx.Client(base_url=proxy.control_uri, timeout=30) as client:
                for i in range(MESSAGES):
                    item = {
                        "channel": "fan",
                        "id": f"m{i}",
                        "formats": {"http-stream": {"content": f"event: message\ndata: m{i}\n\n"}},
                    }
                    r = client.post("/publish/", content=json.dumps({"items": [item]}))
                    assert r.status_code == 200, r.text

        await asyncio.get_running_loop().run_in_executor(None, publish_all)
        return await asyncio.gather(*collectors)

    results = asyncio.run(main())
    expected = list(range(MESSAGES))
    complete = sum(1 for r in results if r == expected)
    lost = sum(MESSAGES - len(set(r)) for r in results)
    duplicated = sum(len(r) - len(set(r)) for r in results)
    out_of_order = sum(1 for r in results if r != sorted(r))
    assert (complete, lost, duplicated, out_of_order) == (STREAMS, 0, 0, 0), (
        f"{TARGET}: complete={complete} lost={lost} duplicated={duplicated} out_of_order={out_of_order}"
    )
