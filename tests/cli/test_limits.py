"""Rate limits as an operator sets them (`ob-admin client limits`), held exactly across two `ob-serve` workers, and
the usage `ob-admin usage` reports of them."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.cli import Cli, assert_one_line_error, serving

from openbrain.domain.limits import RateLimits

pytestmark = pytest.mark.e2e


def test_client_limits_sets_what_is_given_refuses_a_negative_one_and_client_show_shows_them(cli: Cli) -> None:
    assert cli.run("ob-admin", "client", "create", "Acme", "--client-id", "acme").returncode == 0

    set_ = cli.run("ob-admin", "client", "limits", "acme", "--user-per-minute", "30", "--tokens-per-month", "0",
                   "--json")
    again = cli.run("ob-admin", "client", "limits", "acme", "--user-burst", "7", "--json")
    shown = cli.run("ob-admin", "client", "show", "acme")

    assert set_.returncode == 0, set_.stderr
    expected = {**RateLimits().model_dump(), "user_per_minute": 30, "tokens_per_month": 0, "user_burst": 7}
    assert json.loads(again.stdout) == {"client_id": "acme", "limits": expected}
    assert re.search(r"^  user_per_minute +30$", shown.stdout, re.M), shown.stdout
    assert re.search(r"^  turns_per_day +2,000$", shown.stdout, re.M), shown.stdout
    reset = json.loads(cli.run("ob-admin", "client", "limits", "acme", "--reset", "--json").stdout)
    assert reset["limits"] == RateLimits().model_dump()
    negative = cli.run("ob-admin", "client", "limits", "acme", "--turns-per-day", "-1")
    assert_one_line_error(negative, "ob-admin", "turns_per_day: Input should be greater than or equal to 0")


def test_the_scheduling_limits_are_set_shown_aligned_and_hold_for_every_key(cli: Cli) -> None:
    # given
    assert cli.run("ob-admin", "client", "create", "Acme", "--client-id", "acme").returncode == 0

    # when
    set_ = cli.run("ob-admin", "client", "limits", "acme", "--schedules-per-session", "1",
                   "--schedule-min-interval-minutes", "60")

    # then: every limit on a line of its own, the values in one column
    assert set_.returncode == 0, set_.stderr
    rows = [line for line in set_.stdout.splitlines() if line.startswith("  ")]
    assert len(rows) == len(RateLimits.model_fields)
    assert len({len(row) - len(row.split()[-1]) for row in rows}) == 1, set_.stdout
    assert re.search(r"^  schedule_min_interval_minutes +60$", set_.stdout, re.M), set_.stdout
    # and the CLIs, which run with the operator's credentials, are held to them too
    too_often = cli.run("ob", "--client-id", "acme", "dps u every 30 minutes\nstretch")
    assert_one_line_error(too_often, "ob", '"every 30 minutes" is too often: at most every 1 hour')
    first = json.loads(cli.run("ob", "--client-id", "acme", "--json", "dps u every 2 hours\nstretch").stdout)
    second = cli.run("ob", "--client-id", "acme", "--session", first["session_id"], "dps u in 1 hour\nwater")
    assert_one_line_error(second, "ob", "this conversation has 1 scheduled messages, the most it may have")


def _chat(url: str, key: str) -> tuple[int, str | None]:
    request = urllib.request.Request(url + "/chat", data=b'{"message": "what is 6 * 7?"}', method="POST",
                                     headers={"Content-Type": "application/json", "x-api-key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        assert json.loads(exc.read())["error"]["code"] == "rate_limited"
        return exc.code, exc.headers.get("Retry-After")


def test_n_concurrent_turns_across_two_ob_serve_workers_admit_exactly_the_limit(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving("ob-serve", "--port", "0", "--workers", "2", env=cli.env, log=log) as url:
        widget_key = re.search(r"widget key: (\S+)", log.read_text())[1]  # type: ignore[index]
        limited = cli.run("ob-admin", "client", "limits", "local", "--turns-per-day", "3")
        assert limited.returncode == 0, limited.stderr

        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: _chat(url, widget_key), range(10)))

    assert sorted(status for status, _ in results) == [200] * 3 + [429] * 7
    assert all(int(retry) > 0 for status, retry in results if status == 429)
    usage = cli.run("ob-admin", "usage", "local", "--json")
    assert usage.returncode == 0, usage.stderr
    totals = json.loads(usage.stdout)["totals"]
    assert (totals["turns"], totals["rate_limited"], totals["errors"]) == (3, 7, 0)
    assert totals["input_tokens"] > 0 and totals["output_tokens"] > 0


def test_usage_shows_a_table_of_any_client_id_and_refuses_a_bad_day(cli: Cli) -> None:
    created = cli.run("ob-admin", "client", "create", "Acme", "--json")
    assert created.returncode == 0, created.stderr

    shown = cli.run("ob-admin", "usage", "acme", "--from", "2026-01-01", "--to", "2026-01-31")
    bad_day = cli.run("ob-admin", "usage", "acme", "--from", "2026-02-30")
    unknown = cli.run("ob-admin", "usage", "nobody")
    public = cli.run("ob-admin", "usage", "public")
    too_long = cli.run("ob-admin", "usage", "acme", "--from", "2024-01-01", "--to", "2025-12-31")

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "usage of acme, 2026-01-01 to 2026-01-31 (UTC days; every key's turns)"
    assert shown.stdout.splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0", "-"]
    assert bad_day.returncode == 2 and "must be a day as YYYY-MM-DD" in bad_day.stderr
    # an id without a record is read as any other (the CLIs' `public` has none); but for `public`, a note says so
    for recordless in (unknown, public):
        assert recordless.returncode == 0, recordless.stderr
        assert recordless.stdout.splitlines()[-1].split() == ["total", "0", "0", "0", "0", "0", "-"]
    assert public.stderr == ""
    assert unknown.stderr.startswith("(there is no client 'nobody' (`"), unknown.stderr
    assert "ob-admin client list` lists them)" in unknown.stderr
    assert_one_line_error(too_long, "ob-admin", "the range spans 731 days; at most 366")
