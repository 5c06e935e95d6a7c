"""Routes only parse, call a service and render (STYLE.md): none grows past 15 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTES = sorted((Path(__file__).resolve().parents[2] / "openbrain" / "api" / "routes").glob("*.py"))
MAX_LINES = 15


def _routes(path: Path) -> list[ast.FunctionDef]:
    return [node for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and any("router." in ast.unparse(d) for d in node.decorator_list)]


def test_every_route_module_is_seen() -> None:
    assert {path.stem for path in ROUTES} >= {"agent_configs", "chat", "leads", "sessions", "status"}
    assert sum(len(_routes(path)) for path in ROUTES) >= 10


@pytest.mark.parametrize("path", ROUTES, ids=lambda path: path.stem)
def test_no_route_is_longer_than_15_lines(path: Path) -> None:
    long = {node.name: node.end_lineno - node.lineno + 1 for node in _routes(path)
            if (node.end_lineno or 0) - node.lineno + 1 > MAX_LINES}
    assert long == {}, f"move these routes' logic into a service: {long}"
