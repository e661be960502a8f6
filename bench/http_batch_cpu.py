#!/usr/bin/env python3
"""CPU of one 1,000-subject batch lookup through the real ASGI app, in-process (no socket).

For A/B comparisons on a loaded machine: the thread CPU time of each POST /api/v1/lookup
(40 fresh batches, half listed addresses), min and median. Needs a store and snapshot built
by ``bench/policy_service.py --folder DIR`` (DIR/reputable.toml and DIR/hosts.txt).

    python bench/http_batch_cpu.py DIR SEED LABEL
    PYTHONPATH=/path/to/old/src python bench/http_batch_cpu.py DIR SEED before
"""

import asyncio
import json
import random
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

from reputable.app import open_store
from reputable.config import load_config
from reputable.web.app import create_app
from reputable.web.context import Context
from reputable.web.settings import http_settings

FOLDER = Path(sys.argv[1])
config = load_config(FOLDER / "reputable.toml")
ctx = Context.create(config, http_settings(config), lambda: open_store(config))
app = create_app(ctx)
hosts = [int(x) for x in (FOLDER / "hosts.txt").read_text().split()]
rng = random.Random(int(sys.argv[2]))
bodies = [
    json.dumps(
        {
            "subjects": [
                str(IPv4Address(rng.choice(hosts) if k % 2 else rng.randrange(1 << 32)))
                for k in range(1000)
            ]
        }
    ).encode()
    for _ in range(45)
]


async def call(body):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/lookup",
        "raw_path": b"/api/v1/lookup",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "headers": [
            (b"host", b"x"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    out = []
    done = [False]

    async def receive():
        if not done[0]:
            done[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(m):
        if m["type"] == "http.response.body":
            out.append(m.get("body", b""))

    await app(scope, receive, send)
    return b"".join(out)


async def main():
    for b in bodies[:5]:
        await call(b)
    ts = []
    for b in bodies[5:]:
        t = time.thread_time()
        r = await call(b)
        ts.append(time.thread_time() - t)
        assert len(json.loads(r)["results"]) == 1000
    ts.sort()
    print(
        f"{sys.argv[3]}: thread CPU per batch min {ts[0] * 1000:.1f} ms, median {ts[len(ts) // 2] * 1000:.1f} ms ({len(ts)} batches)",
        flush=True,
    )


asyncio.run(main())
ctx.close()
