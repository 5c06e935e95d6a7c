"""`ob-chat`: a terminal session; replies on stdout, everything else on stderr when stdin is piped."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import BIN, STREAMED, Cli, assert_one_line_error, on_terminal, partial_reads

pytestmark = pytest.mark.e2e

ICEBREAKER = "Hi! I'm your OpenBrain assistant. How can I help you today?"
ULID = r"[0-9A-HJKMNP-TV-Z]{26}"
SESSION_LINE = re.compile(rf"^\[session ({ULID}) · profile (\S+) · commands: ", re.M)


def _sessions(stderr: str) -> list[str]:
    return [match.group(1) for match in SESSION_LINE.finditer(stderr)]


def test_ob_chat_prints_the_icebreaker_then_one_reply_per_line(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="what is 6*7\n\nwhat time is it in Tokyo\nwhat is 2^10\n")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ICEBREAKER
    assert lines[1] == "6*7 = 42"
    assert lines[2].startswith("The current time in Asia/Tokyo is ")
    assert lines[3] == "2^10 = 1024"
    assert len(lines) == 4  # the blank line is skipped
    assert len(_sessions(result.stderr)) == 1
    assert "  [tools: calculator]" in result.stderr.splitlines()
    assert "  [tools: get_current_time]" in result.stderr.splitlines()


def test_ob_chat_remembers_the_conversation(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="my name is Grace Hopper\nwho am I?\n")

    assert result.stdout.splitlines()[2] == (
        'You said: "who am I?". That is message 2 I can see in this conversation; before it you said '
        '"my name is Grace Hopper". I remember your name is Grace Hopper.'
    )


def test_ob_chat_events_shows_a_captured_lead(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="/events\nmy email is ada@example.com\n/events\n")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [ICEBREAKER, "(no events yet)", "Saved the contact details; the team will follow up."]
    [event] = json.loads("\n".join(lines[3:]))
    assert event["type"] == "lead.captured.v1"
    assert f"  [event: lead.captured.v1 {event['object_id']}]" in result.stderr.splitlines()


def test_ob_chat_config_prints_the_sessions_profile(cli: Cli) -> None:
    result = cli.run("ob-chat", "--model", "offline", stdin="/config\n")

    assert result.returncode == 0, result.stderr
    config = json.loads("\n".join(result.stdout.splitlines()[1:]))
    assert (config["client_id"], config["profile_name"], config["model"]) == ("public", "default", "offline")
    assert "calculator" in config["tools"]
    assert config["icebreaker"] == ICEBREAKER


def test_ob_chat_config_shows_the_model_that_really_runs(cli: Cli) -> None:
    # the default profile names openai:gpt-4o-mini; without OPENAI_API_KEY the offline model answers
    result = cli.run("ob-chat", stdin="/config\n")

    assert result.returncode == 0, result.stderr
    config = json.loads("\n".join(result.stdout.splitlines()[1:]))
    assert config["model"] == "openai:gpt-4o-mini → offline (no OPENAI_API_KEY)"


def test_ob_chat_reset_starts_a_new_session(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="hello\n/reset\nhello again\n")

    assert result.returncode == 0, result.stderr
    first, second = _sessions(result.stderr)
    assert first != second
    lines = result.stdout.splitlines()
    assert lines[0] == lines[2] == ICEBREAKER
    # the new session does not see the old one's messages
    assert lines[3].startswith('You said: "hello again". I\'m the offline stand-in model')


def test_ob_chat_quit_ends_the_session(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="what is 1+1\n/quit\nwhat is 6*7\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [ICEBREAKER, "1+1 = 2"]


def test_ob_chat_help_lists_the_commands(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="/help\n")

    assert result.stdout.splitlines()[1] == (
        "commands: /reset (new session)  /config (active config)  /events (events so far)  /schedules (scheduled "
        "messages)  /cancel ID  /quit; `dps help` explains scheduling"
    )


def test_a_failed_turn_is_reported_and_the_exit_code_is_1_at_eof(cli: Cli) -> None:
    # given: the conversation ends, then the person keeps talking, then starts afresh
    result = cli.run("ob-chat", stdin="goodbye\nare you still there?\n/reset\nwhat is 6*7\n")

    # then: the failure is one line on stderr, later lines still run, and the exit code remembers it
    assert result.returncode == 1
    assert result.stdout.splitlines() == [ICEBREAKER, "Goodbye, and thanks for chatting!", ICEBREAKER, "6*7 = 42"]
    assert "ob-chat: error: this conversation has ended; start a new one with reset" in result.stderr.splitlines()
    assert "  [conversation ended; /reset starts a new one]" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_an_unknown_command_is_reported(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="/bogus\n")

    assert result.returncode == 1
    assert any(line.startswith("ob-chat: error: unknown command /bogus") for line in result.stderr.splitlines())


def test_ob_chat_with_an_unknown_profile_fails_cleanly(cli: Cli) -> None:
    result = cli.run("ob-chat", "--profile", "nope", stdin="hello\n")

    assert_one_line_error(result, "ob-chat", "profile 'nope' not found for client 'public'")


def test_ob_chat_reports_bad_flags_with_usage(cli: Cli) -> None:
    result = cli.run("ob-chat", "--bogus")

    assert result.returncode == 2
    assert result.stderr.startswith("usage: ob-chat ")
    assert "ob-chat: error: unrecognized arguments: --bogus" in result.stderr


def test_an_ob_chat_session_can_be_continued_with_ob(cli: Cli) -> None:
    # given: a session held in ob-chat, saved to the store when it closes
    chat = cli.run("ob-chat", stdin="my name is Ada Lovelace\n")
    [session_id] = _sessions(chat.stderr)

    # when
    result = cli.run("ob", "--session", session_id, "who am I?")

    # then
    assert result.returncode == 0, result.stderr
    assert "I remember your name is Ada Lovelace." in result.stdout


# --- scheduled messages (docs/scheduling.md) ---------------------------------------------------------------


class Piped:
    """ob-chat with piped stdin and stdout, fed a line at a time and read a reply at a time, as a script drives it
    (PYTHONUNBUFFERED: each reply is written as it is printed, not when the pipe's buffer fills)."""

    def __init__(self, cli: Cli, stderr: Path) -> None:
        self.stderr = stderr
        with stderr.open("w") as errors:
            self.process = subprocess.Popen([str(BIN / "ob-chat")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=errors, text=True, env={**cli.env, "PYTHONUNBUFFERED": "1"})

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def reply(self, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            raise AssertionError(f"no reply within {timeout} s; stderr: {self.stderr.read_text()}")
        return self.process.stdout.readline().rstrip("\n")

    def close(self) -> tuple[int, str, str]:
        """End of input: the exit code, the rest of stdout, and all of stderr."""
        rest, _ = self.process.communicate(timeout=60)
        return self.process.returncode, rest, self.stderr.read_text()


@pytest.fixture
def piped(cli: Cli, tmp_path: Path) -> Iterator[Piped]:
    running = Piped(cli, tmp_path / "ob-chat.stderr")
    try:
        yield running
    finally:
        if running.process.poll() is None:  # the test failed before ob-chat ended
            running.process.kill()
            running.process.communicate()


def test_ob_chat_schedules_a_multi_line_dps_lists_it_and_cancels_it(piped: Piped) -> None:
    # given: the icebreaker
    assert piped.reply() == ICEBREAKER

    # when: a dps command whose prompt is the lines after it, up to an empty line (after the blank line dps help
    # writes between them), then a message of the conversation
    piped.send("dps u every day at 8am\n\nStretch your legs.\nThen drink some water.\n\nwhat is 6*7\n")
    confirmation = piped.reply()

    # then: one line says what was scheduled; the next line was a turn of its own
    found = re.fullmatch(rf"Scheduled a message to you: every day at 08:00 \(UTC\)\. Its id is ({ULID})\.",
                         confirmation)
    assert found, confirmation
    schedule_id = found.group(1)
    assert piped.reply() == "6*7 = 42"

    # when / then: /schedules shows it on one line, /cancel ID cancels it, and it is gone
    piped.send("/schedules\n")
    assert piped.reply() == (f"{schedule_id}  to the user: every day at 08:00 (UTC): Stretch your legs. / Then drink "
                             "some water.")
    piped.send(f"/cancel {schedule_id}\n")
    assert piped.reply() == f"cancelled {schedule_id} (every day at 08:00 (UTC))"
    piped.send("/schedules\n")
    assert piped.reply() == "(no scheduled messages)"
    code, rest, stderr = piped.close()
    assert (code, rest) == (0, ""), stderr
    assert re.search(rf"^  \[event: message.scheduled.v1 {schedule_id}\]$", stderr, re.M), stderr


@pytest.mark.parametrize(("line", "error"), [
    ("/cancel", "usage: /cancel ID (/schedules shows the ids)"),
    ("/cancel nonsense", "no scheduled message 'nonsense' waits"),
    ("/cancel 01KAAAAAAAAAAAAAAAAAAAAAAA", "no scheduled message '01KAAAAAAAAAAAAAAAAAAAAAAA' waits"),
    ("/cancel one two", "usage: /cancel ID"),
    ("dps c whenever you like\nhi", '"whenever you like"'),
    ("dps someone in 1 hour\nhi", '"someone" is not a recipient'),
])
def test_a_cancel_or_dps_that_fails_is_one_line_and_the_exit_code_is_1(cli: Cli, line: str, error: str) -> None:
    # given: a waiting message, so a wrong id is not simply an empty list
    result = cli.run("ob-chat", stdin=f"dps u in 2 hours\nhello\n\n{line}\n\n/schedules\n")

    # then: the error is one line on stderr, the session goes on, and the exit code remembers it
    assert result.returncode == 1
    errors = [text for text in result.stderr.splitlines() if text.startswith("ob-chat: error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"ob-chat: error: {error}"), result.stderr
    assert "Traceback" not in result.stderr
    icebreaker, scheduled, listed = result.stdout.splitlines()
    assert icebreaker == ICEBREAKER
    assert scheduled.startswith("Scheduled a message to you: ")
    assert re.fullmatch(rf"{ULID}  to the user: .* UTC: hello", listed), listed


def test_a_dps_command_at_the_end_of_input_without_its_prompt_is_refused(cli: Cli) -> None:
    result = cli.run("ob-chat", stdin="dps u in 1 hour\n")

    assert result.returncode == 1
    assert result.stdout.splitlines() == [ICEBREAKER]
    assert result.stderr.splitlines()[-1].startswith("ob-chat: error: No prompt: write what to send on the next line")


def test_a_command_ends_a_dps_prompt_and_runs(cli: Cli) -> None:
    # when: a prompt with no empty line after it, then commands (a fresh user's walkthrough), in a zone of its own
    result = cli.run("ob-chat", "--timezone", "Asia/Tokyo",
                     stdin="dps u in 10 minutes\n\nhello again\n/schedules\n/cancel nope\n/quit\nhi\n")

    # then: the prompt is its one line, and each command ran: /schedules lists it, /cancel fails, /quit quits
    assert result.returncode == 1
    icebreaker, scheduled, listed = result.stdout.splitlines()
    assert (icebreaker, scheduled[:28]) == (ICEBREAKER, "Scheduled a message to you: ")
    assert re.fullmatch(rf"{ULID}  to the user: .* Asia/Tokyo: hello again", listed), listed
    assert result.stderr.splitlines()[-1].startswith("ob-chat: error: no scheduled message 'nope' waits")


# --- on a terminal ------------------------------------------------------------------------------------------


class Terminal:
    """ob-chat on a pseudo-terminal: what it prints, and typing into it."""

    def __init__(self, fd: int, pid: int) -> None:
        self.fd, self.pid, self.output, self.position = fd, pid, b"", 0
        self.code: int | None = None

    def expect(self, token: bytes, timeout: float = 60) -> None:
        """Wait until `token` appears after what earlier expectations consumed."""
        deadline = time.monotonic() + timeout
        while (found := self.output.find(token, self.position)) < 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"{token!r} did not appear; got {self.output!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ob-chat exited before {token!r}; got {self.output!r}")
                self.output += chunk
        self.position = found + len(token)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def wait_for_keys(self, timeout: float = 30) -> None:
        """Wait until the prompt reads key by key (the terminal left line mode), as it does once a person
        can press a key at it: a Ctrl-C sent before that is a signal racing the prompt's set-up."""
        import termios

        deadline = time.monotonic() + timeout
        while termios.tcgetattr(self.fd)[3] & termios.ICANON:
            if time.monotonic() > deadline:
                raise AssertionError(f"the prompt never read keys; got {self.output!r}")
            time.sleep(0.02)

    def wait(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):  # the child closed the terminal
                    self.output += os.read(self.fd, 4096)
        raise AssertionError(f"ob-chat did not exit; got {self.output!r}")


@pytest.fixture
def terminal(cli: Cli) -> Iterator[Terminal]:
    """ob-chat on a pseudo-terminal (TERM=dumb: prompt-toolkit draws a plain prompt, no cursor queries)."""
    pty = pytest.importorskip("pty", reason="needs a POSIX pseudo-terminal")

    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes ob-chat, and never returns into pytest
        try:
            os.execve(str(BIN / "ob-chat"), ["ob-chat"], cli.env)
        finally:
            os._exit(127)
    running = Terminal(fd, pid)
    try:
        yield running
    finally:
        if running.code is None:  # the test failed before ob-chat exited
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_ob_chat_on_a_terminal_prompts_and_answers(cli: Cli, terminal: Terminal) -> None:
    # when
    terminal.expect(b"bot> " + ICEBREAKER.encode())
    terminal.expect(b"you> ")
    terminal.type("what is 6*7")
    terminal.expect(b"bot> 6*7 = 42")
    terminal.expect(b"you> ")
    # and: a dps command's prompt lines show a prompt of their own, up to the empty line that ends it
    terminal.type("dps u in 1 hour")
    terminal.expect(b"...> ")
    terminal.type("stretch")
    terminal.expect(b"...> ")
    terminal.type("")
    terminal.expect(b"bot> Scheduled a message to you: ")
    terminal.expect(b"you> ")
    terminal.type("/quit")
    code = terminal.wait()

    # then: notes and replies share the terminal, replies marked as the bot's
    text = terminal.output.decode(errors="replace")
    assert code == 0, text
    assert re.search(rf"\[session {ULID} · profile default · commands: ", text)
    assert "[tools: calculator]" in text
    assert "Traceback" not in text
    # and what was typed is kept in the history file
    history = Path(cli.home, ".openbrain", "chat-history")
    assert "what is 6*7" in history.read_text()


def test_ctrl_c_on_a_terminal_exits_quietly_and_keeps_the_session(cli: Cli, terminal: Terminal) -> None:
    # given
    terminal.expect(b"you> ")
    terminal.type("my name is Ada Lovelace")
    terminal.expect(b"I remember your name is Ada Lovelace.")
    terminal.expect(b"you> ")
    terminal.wait_for_keys()

    # when
    os.write(terminal.fd, b"\x03")
    code = terminal.wait()

    # then
    text = terminal.output.decode(errors="replace")
    assert code == 130, text
    assert "Traceback" not in text
    [session_id] = re.findall(rf"\[session ({ULID}) ", text)
    again = cli.run("ob", "--session", session_id, "who am I?")
    assert "I remember your name is Ada Lovelace." in again.stdout, again.stderr


def test_ob_chat_prints_replies_as_they_arrive_when_stdout_is_a_terminal(cli: Cli,
                                                                         streaming_model: dict[str, str]) -> None:
    # when: messages piped in, the replies shown on a terminal
    reads = on_terminal("ob-chat", "--model", "openai:gpt-test", env=streaming_model, stdin="hello\nand again\n")

    # then: each reply came over several reads, each on its own line after the icebreaker
    assert partial_reads(reads, STREAMED) >= 2, reads
    assert b"".join(reads).decode().splitlines()[-2:] == [STREAMED, STREAMED]


def test_ob_chat_no_stream_prints_each_reply_when_complete(cli: Cli, streaming_model: dict[str, str]) -> None:
    reads = on_terminal("ob-chat", "--no-stream", "--model", "openai:gpt-test", env=streaming_model, stdin="hi\n")

    assert partial_reads(reads, STREAMED) == 0, reads
    assert b"".join(reads).decode().splitlines()[-1] == STREAMED
