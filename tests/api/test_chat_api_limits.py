"""Rate limits over the API: a widget key over a limit gets 429 with Retry-After; `GET/PUT /limits` (server key)."""

from __future__ import annotations

import pytest
from support.api import ACME_ORIGIN, Api

from openbrain.domain.limits import RateLimits
from openbrain.storage.orm import Client


def test_get_limits_shows_the_defaults_of_a_new_client(acme: Api) -> None:
    response = acme.get("/limits")
    assert response.status == 200
    assert response.json == RateLimits().model_dump()


def test_put_limits_replaces_every_limit_and_a_limit_left_out_goes_back_to_its_default(acme: Api) -> None:
    assert acme.put("/limits", {"turns_per_day": 5, "user_burst": 2}).json["turns_per_day"] == 5
    replaced = acme.put("/limits", {"user_burst": 3})
    assert replaced.status == 200
    assert acme.get("/limits").json == {**RateLimits().model_dump(), "user_burst": 3}
    assert Client.get("acme").limits.as_dict() == {"user_burst": 3}  # only what differs is stored


@pytest.mark.parametrize("body", [{"turns_per_day": -1}, {"turns_per_day": "many"}, {"per_hour": 3},
                                  {"tokens_per_month": False}, {"turns_per_day": "5"}, {"user_burst": 5.5}])
def test_put_limits_refuses_what_is_not_a_limit(acme: Api, body: dict[str, object]) -> None:
    response = acme.put("/limits", body)
    assert response.status == 422 and response.error["code"] == "invalid_input"


def test_put_limits_takes_a_whole_number_written_with_a_fraction_as_json_schema_does(acme: Api) -> None:
    assert acme.put("/limits", {"turns_per_month": 3487.0}).json["turns_per_month"] == 3487


def test_a_widget_key_may_not_read_or_set_limits(widget: Api) -> None:
    assert widget.get("/limits").status == 403
    assert widget.put("/limits", {"turns_per_day": 10**6}).status == 403


def test_a_widget_key_over_a_limit_gets_429_with_retry_after_and_cors_exposes_it(acme: Api, widget: Api) -> None:
    acme.put("/limits", {"user_burst": 1})
    assert widget.post("/chat", {"reset": True, "agentConfig": "bot"}).status == 200

    refused = widget.post("/chat", {"reset": True, "agentConfig": "bot"}, headers={"Origin": ACME_ORIGIN})

    assert refused.status == 429
    assert refused.error["code"] == "rate_limited"
    assert 1 <= int(refused.header("Retry-After") or 0) <= 10
    assert refused.header("Access-Control-Allow-Origin") == ACME_ORIGIN
    assert refused.header("Access-Control-Expose-Headers") == "Retry-After"


def test_a_server_key_is_not_rate_limited(acme: Api) -> None:
    acme.put("/limits", {"turns_per_day": 0})
    assert acme.post("/chat", {"reset": True, "agentConfig": "bot"}).status == 200
