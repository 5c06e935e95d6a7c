"""A calculator that evaluates arithmetic by walking its syntax tree: no eval of model output."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from openbrain.conversation.tools.context import ToolContext

DESCRIPTION = (
    "Evaluate an arithmetic expression with + - * / // % ** and parentheses, e.g. '(17 + 5) * 3'. "
    "Use it for any arithmetic instead of computing in your head."
)
MAX_EXPRESSION_CHARS = 200
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 1e300

_BINARY: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[float], float]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class CalculatorArgs(BaseModel):
    expression: str = Field(description="arithmetic expression, e.g. '12.5 * (3 + 4)'")


class CalculationError(ValueError):
    pass


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_eval(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalculationError(f"exponent {right} is too large (limit {MAX_EXPONENT})")
        result = _BINARY[type(node.op)](left, right)
        if isinstance(result, complex) or abs(result) > MAX_MAGNITUDE:
            raise CalculationError("the result is out of range")
        return result
    raise CalculationError("only numbers, + - * / // % ** and parentheses are allowed")


def evaluate(expression: str) -> float:
    """The value of an arithmetic expression; raises `CalculationError` for anything else."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/"), mode="eval")
    except SyntaxError as exc:
        raise CalculationError("that is not an arithmetic expression") from exc
    try:
        result = _eval(tree)
    except ZeroDivisionError as exc:
        raise CalculationError("division by zero") from exc
    except OverflowError as exc:
        raise CalculationError("the result is out of range") from exc
    if not math.isfinite(result) or abs(result) > MAX_MAGNITUDE:
        raise CalculationError("the result is out of range")
    return result


def format_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return repr(round(value, 10)) if math.isfinite(value) else str(value)
    return str(value)


def calculate(context: ToolContext, tool_call_id: str, expression: str) -> str:
    try:
        return f"{expression.strip()} = {format_number(evaluate(expression))}"
    except CalculationError as exc:
        return f"Cannot calculate {expression.strip()!r}: {exc}."
