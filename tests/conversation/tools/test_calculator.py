"""calculator: arithmetic from the model's text, evaluated by walking the syntax tree (never eval)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from openbrain.conversation.tools.calculator import MAX_EXPRESSION_CHARS, calculate
from openbrain.conversation.tools.context import ToolContext


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("6*7", "42"),
        ("(17 + 5) * 3", "66"),
        ("12.5 * (3 + 4)", "87.5"),
        ("7 / 2", "3.5"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),
        ("7 % 3", "1"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** -1", "0.5"),
        ("-3 + +5", "2"),
        ("10 ** 16", "10000000000000000"),
        ("6 × 7 ÷ 2", "21"),
    ],
)
def test_calculator_computes_arithmetic(offline_context: ToolContext, expression: str, result: str) -> None:
    assert calculate(offline_context, "call_1", expression) == f"{expression} = {result}"


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2 + 3 * 4", "14"),
        ("(2 + 3) * 4", "20"),
        ("10 - 4 - 3", "3"),
        ("2 * 3 ** 2", "18"),
        ("-2 ** 2", "-4"),
        ("2 ** 3 ** 2", "512"),
        ("100 / 10 / 5", "2"),
    ],
)
def test_calculator_follows_operator_precedence(offline_context: ToolContext, expression: str, result: str) -> None:
    assert calculate(offline_context, "call_1", expression) == f"{expression} = {result}"


@pytest.mark.parametrize(("expression", "result"), [("2^10", "1024"), ("3 ^ 2 + 1", "10"), ("2^3^2", "512")])
def test_calculator_reads_caret_as_power(offline_context: ToolContext, expression: str, result: str) -> None:
    assert calculate(offline_context, "call_1", expression) == f"{expression} = {result}"


def test_calculator_trims_the_expression_it_echoes(offline_context: ToolContext) -> None:
    assert calculate(offline_context, "call_1", "  1 + 1 \n") == "1 + 1 = 2"


@pytest.mark.parametrize("expression", ["1 / 0", "1 // 0", "5 % 0", "0 ** -1", "1 / (3 - 3)"])
def test_calculator_reports_division_by_zero(offline_context: ToolContext, expression: str) -> None:
    assert calculate(offline_context, "call_1", expression) == f"Cannot calculate {expression!r}: division by zero."


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('x')",
        "a + 1",
        "x",
        "abs(-1)",
        "(1).__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "(lambda: 1)()",
        "[1, 2]",
        "'ab' * 3",
        "1 if 1 else 2",
        "1 < 2",
        "True + 1",
        "1j * 2",
        "1 << 2",
        "~1",
        "not 1",
    ],
)
def test_calculator_refuses_anything_but_numbers_and_operators(offline_context: ToolContext, expression: str) -> None:
    reply = calculate(offline_context, "call_1", expression)

    assert reply == (
        f"Cannot calculate {expression!r}: only numbers, + - * / // % ** and parentheses are allowed."
    )


@pytest.mark.parametrize("expression", ["1 +", "", "1; 2", "import os", "x = 1", "print('hi')\nprint(2)"])
def test_calculator_refuses_text_that_is_not_an_expression(offline_context: ToolContext, expression: str) -> None:
    reply = calculate(offline_context, "call_1", expression)

    assert reply.startswith("Cannot calculate ")
    assert reply.endswith(": that is not an arithmetic expression.")


def test_calculator_never_evaluates_what_it_refuses(
    offline_context: ToolContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an expression that would create a file if anything evaluated it
    monkeypatch.chdir(tmp_path)
    expression = "__import__('pathlib').Path('pwned').touch() or 1"

    # when
    reply = calculate(offline_context, "call_1", expression)

    # then
    assert reply.startswith("Cannot calculate ")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("2**999999", "exponent 999999 is too large (limit 1000)"),
        ("9 ** 9 ** 9", "exponent 387420489 is too large (limit 1000)"),
        ("2 ^ 5000", "exponent 5000 is too large (limit 1000)"),
        ("2 ** 1000", "the result is out of range"),
        ("1e300 * 1e300", "the result is out of range"),
        ("(10 ** 200) ** 999", "the result is out of range"),
    ],
)
def test_calculator_refuses_huge_results_quickly(offline_context: ToolContext, expression: str, reason: str) -> None:
    started = time.perf_counter()

    reply = calculate(offline_context, "call_1", expression)

    assert reply == f"Cannot calculate {expression!r}: {reason}."
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("expression", ["1e999", "1e999 - 1e999", "-1e999 * 0"])
def test_calculator_never_answers_infinity_or_nan(offline_context: ToolContext, expression: str) -> None:
    reply = calculate(offline_context, "call_1", expression)

    assert reply == f"Cannot calculate {expression!r}: the result is out of range."


def test_calculator_refuses_overlong_expressions(offline_context: ToolContext) -> None:
    expression = "+".join(["1"] * (MAX_EXPRESSION_CHARS // 2 + 1))

    reply = calculate(offline_context, "call_1", expression)

    assert reply.endswith(f": the expression is longer than {MAX_EXPRESSION_CHARS} characters.")


def test_calculator_records_no_event_and_no_lead(offline_context: ToolContext) -> None:
    calculate(offline_context, "call_1", "1 + 1")
    calculate(offline_context, "call_2", "a + 1")

    assert (offline_context.events, offline_context.lead, offline_context.ended) == ([], None, False)
