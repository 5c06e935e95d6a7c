"""Running the installed console scripts as subprocesses."""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
TIMEOUT = 120
STREAMED = "Tokyo is nine hours ahead of London, give or take daylight saving."  # tests/cli's `streaming_model`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """`condition()`'s first truthy value, polled every 0.2 s; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def serving(program: str, *args: str, env: dict[str, str], log: Path, timeout: float = 60) -> Iterator[str]:
    """Run the console script `program` (a server) with its output in `log`; yield the URL of its
    `... serving on <url>` line, and stop it (SIGTERM, then wait) on the way out."""

    def url() -> str | None:
        if server.poll() is not None:
            raise AssertionError(f"{program} exited with {server.returncode}:\n{log.read_text()}")
        return next((line.split("serving on ")[1].split()[0] for line in log.read_text().splitlines()
                     if "serving on " in line), None)

    with log.open("wb") as out:
        server = subprocess.Popen([str(BIN / program), *args], stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        yield wait_for(url, timeout, f"{program} to start")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise


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


def usage_error(capsys: Any, main: Callable[[list[str]], int], *argv: str) -> str:
    """Run a CLI's `main` in this process with `argv`, which it must refuse as a usage error (exit 2, after its
    usage line): the error line. Refused while parsing, before any store is opened, so this needs none."""
    try:
        main(list(argv))
    except SystemExit as exited:
        code = exited.code
    else:
        code = None
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("usage: ") and "Traceback" not in err, (code, out, err)
    return err.splitlines()[-1]


def on_terminal(program: str, *args: str, env: dict[str, str], stdin: str = "") -> list[bytes]:
    """Run the console script `program` with its stdout on a pseudo-terminal (stdin and stderr piped) and
    return what it wrote there, read by read as it came (a read returns what was written since the last)."""
    controller, terminal = os.openpty()
    with subprocess.Popen([str(BIN / program), *args], stdin=subprocess.PIPE, stdout=terminal,
                          stderr=subprocess.PIPE, env=env) as process:
        os.close(terminal)
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(stdin.encode())
        process.stdin.close()
        reads: list[bytes] = []
        deadline = time.monotonic() + TIMEOUT
        try:
            while time.monotonic() < deadline:
                if select.select([controller], [], [], 0.5)[0]:
                    try:
                        chunk = os.read(controller, 4096)
                    except OSError:  # EIO: the program closed the terminal
                        chunk = b""
                    if not chunk:
                        break
                    reads.append(chunk)
        finally:
            os.close(controller)
        errors = process.stderr.read().decode()
        assert process.wait(timeout=30) == 0, errors
    return reads


def partial_reads(reads: list[bytes], reply: str) -> int:
    """How many of `on_terminal`'s reads left the terminal showing part of `reply` but not all of it yet."""
    shown, partial = b"", 0
    for chunk in reads:
        shown += chunk
        partial += reply[:6].encode() in shown and reply.encode() not in shown
    return partial
