"""Shared fixtures: the repository root, a running `allowly serve` (release binary), fresh
embedded homes. Tests run against the installed wheel, never the source tree."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The MCP guard's tests need fastmcp and mcp, which only scripts/mcp-python-test.sh installs.
collect_ignore = ["mcp"] if importlib.util.find_spec("fastmcp") is None else []


def pytest_configure(config: pytest.Config) -> None:
    import allowly

    # The suite must exercise the built package, not python/ in the source tree.
    source = ROOT / "bindings-python" / "python"
    if Path(allowly.__file__).resolve().is_relative_to(source) and not os.environ.get("ALLOWLY_TEST_SOURCE_TREE"):
        raise pytest.UsageError(f"allowly imported from the source tree ({allowly.__file__}); install the wheel")


@dataclass
class Server:
    base_url: str
    setup_key: str
    runtime_key: str
    workspace_id: str
    process: subprocess.Popen[bytes]


def allowly_binary() -> Path:
    path = Path(os.environ.get("ALLOWLY_BIN", ROOT / "target" / "release" / "allowly"))
    if not path.exists():
        pytest.skip(f"{path} is not built (cargo build --release -p allowly-cli)")
    return path


def start_server(home: Path) -> Server:
    out_path = home.parent / (home.name + ".out")
    log = open(home.parent / (home.name + ".log"), "ab")
    out = open(out_path, "wb")
    process = subprocess.Popen(
        [str(allowly_binary()), "--home", str(home), "serve", "--listen", "127.0.0.1:0"],
        stdout=out,
        stderr=log,
        env={k: v for k, v in os.environ.items() if k != "ALLOWLY_DATABASE_URL"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = out_path.read_text(errors="replace")
        match = re.search(r"listening on (http://[0-9.:]+)", text)
        setup = re.search(r"allowly\.setup\.\S+", text)
        runtime = re.search(r"allowly\.runtime\.\S+", text)
        if match and setup and runtime:
            return Server(
                base_url=match.group(1),
                setup_key=setup.group(0),
                runtime_key=runtime.group(0),
                workspace_id=setup.group(0).split(".")[2],
                process=process,
            )
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("allowly serve did not start: " + out_path.read_text(errors="replace"))


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    work = Path(tempfile.mkdtemp(prefix="allowly-pytest-"))
    started = start_server(work / "home")
    try:
        yield started
    finally:
        started.process.terminate()
        try:
            started.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            started.process.kill()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A server on its own fresh workspace (for flows that need one)."""
    started = start_server(tmp_path / "home")
    try:
        yield started
    finally:
        started.process.terminate()
        try:
            started.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            started.process.kill()


@pytest.fixture
def home(tmp_path: Path) -> str:
    return str(tmp_path / "allowly-home")
