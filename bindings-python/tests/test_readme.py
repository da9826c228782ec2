"""The README's "Python SDK" program runs as the README says: saved as `app.py` in an empty folder
outside the repository and run there as `python app.py` (with the wheel scripts/python-test.sh
installed, as `pip install /path/to/allowly/bindings-python` would)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def readme_program() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- python-sdk:begin -->\n```python\n(.*?)```\n<!-- python-sdk:end -->", readme, re.S)
    assert match, "no python-sdk block in README.md"
    assert "pip install /path/to/allowly/bindings-python" in readme and "\npython app.py\n" in readme, (
        "the README no longer says how to install and run app.py"
    )
    return match.group(1)


def test_readme_python_program_runs_in_an_empty_folder(tmp_path: Path) -> None:
    assert ROOT not in tmp_path.parents
    (tmp_path / "app.py").write_text(readme_program())
    env = {k: v for k, v in os.environ.items() if k not in ("ALLOWLY_HOME", "PYTHONPATH")}
    # Twice: a second run reuses ./.allowly (the policy is no new edition, the authorization is new).
    for run in (1, 2):
        done = subprocess.run([sys.executable, "app.py"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, env=env)
        assert done.returncode == 0, f"run {run}:\n{done.stdout}{done.stderr}"
        lines = done.stdout.splitlines()
        assert lines[:2] == ["confirm condition_requires_user_confirmation", "allow user_confirmed"], done.stdout
        assert re.fullmatch(r"verified rcp_[0-9A-Z]+ allow", lines[2]), done.stdout
        assert len(lines) == 3, done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [".allowly", "app.py"]
