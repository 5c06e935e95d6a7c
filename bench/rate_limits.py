"""Result 6: what the rate-limit check costs a turn: a widget-key turn (counted against the client's rate limits
and quotas: services/limits.py) beside a server-key turn (not counted), on the same path.

In process, on moto, with the offline model: each turn is `chat_as_client` (what `POST /chat` runs after the key's
check) continuing a session of its kind, the kinds taking turns, `runs` runs of `turns` turns each. Every turn,
whatever its key, also adds to the client's usage; that rides the turn's commit (services/usage.py), as does
settling a widget-key turn's admission, so the difference between the rows is the admission: one
TransactWriteItems. Beside them, `admit` alone (the check itself). Times are medians over every turn; the
per-run medians' range shows how steady they were. Part of `python -m bench`; alone:

    python -m bench.rate_limits [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from bench import report

USER = "203.0.113.9"
NOTE = ("What a widget-key turn adds is its admission (one TransactWriteItems): settling it, like every turn's usage, "
        "rides the commit's TransactWriteItems.")


def measure(runs: int, turns: int) -> str:
    """The table (module docstring)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' backend helper
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from support.backend import installed_backend

    from bench.meter import METER, metering
    from openbrain.conversation.chat import ChatMessage
    from openbrain.core.settings import Settings
    from openbrain.services.chat import ChatCall, chat_as_client
    from openbrain.services.clients import set_limits
    from openbrain.services.limits import admit
    from openbrain.storage.orm import AgentConfig, Client
    from openbrain.storage.orm.client import SERVER, WIDGET

    load = os.getloadavg()[0]
    kinds = {"widget key (rate limited)": WIDGET, "server key (not limited)": SERVER, "`admit` alone": None}
    seconds: dict[str, list[list[float]]] = {label: [] for label in kinds}
    moto: dict[str, list[float]] = {label: [] for label in kinds}
    calls: dict[str, Counter[str]] = {label: Counter() for label in kinds}
    with installed_backend(Settings(backend="memory", memory_store=None)) as backend, metering():
        Client("acme", display_name="Acme").save()
        AgentConfig("acme", "default", model="offline", tools=["calculator"]).save()
        # limits that never refuse here: a refused turn would be cheaper, not the cost of the check
        set_limits(backend.stores, "acme", {"user_per_minute": 10**6, "user_burst": 10**6,
                                            "client_per_minute": 10**6, "session_concurrency": 10**6,
                                            "turns_per_day": 10**6, "turns_per_month": 10**7})
        client = backend.stores.clients.get("acme")
        sessions = {label: chat_as_client(client, ChatMessage(reset=True), ChatCall(key_kind=SERVER), backend)[0]
                    .session_id for label in kinds}

        def one(label: str, n: int) -> tuple[float, float, str]:
            """A timed turn (or admission): its seconds, moto's share, the DynamoDB calls it made."""
            kind = kinds[label]
            METER.reset()
            began = time.perf_counter()
            if kind is None:
                admit(client, USER, sessions[label], backend.stores.counters)
            else:
                chat_as_client(client, ChatMessage(session_id=sessions[label], message=_message(n)),
                               ChatCall(key_kind=kind, end_user=USER), backend)
            elapsed = time.perf_counter() - began
            made = " + ".join(name.split(":", 1)[1] for name, count in sorted(METER.calls.items())
                              for _ in range(count))
            return elapsed, METER.moto_seconds, made

        for label in kinds:  # warm the path: not counted
            one(label, 0)
        for _ in range(runs):
            for label in kinds:
                seconds[label].append([])
            for n in range(1, turns + 1):
                for label in kinds:
                    elapsed, inside, made = one(label, n)
                    seconds[label][-1].append(elapsed)
                    moto[label].append(inside)
                    calls[label][made] += 1
    rows = []
    for label in kinds:
        every = [s for run in seconds[label] for s in run]
        ours = [s - m for s, m in zip(every, moto[label], strict=True)]
        per_run = [report.median(run) for run in seconds[label]]
        [(made, _)] = calls[label].most_common(1)
        rows.append([label, report.ms(report.median(every)), report.ms(report.median(ours)),
                     report.ms(report.median(moto[label])),
                     f"{report.ms(min(per_run))}–{report.ms(max(per_run))}", made.count("+") + 1 if made else 0,
                     made, len(every)])
    return report.table(
        f"Rate-limit check per turn: widget key vs server key, in process on moto (offline model), "
        f"{runs} runs x {turns} turns, load average {load:.2f}",
        ["turn", "p50 ms", "ours p50 ms (moto out)", "moto p50 ms", "run medians ms", "DynamoDB calls per turn",
         "calls", "turns"], rows,
        [NOTE])


def _message(n: int) -> str:
    return "what is 12 * 7" if n % 2 else "tell me more"


def run(*, quick: bool = False) -> None:
    measure(*((2, 5) if quick else (5, 20)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 runs of 5 turns")
    run(quick=parser.parse_args(argv).quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
