"""What every console script shares (openbrain/cli/common.py): `--version`, and hints that name a command the user
can run from where they are, whether or not the venv's bin/ is on PATH (`scripts/ob` runs `.venv/bin/ob` without
putting it there), printing a reply as it streams, and the machine's time zone."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from support.cli import BIN, TIMEOUT, Cli

pytestmark = pytest.mark.e2e

PROGRAMS = ("ob", "ob-chat", "ob-admin", "ob-serve", "ob-tuner")
ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
WITHOUT_BIN = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != BIN.resolve())


def run(cli: Cli, argv: list[str], cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    """Run `argv` as a user would type it in `cwd` with `PATH=path` (a bare name is looked up on that PATH)."""
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, input="", env={**cli.env, "PATH": path},
                          timeout=TIMEOUT)


@pytest.mark.parametrize("program", PROGRAMS)
def test_every_console_script_prints_its_name_and_the_installed_version(cli: Cli, program: str) -> None:
    result = cli.run(program, "--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{program} {metadata.version('openbrain-agents')}\n"
    assert result.stderr == ""


def test_the_import_package_openbrain_comes_from_the_openbrain_agents_distribution() -> None:
    # `openbrain` on PyPI (5.9.0) is an unrelated project: ours is installed under its own name
    assert "openbrain-agents" in metadata.packages_distributions()["openbrain"]
    assert metadata.metadata("openbrain-agents")["License-Expression"] == "AGPL-3.0-or-later"


def _continue_hint(stderr: str) -> str:
    match = re.search(rf"^\(session ({ULID}); continue with: (.+) --session \1 MESSAGE\)$", stderr, re.M)
    assert match, stderr
    return match.group(2)


def test_ob_names_itself_when_path_finds_it(cli: Cli, tmp_path: Path) -> None:
    result = run(cli, ["ob", "what is 6*7"], cwd=tmp_path, path=f"{BIN}{os.pathsep}{WITHOUT_BIN}")

    assert result.returncode == 0, result.stderr
    assert _continue_hint(result.stderr) == "ob"


def test_ob_off_path_names_the_script_below_the_working_directory_relative_and_the_hint_runs(cli: Cli) -> None:
    # given the venv's bin/ is not on PATH and the user is in the folder holding the venv (as after scripts/ob)
    here = BIN.parent.parent
    first = run(cli, [str(BIN / "ob"), "my name is Ada Lovelace"], cwd=here, path=WITHOUT_BIN)
    assert first.returncode == 0, first.stderr

    # then the hint is the script's path from there, and running it continues the session
    hint = _continue_hint(first.stderr)
    assert hint == shlex.quote(f"{BIN.parent.name}/bin/ob")
    session = re.search(rf"--session ({ULID})", first.stderr)
    assert session
    second = run(cli, [*shlex.split(hint), "--session", session.group(1), "do you remember me?"], cwd=here,
                 path=WITHOUT_BIN)
    assert second.returncode == 0, second.stderr
    assert "Ada" in second.stdout


def test_ob_off_path_elsewhere_names_the_scripts_absolute_path(cli: Cli, tmp_path: Path) -> None:
    result = run(cli, [str(BIN / "ob"), "what is 6*7"], cwd=tmp_path, path=WITHOUT_BIN)

    assert result.returncode == 0, result.stderr
    assert _continue_hint(result.stderr) == shlex.quote(str(BIN / "ob"))


def test_ob_admin_hints_name_a_runnable_ob_admin(cli: Cli, tmp_path: Path) -> None:
    # given no clients and ob-admin run by its path, off PATH
    empty = run(cli, [str(BIN / "ob-admin"), "client", "list"], cwd=tmp_path, path=WITHOUT_BIN)
    assert empty.returncode == 0, empty.stderr
    prefix = "no clients yet; create one with: "
    assert empty.stdout.startswith(prefix), empty.stdout
    hint = empty.stdout.removeprefix(prefix).strip()
    assert hint == f"{shlex.quote(str(BIN / 'ob-admin'))} client create NAME"

    # when the user runs the hint (with a webhook, so the webhook secret's notice is printed too)
    created = run(cli, [*shlex.split(hint.replace("NAME", "Acme")), "--webhook", "http://127.0.0.1:9/leads"],
                  cwd=tmp_path, path=WITHOUT_BIN)

    # then the client exists, and each command the notices name is the same runnable ob-admin, for that client
    assert created.returncode == 0, created.stderr
    named = re.findall(r"`([^`]+)`", created.stderr)
    assert named == [f"{shlex.quote(str(BIN / 'ob-admin'))} client {rest}" for rest in
                     ("rotate-key acme", "rotate-key acme --widget", "rotate-webhook-secret acme")], created.stderr
    for hinted in named:
        assert run(cli, shlex.split(hinted), cwd=tmp_path, path=WITHOUT_BIN).returncode == 0, hinted


# --- printing a reply as it streams (print_streaming) -------------------------------------------------------


def _turn(*middle: dict[str, object], reply: str) -> list[dict[str, object]]:
    return [{"type": "turn.started", "session_id": "S", "client_id": "c", "profile_name": "p", "turn": 1}, *middle,
            {"type": "message", "text": reply},
            {"type": "turn.finished", "session_id": "S", "client_id": "c", "profile_name": "p", "model": "m",
             "events": [], "tool_calls": [], "stopped": None, "ended": False, "usage": {}}]


def test_a_step_after_a_tool_starts_its_line_afresh_and_the_reply_is_returned() -> None:
    import io

    from openbrain.cli.common import print_streaming

    out = io.StringIO()
    events = _turn({"type": "token", "text": "Let me ", "step": 1}, {"type": "token", "text": "check.", "step": 1},
                   {"type": "tool.started", "id": "1", "name": "calculator"},
                   {"type": "tool.finished", "id": "1", "name": "calculator", "ok": True},
                   {"type": "token", "text": "It is ", "step": 2}, {"type": "token", "text": "42.", "step": 2},
                   reply="It is 42.")

    response = print_streaming(iter(events), "bot> ", out)  # type: ignore[arg-type]

    assert out.getvalue() == "bot> Let me check.\nbot> It is 42.\n"
    assert (response.message, response.session_id) == ("It is 42.", "S")


def test_a_stored_reply_that_is_not_what_streamed_follows_on_its_own_line() -> None:
    import io

    from openbrain.cli.common import print_streaming

    out = io.StringIO()
    events = _turn({"type": "token", "text": "Thinking", "step": 1}, reply="I had to stop here: ...")

    print_streaming(iter(events), "", out)  # type: ignore[arg-type]

    assert out.getvalue() == "Thinking\nI had to stop here: ...\n"


def test_a_failure_mid_reply_ends_the_line_before_the_error_is_told() -> None:
    import io

    from openbrain.cli.common import print_streaming
    from openbrain.core.errors import UpstreamError

    def failing() -> object:
        yield {"type": "token", "text": "Half a", "step": 1}
        raise UpstreamError("the model failed")

    out = io.StringIO()
    with pytest.raises(UpstreamError):
        print_streaming(failing(), "bot> ", out)  # type: ignore[arg-type]

    assert out.getvalue() == "bot> Half a\n"


# --- the machine's time zone (local_timezone; ob and ob-chat send it as a new session's) ---------------------


@pytest.mark.parametrize(("tz", "link", "zone"), [
    ("Europe/Paris", "/usr/share/zoneinfo/Asia/Tokyo", "Europe/Paris"),  # $TZ first
    (":Europe/Paris", None, "Europe/Paris"),  # POSIX's "implementation-defined" form
    (None, "/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),
    (None, "../usr/share/zoneinfo/America/New_York", "America/New_York"),  # a relative link
    (None, "/var/db/timezone/zoneinfo/Europe/London", "Europe/London"),  # macOS
    ("CET-1CEST,M3.5.0,M10.5.0/3", "/usr/share/zoneinfo/Europe/Berlin", "Europe/Berlin"),  # a POSIX rule
    ("", "/usr/share/zoneinfo/Etc/UTC", "Etc/UTC"),
    (None, "/usr/share/zoneinfo/Not/A_Zone", None),
    (None, "/some/file", None),
    (None, None, None),  # no /etc/localtime
])
def test_the_machines_zone_is_tz_else_what_etc_localtime_links_to(tmp_path: Path, tz: str | None, link: str | None,
                                                                  zone: str | None) -> None:
    from openbrain.cli.common import local_timezone

    localtime = tmp_path / "localtime"
    if link is not None:
        localtime.symlink_to(link)
    assert local_timezone({} if tz is None else {"TZ": tz}, localtime) == zone


def test_a_copied_etc_localtime_names_no_zone(tmp_path: Path) -> None:
    from openbrain.cli.common import local_timezone

    localtime = tmp_path / "localtime"
    localtime.write_bytes(b"TZif2")
    assert local_timezone({}, localtime) is None
