"""`ob-chat`: a terminal chat session with an OpenBrain agent.

On a TTY it shows a prompt with history (prompt-toolkit, when installed); with piped stdin it reads one
message per line, prints each reply on stdout and tool calls, events and errors on stderr, and exits
non-zero if any turn failed. When stdout is a terminal, replies print as they arrive (`--no-stream`: when
complete); piped, each is one line. Commands: /reset, /config, /events, /schedules, /cancel ID, /help, /quit.

A `dps` command (docs/scheduling.md) takes the lines after it as its prompt (on a terminal they show `...> `): empty
lines right after the `dps` line come before the prompt (as `dps help` writes it), then the prompt runs to an empty
line, a /command (which then runs) or the end of input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openbrain.cli.common import (
    EXIT_ERROR,
    add_no_stream,
    add_timezone,
    add_version,
    dumps,
    fail,
    parse_client_id,
    print_streaming,
    run,
    session_context,
    streams,
)
from openbrain.core.errors import OpenBrainError
from openbrain.domain.profile import DEFAULT_CLIENT_ID, DEFAULT_PROFILE

HELP = ("commands: /reset (new session)  /config (active config)  /events (events so far)  /schedules (scheduled "
        "messages)  /cancel ID  /quit; `dps help` explains scheduling")
HISTORY_FILE = Path("~/.openbrain/chat-history").expanduser()
PROMPT, MORE = "you> ", "...> "  # a message's first line; the lines of a dps command's prompt

Read = Callable[[str], str | None]  # the next line, shown `prompt` on a terminal; None at the end of input


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ob-chat", description="Chat with an OpenBrain agent in the terminal. " + HELP)
    add_version(p)
    p.add_argument("--client-id", type=parse_client_id, default=DEFAULT_CLIENT_ID,
                   help=f"client (tenant) id [{DEFAULT_CLIENT_ID}]")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"AgentConfig profile name [{DEFAULT_PROFILE}]")
    p.add_argument("--model", help="model spec for the session, e.g. offline or openai:gpt-4o-mini")
    add_timezone(p)
    add_no_stream(p)
    return p


def _tty_reader() -> Read:
    try:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory
    except ImportError:  # the `cli` extra is not installed: plain input()
        ask: Callable[[str], str] = input
    else:
        HISTORY_FILE.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        ask = PromptSession(history=FileHistory(str(HISTORY_FILE))).prompt

    def read(prompt: str) -> str | None:
        try:
            return ask(prompt)
        except EOFError:
            return None

    return read


def _piped_reader() -> Read:
    lines = (line.rstrip("\n") for line in sys.stdin)
    return lambda prompt: next(lines, None)


class ChatLoop:
    def __init__(self, args: argparse.Namespace, interactive: bool, context: dict[str, str]) -> None:
        from openbrain.aws.backend import get_backend

        self.args = args
        self.context = context  # each new session's (`session_context`)
        self.interactive = interactive
        self.streaming = streams(args)
        self.backend = get_backend()
        self.session_id = ""
        self.events: list[dict[str, Any]] = []
        self.failed = False
        self.show: Callable[[str], None] = print
        self.note: Callable[[str], None] = print if interactive else (lambda text: print(text, file=sys.stderr))

    def reset(self) -> None:
        from openbrain.conversation.chat import ChatMessage, chat

        request = ChatMessage.parse(
            {
                "client_id": self.args.client_id,
                "agent_config": self.args.profile,
                "reset": True,
                "agent_config_overrides": {"model": self.args.model} if self.args.model else {},
                "context": self.context,
            }
        )
        response = chat(request, self.backend)
        self.session_id, self.events = response.session_id, []
        self.note(f"[session {response.session_id} · profile {response.profile_name} · {HELP}]")
        if response.message:
            self.show(self._bot(response.message))

    def _bot(self, text: str) -> str:
        return f"bot> {text}" if self.interactive else text

    def command(self, line: str) -> bool:
        """Handle a /command; False means quit."""

        name = line.split()[0].lower()
        if name in {"/quit", "/exit", "/q"}:
            return False
        if name == "/reset":
            self.reset()
        elif name == "/config":
            self.show(dumps(self._config()))
        elif name == "/events":
            self.show(dumps(self.events) if self.events else "(no events yet)")
        elif name == "/schedules":
            self.show(self._schedules())
        elif name == "/cancel":
            self.show(self._cancel(line.split()[1:]))
        elif name == "/help":
            self.show(HELP)
        else:
            raise OpenBrainError(f"unknown command {name}; {HELP}")
        return True

    def _config(self) -> dict[str, Any]:
        """The session's config, its model as it really runs (`openai:gpt-4o-mini → offline (no OPENAI_API_KEY)`)."""
        from openbrain.conversation.agents.models import effective_model_label
        from openbrain.storage.orm.agent_config import AgentConfig

        snapshot = dict(self.backend.stores.sessions.get(self.args.client_id, self.session_id).config_snapshot)
        snapshot["model"] = effective_model_label(AgentConfig.from_snapshot(snapshot), self.backend.settings)
        return snapshot

    def _schedules(self) -> str:
        from openbrain.services.sessions import session_schedules

        waiting = session_schedules(self.backend.stores, self.args.client_id, self.session_id).schedules
        return "\n".join(f"{s.schedule_id}  to the {s.recipient}: {s.description}: {' / '.join(s.prompt.splitlines())}"
                         for s in waiting) or "(no scheduled messages)"  # one line each, as every reply piped

    def _cancel(self, words: list[str]) -> str:
        from openbrain.core.ids import existing_id
        from openbrain.services.sessions import cancel_schedule

        if len(words) != 1:
            raise OpenBrainError("usage: /cancel ID (/schedules shows the ids)")
        cancelled = cancel_schedule(self.backend, self.args.client_id, self.session_id,
                                    existing_id(words[0], "scheduled message"))
        return f"cancelled {cancelled.schedule_id} ({cancelled.description})"

    def say(self, line: str) -> None:
        from openbrain.conversation.chat import ChatMessage, chat, chat_events

        request = ChatMessage.parse({"client_id": self.args.client_id, "session_id": self.session_id, "message": line})
        if self.streaming:
            response = print_streaming(chat_events(request, self.backend), self._bot(""))
        else:
            response = chat(request, self.backend)
            self.show(self._bot(response.message))
        if response.tool_calls:
            self.note(f"  [tools: {', '.join(response.tool_calls)}]")
        for event in response.events:
            self.note(f"  [event: {event['type']} {event['object_id']}]")
        self.events.extend(response.events)
        if response.ended:
            self.note("  [conversation ended; /reset starts a new one]")

    def run(self, read: Read) -> int:
        self.reset()
        pending: str | None = None  # a /command that ended a dps prompt, to run next
        while (raw := pending if pending is not None else read(PROMPT)) is not None:
            pending, line = None, raw.strip()
            if not line:
                continue
            try:
                if line.startswith("/"):
                    if not self.command(line):
                        break
                else:
                    message, pending = _with_prompt(line, read)
                    self.say(message)
            except OpenBrainError as exc:
                self.failed = True
                fail("ob-chat", exc.message)
        self.backend.close()
        return EXIT_ERROR if self.failed and not self.interactive else 0


def _with_prompt(line: str, read: Read) -> tuple[str, str | None]:
    """`line`, and if it is the first line of a dps command, its prompt: the lines after it up to an empty one,
    a /command or the end of input; and the /command that ended it, if one did. Empty lines right after the dps
    line are skipped: `dps help` writes a blank line between the two."""
    words = line.split()
    if len(words) < 3 or words[0].lower() != "dps":
        return line, None
    prompt: list[str] = []
    while (more := read(MORE)) is not None:
        if more.strip().startswith("/"):
            return "\n".join([line, *prompt]), more
        if more.strip():
            prompt.append(more.rstrip())
        elif prompt:
            break
    return "\n".join([line, *prompt]), None


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    context = session_context(args.timezone)
    interactive = sys.stdin.isatty()

    def session() -> int:
        return ChatLoop(args, interactive, context).run(_tty_reader() if interactive else _piped_reader())

    return run("ob-chat", session)


if __name__ == "__main__":
    sys.exit(main())
