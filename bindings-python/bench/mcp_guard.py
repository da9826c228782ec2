"""What the MCP guard adds to a tool call (run by scripts/mcp-python-bench.sh; not a test).

One fastmcp server without a guard and one with AllowlyMCPMiddleware on an embedded workspace
(examples/mcp/policy.json without its daily cap), each called through fastmcp.Client in memory: the
same `email.send` tool, allowed by the policy, so every guarded call is a full check with a signed
receipt. The two are timed in alternating rounds after a warm-up; the guard's cost is the difference of the percentiles.
The check alone (Allowly.check, async, same engine) is timed too, for scale.

Usage: mcp_guard.py [--calls N]   (default 4000 per side)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from fastmcp import Client, FastMCP

from allowly import Allowly
from allowly.mcp import AllowlyMCPMiddleware, MCPAuthorizationContext, MCPCheckInput

POLICY = Path(__file__).resolve().parents[2] / "examples" / "mcp" / "policy.json"
ARGUMENTS = {"to": "bob@example.com", "subject": "hi", "body": "hello"}
ROUNDS = 10
WARM_UP = 300


def percentiles(samples_us: list[float]) -> dict[str, float]:
    ordered = sorted(samples_us)
    n = len(ordered)
    return {"calls": n, "p50_us": ordered[round((n - 1) * 0.5)], "p99_us": ordered[round((n - 1) * 0.99)]}


def server(guard: AllowlyMCPMiddleware | None) -> FastMCP:
    mcp = FastMCP("bench")
    if guard is not None:
        mcp.add_middleware(guard)

    @mcp.tool(name="email.send")
    def send(to: str, subject: str, body: str) -> str:
        return "sent"

    return mcp


async def timed(call: Callable[[], Awaitable[Any]], n: int, into: list[float]) -> None:
    for _ in range(n):
        started = time.perf_counter_ns()
        await call()
        into.append((time.perf_counter_ns() - started) / 1000)


async def main(calls: int) -> dict[str, Any]:
    policy = json.loads(POLICY.read_text())
    definition = {k: v for k, v in policy.items() if k not in ("policy_id", "description")}
    for action in definition["actions"]:
        action["guards"] = {}  # the example's daily cap would end the run
    with tempfile.TemporaryDirectory() as home:
        allowly = Allowly.embedded(home)
        await allowly.policies.publish(policy_id=policy["policy_id"], definition=definition)
        authorization_id = (await allowly.authorizations.create(user_id="bench_user",
                                                                policy_id=policy["policy_id"])).authorization_id

        def check_input(call: MCPAuthorizationContext) -> MCPCheckInput:
            return MCPCheckInput(context={"recipient_domain": str(call.arguments["to"]).rpartition("@")[2]})

        guard = AllowlyMCPMiddleware(None, lambda user_id: authorization_id, client=allowly,
                                     user_id_fn=lambda call: "bench_user", check_input_fn=check_input)
        plain_samples: list[float] = []
        guarded_samples: list[float] = []
        check_samples: list[float] = []
        async with Client(server(None)) as plain, Client(server(guard)) as guarded:
            async def call_plain() -> None:
                result = await plain.call_tool("email.send", ARGUMENTS)
                assert result.content[0].text == "sent"

            async def call_guarded() -> None:
                result = await guarded.call_tool("email.send", ARGUMENTS)
                assert result.meta["allowly"]["decision"] == "allow"

            async def check() -> None:
                await allowly.check(authorization_id=authorization_id, actions=["email.send"],
                                    context={"recipient_domain": "example.com"})

            for call in (call_plain, call_guarded, check):
                await timed(call, WARM_UP, [])
            per_round = max(1, calls // ROUNDS)
            for _ in range(ROUNDS):
                await timed(call_plain, per_round, plain_samples)
                await timed(call_guarded, per_round, guarded_samples)
                await timed(check, per_round, check_samples)
        await allowly.aclose()

    plain_figures, guarded_figures = percentiles(plain_samples), percentiles(guarded_samples)
    return {
        "plain": plain_figures,
        "guarded": guarded_figures,
        "added_p50_us": guarded_figures["p50_us"] - plain_figures["p50_us"],
        "added_p99_us": guarded_figures["p99_us"] - plain_figures["p99_us"],
        "check_alone": percentiles(check_samples),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    figures = asyncio.run(main(parser.parse_args().calls))
    print(f"MCP tool call in memory (fastmcp.Client), {figures['plain']['calls']} calls each, embedded engine")
    for name in ("plain", "guarded", "check_alone"):
        f = figures[name]
        print(f"  {name:<12} p50 {f['p50_us']:8.1f} us   p99 {f['p99_us']:8.1f} us")
    print(f"  guard adds   p50 {figures['added_p50_us']:8.1f} us   p99 {figures['added_p99_us']:8.1f} us")
    print(json.dumps(figures))
