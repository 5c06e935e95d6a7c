"""`GET /usage` (server key): a client's usage per day and totals, bad ranges refused with the error envelope; and
the chat handler's CloudWatch metrics (EMF) per turn, with the client as their dimension."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from support.api import Api

from openbrain.core.clock import utcnow


def emf(printed: str) -> list[dict[str, Any]]:
    """The EMF blobs among the JSON lines printed (the logger prints JSON too)."""
    blobs = [json.loads(line) for line in printed.splitlines() if line.startswith("{")]
    return [blob for blob in blobs if "_aws" in blob]


def test_usage_counts_every_keys_turns_of_today_and_totals_them(acme: Api, widget: Api) -> None:
    for api in (acme, widget):
        assert api.post("/chat", {"agentConfig": "bot", "message": "what is 2 + 2?"}).status == 200
    acme.put("/limits", {"turns_per_day": 1})  # the widget's turns are limited: its 2nd is refused
    assert widget.post("/chat", {"agentConfig": "bot", "message": "more"}).status == 429

    response = acme.get("/usage")

    assert response.status == 200
    body = response.json
    today = utcnow().date()
    assert (body["client_id"], body["from"], body["to"]) == ("acme", str(today - timedelta(days=29)), str(today))
    [day] = body["days"]
    assert day["day"] == str(today)
    assert (day["turns"], day["errors"], day["rate_limited"]) == (2, 0, 1)
    assert day["input_tokens"] > 0 and day["output_tokens"] > 0 and day["mean_latency_ms"] >= 0
    assert body["totals"] == {name: value for name, value in day.items() if name != "day"}


def test_usage_of_a_range_without_turns_is_empty_and_totals_zero(acme: Api) -> None:
    body = acme.get("/usage", query={"from": "2025-01-01", "to": "2025-01-31"}).json
    assert body["days"] == [] and body["totals"]["turns"] == 0 and body["totals"]["mean_latency_ms"] is None


@pytest.mark.parametrize("query", [
    {"from": "2026-13-01"}, {"to": "yesterday"},
    {"to": "0"}, {"from": "1700000000"}, {"to": "2026-1-5"},  # a Unix time or a short day is no YYYY-MM-DD (fuzz)
    {"from": "2026-02-01", "to": "2026-01-01"},  # ends before it starts
    {"from": "2024-01-01", "to": "2025-01-01"},  # 367 days
])
def test_usage_refuses_a_bad_date_or_range_with_422(acme: Api, query: dict[str, str]) -> None:
    response = acme.get("/usage", query=query)
    assert response.status == 422
    assert response.error["code"] == "invalid_input"


def test_a_widget_key_may_not_read_usage(widget: Api) -> None:
    assert widget.get("/usage").status == 403


def test_the_chat_handler_prints_each_turns_metrics_with_the_client_as_dimension(
        acme: Api, widget: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "OpenBrain")
    acme.put("/limits", {"turns_per_day": 1})
    capsys.readouterr()

    assert widget.post("/chat", {"agentConfig": "bot", "message": "what is 2 + 2?"}).status == 200
    assert widget.post("/chat", {"agentConfig": "bot", "message": "again"}).status == 429

    turn, refused = emf(capsys.readouterr().out)
    [directive] = turn["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "OpenBrain" and directive["Dimensions"] == [["client_id"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "Turns": "Count", "InputTokens": "Count", "OutputTokens": "Count", "TurnErrors": "Count",
        "RateLimited": "Count", "TurnLatency": "Milliseconds"}
    assert turn["client_id"] == "acme"  # a value is a list of values (EMF), one here: one blob per turn
    assert (turn["Turns"], turn["TurnErrors"], turn["RateLimited"]) == ([1], [0], [0])
    assert turn["InputTokens"][0] > 0 and turn["OutputTokens"][0] > 0 and turn["TurnLatency"][0] >= 0
    assert (refused["client_id"], refused["Turns"], refused["RateLimited"]) == ("acme", [0], [1])
    assert "TurnLatency" not in refused


def test_without_a_metrics_namespace_nothing_is_printed(acme: Api, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE", raising=False)
    assert acme.post("/chat", {"agentConfig": "bot", "message": "hi"}).status == 200
    assert emf(capsys.readouterr().out) == []
