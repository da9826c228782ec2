"""Sequential check latency of a Python `allowly` client against allowly serve: the official client
0.8.0 or this project's Python SDK (same constructor and calls), whichever the interpreter has.
Usage: python_client_latency.py BASE_URL RUNTIME_KEY AUTHORIZATION_ID COUNT; prints JSON."""
import asyncio
import json
import statistics
import sys
import time

from allowly import Allowly


async def main() -> None:
    base_url, key, authorization_id, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = Allowly(key, base_url=base_url, dangerously_allow_insecure_base_url=True)
    for _ in range(200):
        await client.check(authorization_id=authorization_id, actions=["search.web"], context={"query": "w"})
    samples = []
    fallbacks = 0
    for _ in range(count):
        started = time.perf_counter()
        answer = await client.check(authorization_id=authorization_id, actions=["search.web"], context={"query": "w"})
        samples.append((time.perf_counter() - started) * 1000)
        result = answer.results["search.web"]
        fallbacks += result.is_fallback or 0
    samples.sort()
    print(json.dumps({
        "median_ms": statistics.median(samples),
        "p95_ms": samples[int(len(samples) * 0.95)],
        "p99_ms": samples[int(len(samples) * 0.99)],
        "fallbacks": fallbacks,
    }))


asyncio.run(main())
