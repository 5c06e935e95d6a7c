"""Running the installed console scripts as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
TIMEOUT = 120


@dataclass
class Cli:
    """The environment the CLIs run in: a temp HOME, a temp store, no model key, no OB_* settings."""

    home: Path
    store: Path
    env: dict[str, str]

    def run(self, program: str, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / program), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=TIMEOUT,
        )


def assert_one_line_error(result: subprocess.CompletedProcess[str], program: str, message: str) -> None:
    """A library error: exit 1, nothing on stdout, one `prog: error: ...` line on stderr, no traceback."""
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"{program}: error: {message}"), result.stderr
