"""A script written for the official 0.8.0 client runs unchanged against this package (and, when
the official client's venv exists, against the official client with the same observations)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Server

SCRIPT = Path(__file__).with_name("official_script.py")
OFFICIAL_PYTHON = ROOT / "target" / "venv-official" / "bin" / "python"


def run_script(python: str, server: Server) -> list[object]:
    done = subprocess.run(
        [python, str(SCRIPT), server.base_url, server.setup_key, server.runtime_key],
        capture_output=True, text=True, timeout=120, cwd=str(SCRIPT.parent.parent),
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    observed: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    return observed


def test_official_script_runs_unchanged(server: Server) -> None:
    ours = run_script(sys.executable, server)
    verified = [x["verified"] for x in ours if isinstance(x, dict) and "verified" in x]
    assert verified and verified[0] >= 15, ours
    if OFFICIAL_PYTHON.exists():
        official = run_script(str(OFFICIAL_PYTHON), server)
        assert ours == official
