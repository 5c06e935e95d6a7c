"""The `dps` command (dynaprompt's): `dps RECIPIENT TIME PROMPT`, then the prompt (docs/scheduling.md).

Pure and light (no parser libraries: it is read on every chat message): `parse_dps` splits a message into its
recipient, time prompt and prompt; `openbrain.domain.time_prompts` reads the time prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from openbrain.core.errors import InvalidInputError

RECIPIENTS = {"user": "user", "u": "user", "chatbot": "chatbot", "c": "chatbot"}

DPS_HELP = """\
dps schedules a message. Write

    dps RECIPIENT TIME PROMPT

    PROMPT

RECIPIENT is `user` (or `u`): the prompt is sent to you as a message, or `chatbot` (or `c`): the prompt is given
to the chatbot as if you had said it, and its reply is sent to you.
TIME PROMPT says when, in your time zone: one-time ("in 20 minutes", "tomorrow evening", "next Friday 9:30",
"15th March at 2pm", "on 2027-01-05 at 10:00") or recurring ("every day at 8am", "every weekday at 9",
"every Monday and Thursday at 18:00", "every 2 hours", "on the 1st of every month at noon").
Morning is 09:00, afternoon 15:00, evening 19:00, night 21:00. Say am or pm for 1 to 7 ("at 5pm").
PROMPT is the rest of the message, on the following lines; it may span several lines.

Examples:

    dps c in 20 minutes

    ask me how the essay is going

    dps user every day at 8am
    teach me about an unusual species of monkey
"""

class ScheduleError(InvalidInputError):
    """A dps command or a time prompt that cannot be scheduled; the message says which part and what to write."""


@dataclass(frozen=True)
class DpsCommand:
    recipient: str | None  # "user" | "chatbot"; None for `dps` alone / `dps help`
    time_prompt: str
    prompt: str  # may span lines; "" for help


def parse_dps(message: str) -> DpsCommand | None:
    """None: not a dps command (the message does not start with the word `dps`, case-insensitive, after leading
    blanks). `dps` / `dps help` -> DpsCommand(None, "", ""). Otherwise the first line is `dps RECIPIENT TIME PROMPT`
    and the rest (after one blank line, or just the following lines) the prompt. A malformed one raises
    ScheduleError naming the part not understood (unknown recipient, no time prompt, no prompt)."""
    text = message.replace("\r\n", "\n").replace("\r", "\n").lstrip()
    first_line, _, rest = text.partition("\n")
    words = first_line.split(maxsplit=2)
    if not words or words[0].lower() != "dps":
        return None
    if len(words) == 1 or (len(words) == 2 and words[1].lower() == "help"):
        return DpsCommand(None, "", "")
    recipient = RECIPIENTS.get(words[1].lower())
    if recipient is None:
        raise ScheduleError(f'"{words[1]}" is not a recipient: use user (u) or chatbot (c). Send "dps help" for more.')
    time_prompt = words[2].strip() if len(words) == 3 else ""
    if not time_prompt:
        raise ScheduleError(
            f'No time prompt: write when after the recipient, e.g. "dps {words[1]} tomorrow at 9am", '
            "and the prompt on the next lines."
        )
    prompt = rest.strip("\n").rstrip()
    if not prompt.strip():
        typed = "\\n" in first_line  # `ob "dps u in 20 minutes\nStretch"`: bash's double quotes keep \ and n
        raise ScheduleError(
            f'No prompt: write what to send on the next line, below "dps {words[1]} {time_prompt}"'
            + (f" (a typed \\n is not a new line: in bash, write $'{first_line.strip()}')." if typed else ".")
        )
    return DpsCommand(recipient, time_prompt, prompt)


__all__ = ["DPS_HELP", "RECIPIENTS", "DpsCommand", "ScheduleError", "parse_dps"]
