"""`import allowly` never needs an MCP framework, and `import allowly.mcp` without one says what to
install."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import allowly


def test_without_fastmcp_the_import_error_names_the_extra(tmp_path: Path) -> None:
    # A Python that sees the installed allowly package and nothing else of site-packages.
    (tmp_path / "allowly").symlink_to(Path(allowly.__file__).parent)
    program = (
        "import allowly\n"
        "assert allowly.Allowly.in_memory() is not None\n"
        "try:\n"
        "    import allowly.mcp\n"
        "except ImportError as error:\n"
        "    print(error)\n"
        "else:\n"
        "    raise SystemExit('allowly.mcp imported without fastmcp')\n"
    )
    done = subprocess.run([sys.executable, "-S", "-c", program], capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pip install 'allowly[fastmcp]'" in done.stdout
