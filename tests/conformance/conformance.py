"""The conformance walk: every operation of the catalog, from every surface, gives the same answer.

Each surface (Rust, Python, Node, C) has a runner that answers operations by name, one per line
(tests/conformance/runners/). This driver walks tests/conformance/plan.json on each surface twice,
embedded (a fresh home) and remote (a fresh `allowly serve`), and fails when:

- the catalog of a surface differs from the engine's, or the plan leaves out an operation of it;
- a surface cannot reach an operation, or fails a step another surface passes;
- an answer's shape (its members and their types, recursively) differs from the Rust embedded one;
- an expected error has another kind, code or status than on the Rust embedded run.

usage: conformance.py <allowly binary> <rust runner> <python> <node> <c runner>
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLACEHOLDER = re.compile(r"^\$\{([^}]+)\}$")


class Runner:
    """One surface's runner process: a request line in, an answer line out."""

    def __init__(self, command: list[str], tabbed: bool) -> None:
        self.tabbed = tabbed  # the C runner speaks `op<TAB>args` / `ok<TAB>json` | `error<TAB>code<TAB>status<TAB>kind`
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def call(self, op: str, args: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        line = f"{op}\t{json.dumps(args)}\n" if self.tabbed else json.dumps({"op": op, "args": args}) + "\n"
        self.proc.stdin.write(line)
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise SystemExit(f"the runner {self.proc.args} exited while answering `{op}`")
        if not self.tabbed:
            return json.loads(answer)
        kind, _, rest = answer.rstrip("\n").partition("\t")
        if kind == "ok":
            return {"ok": json.loads(rest)}
        code, status, error_kind = rest.split("\t")
        return {"error": {"code": code, "status": int(status) or None, "kind": error_kind}}

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Server:
    """A fresh `allowly serve` on a free port, with its first setup key."""

    def __init__(self, binary: str, home: Path) -> None:
        self.proc = subprocess.Popen([binary, "--home", str(home), "serve", "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.base_url = self.setup_key = ""
        assert self.proc.stdout
        while not (self.base_url and self.setup_key):
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit("allowly serve did not start")
            if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                self.base_url = m.group(1)
            if m := re.search(r"allowly\.setup\.\S+", line):
                self.setup_key = m.group(0)
        self.workspace_id = self.setup_key.split(".")[2]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def resolve(value: Any, answers: dict[str, Any]) -> Any:
    """`value` with every `${step/pointer}` replaced from earlier answers."""
    if isinstance(value, dict):
        return {k: resolve(v, answers) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, answers) for v in value]
    if isinstance(value, str) and (m := PLACEHOLDER.match(value)):
        step, _, pointer = m.group(1).partition("/")
        found = answers[step]
        for part in pointer.split("/") if pointer else []:
            found = found[int(part)] if isinstance(found, list) else found[part.replace("~1", "/").replace("~0", "~")]
        return found
    return value


def shape(value: Any) -> Any:
    """Members and types, recursively; a list by its first item."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if value is None:
        return None
    return {bool: "boolean", int: "number", float: "number", str: "string"}[type(value)]


def differences(expected: Any, got: Any, path: str = "") -> list[str]:
    """Where two shapes disagree; `null` is compatible with any type (an absent optional value)."""
    if expected is None or got is None or expected == got:
        return []
    if isinstance(expected, dict) and isinstance(got, dict):
        out = [f"{path}/{k}: missing" for k in expected.keys() - got.keys()]
        out += [f"{path}/{k}: not expected" for k in got.keys() - expected.keys()]
        for k in expected.keys() & got.keys():
            out += differences(expected[k], got[k], f"{path}/{k}")
        return out
    if isinstance(expected, list) and isinstance(got, list):
        return differences(expected[0], got[0], f"{path}/0") if expected and got else []
    return [f"{path or '/'}: {expected} != {got}"]


def walk(name: str, runner: Runner, steps: list[dict]) -> tuple[list, dict[str, Any]]:
    catalog = runner.call("__catalog__", {})["ok"]
    answers: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for step in steps:
        args = resolve(step["args"], answers)
        answer = runner.call(step["op"], args)
        if "ok" in answer:
            answers[step["name"]] = answer["ok"]
        results[step["name"]] = answer
    runner.close()
    print(f"  {name}: {len(steps)} steps")
    return catalog, results


def main() -> None:
    allowly, rust, python, node, c_runner = sys.argv[1:6]
    plan = json.loads((HERE / "plan.json").read_text())
    steps = plan["steps"]
    commands = {
        "rust": ([rust], False, rust),
        "python": ([python, str(HERE / "runners" / "python_calls.py")], False, python),
        "node": ([node, str(HERE / "runners" / "node_calls.mjs")], False, node),
        "c": ([c_runner], True, c_runner),
    }
    work = Path(tempfile.mkdtemp(prefix="allowly-conformance-"))
    runs: dict[str, tuple[list, dict[str, Any]]] = {}
    try:
        for surface, (command, tabbed, given) in commands.items():
            if given == "-":
                print(f"  {surface}: SKIPPED (no runner given); the walk fails")
                continue
            home = work / f"{surface}-embedded"
            home.mkdir()
            embedded = Runner(command + ["embedded", str(home)], tabbed)
            runs[f"{surface} embedded"] = walk(f"{surface} embedded", embedded, steps)
            server = Server(allowly, work / f"{surface}-server")
            try:
                remote = Runner(command + ["remote", server.base_url, server.setup_key, server.workspace_id], tabbed)
                runs[f"{surface} remote"] = walk(f"{surface} remote", remote, steps)
            finally:
                server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(compare(runs, steps))


def compare(runs: dict[str, tuple[list, dict[str, Any]]], steps: list[dict]) -> int:
    failures: list[str] = [f"{surface} was not walked" for surface in ("rust", "python", "node", "c")
                           if f"{surface} embedded" not in runs]
    base_catalog, base = runs["rust embedded"]
    operations = {route["operation"] for route in base_catalog}
    walked = {step["op"] for step in steps}
    failures += [f"the plan does not walk `{op}`" for op in sorted(operations - walked)]
    for run, (catalog, results) in runs.items():
        if catalog != base_catalog:
            failures.append(f"{run}: its catalog differs from the engine's")
        for step in steps:
            name, answer, expected = step["name"], results[step["name"]], base[step["name"]]
            if "error" in answer and answer["error"].get("code") == "invalid_request" and "unknown operation" in str(answer):
                failures.append(f"{run}: cannot reach `{step['op']}`")
            if "expect_error" in step:
                got = answer.get("error") or {}
                want = {"kind": step["expect_error"], **{k: (expected.get("error") or {}).get(k) for k in ("code", "status")}}
                if {k: got.get(k) for k in want} != want:
                    failures.append(f"{run}: `{name}` should fail with {want}, got {answer}")
            elif "ok" not in answer:
                failures.append(f"{run}: `{name}` failed: {answer['error']}")
            elif "ok" in expected:
                failures += [f"{run}: `{name}` {d}" for d in differences(shape(expected["ok"]), shape(answer["ok"]))]
    for failure in failures:
        print(f"FAIL {failure}")
    if not failures:
        print(f"conformance: {len(runs)} runs x {len(steps)} steps, {len(operations)} operations, same answers")
    return 1 if failures else 0


if __name__ == "__main__":
    main()
