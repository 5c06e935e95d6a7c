"""`python -m bench --quick` runs end to end and prints every table with sane numbers, so the benchmarks
(bench/, docs/benchmarks.md) cannot rot. The in-process per-turn section (about 75 s even when quick) and the
cold start (about 35 s: fresh processes) are `slow`: `pytest -m slow tests/test_bench.py` runs them (and
tests/api/test_chat_api_import.py checks the handler's lazy imports in the default run); the default run checks
the ob-serve and streaming sections."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def tables(output: str) -> dict[str, list[dict[str, str]]]:
    """Markdown tables by title: one dict per row, keyed by the header's cells."""
    found: dict[str, list[dict[str, str]]] = {}
    for block in output.split("### ")[1:]:
        title, _, rest = block.partition("\n")
        lines = [line for line in rest.splitlines() if line.startswith("|")]
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        found[title] = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
                        for line in lines[2:]]
    return found


def find(found: dict[str, list[dict[str, str]]], prefix: str) -> list[dict[str, str]]:
    [rows] = [rows for title, rows in found.items() if title.startswith(prefix)]
    return rows


def numbers(cell: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", cell)]


def bench(home: Path, *sections: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OB_", "OPENAI_", "AWS_"))}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", *sections], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def turns_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return bench(tmp_path_factory.mktemp("home"), "turns", "cold")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    return bench(tmp_path_factory.mktemp("home"), "serve", "stream")


@pytest.mark.slow
def test_the_per_turn_table_times_every_contender_and_ours_is_the_ratio_base(turns_run: str) -> None:
    rows = find(tables(turns_run), "Per-turn overhead")
    names = [row["contender"] for row in rows]
    assert names == ["OpenBrain (ours)", "LangGraph + DynamoDBSaver", "LangGraph + DynamoDBSaver (durability=exit)",
                     "RunnableWithMessageHistory + DynamoDBChatMessageHistory", "original OpenBra.in (pickled memory)"]
    for row in rows:
        for column, cell in row.items():
            if column.startswith("turn "):
                median, p95 = numbers(cell)
                assert 0.1 < median <= p95 < 5_000, (row["contender"], column, cell)
    assert rows[0][next(c for c in rows[0] if c.startswith("×"))] == "1.0× / 1.0× / 1.0×"


@pytest.mark.slow
def test_ours_makes_two_dynamodb_calls_a_turn_and_no_s3_call(turns_run: str) -> None:
    rows = find(tables(turns_run), "Per-turn: time inside moto")
    [ours] = [row for row in rows if row["contender"] == "OpenBrain (ours)"]
    assert ours["DynamoDB calls per turn"] == "2 / 2 / 2"
    assert ours["S3 calls per turn"] == "0 / 0 / 0"
    assert all(n > 0 for n in numbers(ours[next(c for c in ours if c.startswith("moto ms"))]))


@pytest.mark.slow
def test_the_growth_table_shows_ours_never_failing_and_the_single_item_peers_failing(turns_run: str) -> None:
    rows = {row["contender"]: row for row in find(tables(turns_run), "Session growth")}
    ours = rows["OpenBrain (ours)"]
    assert ours["fails at turn (200-char)"].startswith("never")
    assert ours["fails at turn (4 KB)"].startswith("never")
    for peer in ("RunnableWithMessageHistory + DynamoDBChatMessageHistory", "original OpenBra.in (pickled memory)"):
        first = numbers(rows[peer]["fails at turn (4 KB)"])[0]
        assert 20 < first < 200, rows[peer]
        assert 100 < numbers(rows[peer]["fails at turn (200-char)"])[0] < 2_000, rows[peer]
    assert "reply returned but not stored" in rows["RunnableWithMessageHistory + DynamoDBChatMessageHistory"][
        "fails at turn (4 KB)"]


@pytest.mark.slow
def test_moto_is_checked_against_the_documented_item_size_rules(turns_run: str) -> None:
    rows = {row["item"]: row for row in find(tables(turns_run), "moto's item-size accounting")}
    assert rows["number 1234500 named 'n'"]["documented rules"] == "5"
    refused = [row for item, row in rows.items() if "refused at turn" in item]
    assert refused and all(numbers(row["documented rules"])[0] > 409_600 for row in refused)
    assert turns_run.count("(equal)") == 2  # the fast-forwarded peers match their real turns


@pytest.mark.slow
def test_cold_start_serves_the_first_chat_without_importing_langchain_at_import(turns_run: str) -> None:
    rows = find(tables(turns_run), "Cold start")
    handler = [row for row in rows if row["what"].startswith("chat handler")]
    assert len(handler) == 2 and all("HTTP 200" in row["check"] for row in handler)
    assert all("langchain.agents at import: no" in row["check"] for row in handler)
    for row in rows:
        assert 10 < numbers(row["import"])[0] < 60_000, row


def test_ob_serve_answers_every_turn_under_load(quick_run: str) -> None:
    rows = find(tables(quick_run), "ob-serve throughput")
    assert [(row["server"], row["concurrent clients"]) for row in rows] == [
        ("--workers 2 + the store process", "1"), ("--workers 2 + the store process", "10"),
        (rows[2]["server"], "10")]
    assert numbers(rows[2]["server"].split("hangs")[1])[0] >= 1, rows[2]  # deliveries reached the hung webhook
    for row in rows:
        assert numbers(row["chat turns/s"])[0] > 0 and numbers(row["turns"])[0] > 0
        assert row["errors"] == "0"
        assert numbers(row["p50 ms"])[0] <= numbers(row["p99 ms"])[0]
    assert re.search(r"^Total: \d+ s; load average", quick_run, re.MULTILINE)


def test_streaming_adds_little_before_the_first_token_and_posts_within_the_aws_target(quick_run: str) -> None:
    found = tables(quick_run)
    added = find(found, "Time to the first token added by us")
    assert [(row["turn"], row["path"]) for row in added] == [
        (turn, f"{path}, {kind} key") for turn in ("1", "21")
        for path in ("WebSocket (handler)", "SSE (authorize, chat_stream)") for kind in ("widget", "server")]
    for row in added + find(found, "Time to the first token on ob-serve"):
        assert 0 < numbers(row["first token p50 ms"])[0] <= numbers(row["p90 ms"])[0] < 5_000, row
    [posts] = find(found, "post_to_connection calls per reply")
    assert posts["within"] == "yes" and numbers(posts["token posts"])[0] >= 5, posts
    assert numbers(posts["control posts"])[0] == 3


def test_the_widget_size_is_reported_against_its_budget(tmp_path: Path) -> None:
    import gzip

    from openbrain.web import widget

    [row] = find(tables(bench(tmp_path, "widget")), "Widget size")
    assert numbers(row["bytes"]) == [len(widget().body)]
    assert numbers(row["gzip -9"]) == [len(gzip.compress(widget().body, compresslevel=9))]
    assert numbers(row["budget (gzipped)"])[0] == 15 * 1024
