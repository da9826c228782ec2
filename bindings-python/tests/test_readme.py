"""The README's "Python SDK" block runs as written (in a scratch directory with the examples)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_readme_python_block_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- python-sdk:begin -->\n```python\n(.*?)```\n<!-- python-sdk:end -->", readme, re.S)
    assert match, "no python-sdk block in README.md"
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "snippet.py").write_text(match.group(1))
    env = {k: v for k, v in os.environ.items() if k not in ("ALLOWLY_HOME", "PYTHONPATH")}
    done = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "confirm condition_requires_user_confirmation"
    assert lines[1] == "user_confirmed"
    assert lines[2].startswith("verified rcp_")
    assert (tmp_path / ".allowly").is_dir()
