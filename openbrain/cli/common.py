"""What the CLIs share: turning errors into one line and an exit code, and waiting for a server to be stopped."""

from __future__ import annotations

import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from openbrain.core.errors import OpenBrainError

EXIT_ERROR = 1
EXIT_INTERNAL = 70  # EX_SOFTWARE


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)


def run(prog: str, main: Callable[[], int]) -> int:
    """Run `main`; library errors become one line on stderr and exit 1, anything else exit 70."""
    try:
        return main()
    except OpenBrainError as exc:
        fail(prog, exc.message)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`ob ... | head`): nothing left to say
        return 0
    except Exception as exc:
        if _debug():
            traceback.print_exc()
        fail(prog, f"unexpected {type(exc).__name__}: {exc} (set OB_DEBUG=1 to see the traceback)")
        return EXIT_INTERNAL


def wait_for_stop() -> None:
    """Block a server's main thread until SIGTERM or SIGINT (Ctrl-C)."""
    stopped = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()


def _debug() -> bool:
    from openbrain.core.settings import load_settings

    try:
        return load_settings().debug
    except OpenBrainError:
        return False


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)
