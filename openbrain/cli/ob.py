"""`ob MESSAGE`: one chat turn with a stored profile; prints the reply (or JSON with --json), on a terminal as
it arrives (`--no-stream`: when it is complete)."""

from __future__ import annotations

import argparse
import sys

from openbrain.cli.common import (
    add_no_stream,
    add_timezone,
    add_version,
    command,
    dumps,
    parse_client_id,
    print_streaming,
    run,
    session_context,
    streams,
)
from openbrain.domain.profile import DEFAULT_CLIENT_ID, DEFAULT_PROFILE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ob",
        description="Send one message to an OpenBrain agent and print its reply. Without --session a new "
        "session starts from the profile; its id is printed on stderr so you can continue it.",
    )
    add_version(p)
    p.add_argument("message", help="what to say to the agent")
    p.add_argument("--client-id", type=parse_client_id, default=DEFAULT_CLIENT_ID,
                   help=f"client (tenant) id [{DEFAULT_CLIENT_ID}]")
    p.add_argument("--profile", default=DEFAULT_PROFILE, help=f"AgentConfig profile name [{DEFAULT_PROFILE}]")
    p.add_argument("--session", help="continue this session instead of starting a new one")
    p.add_argument("--model", help="model spec for a new session, e.g. offline or openai:gpt-4o-mini")
    p.add_argument("--json", action="store_true", help="print reply, session_id and events as JSON")
    add_timezone(p)
    add_no_stream(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    context = session_context(args.timezone)

    def turn() -> int:
        from openbrain.aws.backend import get_backend
        from openbrain.conversation.chat import ChatMessage, chat, chat_events
        from openbrain.core.errors import InvalidInputError

        if args.session and args.model:
            raise InvalidInputError("--model applies to new sessions; a session keeps the model it started with")
        if args.session and args.timezone:
            raise InvalidInputError("--timezone applies to new sessions; a session keeps the zone it started with")
        request = ChatMessage.parse(
            {
                "client_id": args.client_id,
                "agent_config": args.profile,
                "session_id": args.session,
                "message": args.message,
                "agent_config_overrides": {"model": args.model} if args.model else {},
                "context": {} if args.session else context,
            }
        )
        backend = get_backend()
        streaming = streams(args) and not args.json
        try:
            response = print_streaming(chat_events(request, backend)) if streaming else chat(request, backend)
        finally:
            backend.close()
        if args.json:
            print(dumps(response.model_dump()))
            return 0
        if not streaming:
            print(response.message)
        if not args.session:
            print(f"(session {response.session_id}; continue with: {command('ob')} --session "
                  f"{response.session_id} MESSAGE)", file=sys.stderr)
        return 0

    return run("ob", turn)


if __name__ == "__main__":
    sys.exit(main())
