"""What the CLIs share: `--version`, the client id argument, hints that name a command the user can run, turning
errors into one line and an exit code, the time zone a new session reads time prompts in, printing a reply as it
streams, and waiting for a server to be stopped."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import openbrain
from openbrain.core.clock import is_time_zone
from openbrain.core.errors import OpenBrainError

if TYPE_CHECKING:
    from openbrain.conversation.agents.runner import TurnEvent
    from openbrain.conversation.chat import ChatResponse

# pyproject's [project] name: the import package is `openbrain`, but `openbrain` on PyPI is another project.
DISTRIBUTION = "openbrain-agents"
EXIT_ERROR = 1
EXIT_INTERNAL = 70  # EX_SOFTWARE
LOCALTIME = Path("/etc/localtime")


def add_version(parser: argparse.ArgumentParser) -> None:
    """`--version`: print `<prog> <version>` and exit 0."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")


def parse_client_id(text: str) -> str:
    """argparse `type` of every CLI's client id (`--client-id`, CLIENT_ID): the rule a stored client's id keeps
    (`validate_client_id`), so a bad one is a usage error (exit 2) before anything is read or stored."""
    from openbrain.storage.orm.client import validate_client_id

    try:
        return validate_client_id(text)
    except OpenBrainError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def installed_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed (PYTHONPATH=.)
        return f"{openbrain.__version__} (from source: {DISTRIBUTION} is not installed)"


Number = TypeVar("Number", int, float)


def number_between(kind: Callable[[str], Number], low: Number, high: Number | None = None) -> Callable[[str], Number]:
    """An argparse `type`: a number (`kind`: int or float) from `low` to `high` (no upper bound if None); anything
    else (`99999` for a port, `nan`, `abc`) is a usage error (exit 2) saying what is allowed."""
    what = "a whole number" if kind is int else "a number"
    allowed = f"{what} from {low} to {high}" if high is not None else f"{what} of at least {low}"

    def parse(text: str) -> Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if not (low <= value and (high is None or value <= high)):  # NaN is neither
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}")
        return value

    return parse


def command(prog: str) -> str:
    """What to type to run the console script `prog` of this installation: its name when PATH finds this very
    script, else its path (relative to the working directory when it lies below it), e.g. `.venv/bin/ob` after
    `scripts/ob`, which runs the venv's script without putting the venv on PATH."""
    script = next((folder / prog for folder in (Path(sys.argv[0]).absolute().parent, Path(sys.executable).parent)
                   if (folder / prog).is_file()), None)
    if script is None:  # not a console script (python -m ..., Windows' ob.exe): the name is the best guess
        return prog
    found = shutil.which(prog)
    if found and Path(found).resolve() == script.resolve():
        return prog
    try:
        path = script.relative_to(Path.cwd()).as_posix()
        path = path if "/" in path else f"./{path}"
    except ValueError:
        path = str(script)
    return shlex.quote(path)


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


def add_timezone(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timezone", metavar="ZONE", type=parse_time_zone,
                        help="the IANA time zone a new session reads time prompts in (dps, reminders), e.g. "
                             "Europe/London [this machine's: $TZ, else /etc/localtime's; else the profile's]")


def parse_time_zone(text: str) -> str:
    """argparse `type` of --timezone: an IANA zone, else a usage error (exit 2)."""
    if not is_time_zone(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IANA time zone such as Europe/London")
    return text


def session_context(zone: str | None) -> dict[str, str]:
    """The context a CLI starts a session with, as the widget sends the browser's: `timezone`, the zone its time
    prompts are read in (docs/scheduling.md). `zone` (--timezone, checked by `parse_time_zone`) if given, else this
    machine's (`local_timezone`); else none, and the profile's zone applies."""
    zone = zone or local_timezone()
    return {"timezone": zone} if zone else {}


def local_timezone(environ: Mapping[str, str] = os.environ, localtime: Path = LOCALTIME) -> str | None:
    """This machine's IANA zone: $TZ if it names one (POSIX's leading ':' allowed), else the zone /etc/localtime
    links to (…/zoneinfo/Europe/London), else None."""
    named = environ.get("TZ", "").removeprefix(":")
    if is_time_zone(named):
        return named
    try:
        target = os.readlink(localtime)
    except OSError:  # no such file, or a copy rather than a link: nothing names the zone
        return None
    _, found, name = target.partition("zoneinfo/")
    return name if found and is_time_zone(name) else None


def add_no_stream(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-stream", action="store_true",
                        help="on a terminal, print each reply when it is complete instead of as it arrives")


def streams(args: argparse.Namespace) -> bool:
    """Whether replies print as they arrive: on a terminal, unless --no-stream (piped output stays one reply
    per line, printed whole)."""
    return sys.stdout.isatty() and not args.no_stream


def print_streaming(events: Iterable[TurnEvent], prefix: str = "", out: IO[str] | None = None) -> ChatResponse:
    """Print a turn's reply as its `events` arrive, and return the reply they add up to (`collect`).

    Each step's tokens go on a line of their own after `prefix`: a step after a tool starts its line afresh
    (the tools are not shown here; the callers list them after the reply). If the stored reply (`message`) is
    not what the last step streamed (a reply the turn's limits wrote), it is printed on a line of its own."""
    from openbrain.conversation.chat import collect

    out = out or sys.stdout
    seen: list[TurnEvent] = []
    step, line = None, None  # the step on the current line, and its text so far (None: no line open)
    try:
        for event in events:
            seen.append(event)
            if event["type"] == "token":
                if event["step"] != step:
                    out.write(("\n" if line is not None else "") + prefix)
                    step, line = event["step"], ""
                out.write(event["text"])
                out.flush()
                line = (line or "") + event["text"]
            elif event["type"] == "message":
                if line != event["text"]:
                    out.write(("\n" if line is not None else "") + prefix + event["text"])
                out.write("\n")
                out.flush()
                line = None
    finally:
        if line is not None:  # a failure mid-reply: its message starts on a line of its own
            out.write("\n")
            out.flush()
    return collect(seen)


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
