"""Model spec strings: `offline` or `openai:<model>`. Parsing needs no model runtime."""

from __future__ import annotations

import re
from dataclasses import dataclass

from openbrain.core.errors import InvalidInputError

PROVIDERS = ("offline", "openai")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    name: str

    def __str__(self) -> str:
        return self.provider if self.provider == "offline" else f"{self.provider}:{self.name}"


def parse_model_spec(spec: str) -> ModelSpec:
    """`offline` -> ModelSpec("offline", "offline"); `openai:gpt-4o-mini` -> ModelSpec("openai", ...).

    Raises `InvalidInputError` naming the accepted forms for anything else.
    """
    text = (spec or "").strip()
    if text == "offline":
        return ModelSpec("offline", "offline")
    provider, sep, name = text.partition(":")
    if sep and provider == "openai" and _MODEL_NAME.match(name):
        return ModelSpec(provider, name)
    raise InvalidInputError(
        f"invalid model spec {spec!r}: use 'offline' or 'openai:<model>' (e.g. 'openai:gpt-4o-mini')"
    )
