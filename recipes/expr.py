"""A safe arithmetic evaluator for recipe calculations (CALC phases), over Decimal.

Recipe authors write expressions such as `label_claim * batch_kg / (assay / 100)`; the
workflow evaluates them deterministically inside the Temporal sandbox, so this module is
standard library only. It never calls `eval`: the text is parsed with `ast` and walked over
a whitelist — decimal numbers, names, `+ - * /`, unary minus and plus, parentheses and the
functions `min`, `max`, `abs` and `round`. Everything else (attributes, subscripts, other
calls, `**`, comparisons, comprehensions, lambdas, strings) is refused with a message that
says what is wrong. Length, nesting depth, node count and literal size are capped so a
hostile expression is refused quickly instead of exhausting memory or the stack.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

MAX_LENGTH = 500  # characters of expression text
MAX_DEPTH = 64  # nesting of the parsed tree (parentheses, operators, calls)
MAX_NODES = 200  # parsed nodes
MAX_LITERAL_DIGITS = 30  # digits in one number literal
MAX_ROUND_DECIMALS = 12
# Results beyond this magnitude are not a plausible process quantity; it also keeps a chain
# of multiplications from growing numbers without bound.
MAX_MAGNITUDE = Decimal("1e30")
# 34 significant digits (IEEE decimal128): exact for any realistic quantity, and the same
# on every worker, so a replayed workflow computes the same result.
_CONTEXT = Context(prec=34, rounding=ROUND_HALF_EVEN, Emax=999, Emin=-999, traps=[
    InvalidOperation, DivisionByZero, Overflow,
])

FUNCTIONS = ("min", "max", "abs", "round")
_PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class ExpressionError(ValueError):
    """An expression that cannot be parsed, is not allowed, or cannot be evaluated."""


def _parse(expression: str) -> ast.expr:
    if not isinstance(expression, str):
        raise ExpressionError("the expression must be text")
    text = expression.strip()
    if not text:
        raise ExpressionError("the expression is empty; write arithmetic such as `a * b / 100`")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed"
        )
    # Newlines would let `ast` accept statements we never want; an expression is one line.
    if "\n" in text or "\r" in text:
        raise ExpressionError("the expression must be on one line")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        detail = exc.msg or "invalid syntax"
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ExpressionError(f"the expression is not valid arithmetic{where}: {detail}") from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError("the expression cannot be parsed") from None
    body = tree.body
    _attach_literal_text(body, text)
    _check(body)
    return body


def _check(root: ast.expr) -> None:
    """Whitelist walk: refuse anything that is not plain arithmetic, before evaluating."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"the expression is too long: more than {MAX_NODES} terms")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels deep")
        children = _allowed_children(node)
        stack.extend((child, depth + 1) for child in children)


def _allowed_children(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.Constant):
        _literal(node)
        return []
    if isinstance(node, ast.Name):
        return []
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
            raise ExpressionError(
                f"the operator `{_op_text(node.op)}` is not allowed; use + - * / and parentheses"
            )
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise ExpressionError(
                f"the operator `{_op_text(node.op)}` is not allowed; use + - * / and parentheses"
            )
        return [node.operand]
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            func = node.func
            called = (
                func.id if isinstance(func, ast.Name)
                else func.attr if isinstance(func, ast.Attribute)
                else "this"
            )
            raise ExpressionError(
                f"calling `{called}` is not allowed; the functions are {', '.join(FUNCTIONS)}"
            )
        if node.keywords:
            raise ExpressionError(f"`{node.func.id}` takes no keyword arguments")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise ExpressionError(f"`{node.func.id}` takes no *arguments")
        _check_arity(node.func.id, len(node.args))
        return list(node.args)
    if isinstance(node, ast.Attribute):
        raise ExpressionError("attribute access (`.`) is not allowed in an expression")
    if isinstance(node, ast.Subscript):
        raise ExpressionError("indexing (`[...]`) is not allowed in an expression")
    if isinstance(node, ast.Compare | ast.BoolOp | ast.IfExp):
        raise ExpressionError("comparisons and conditions are not allowed; use `when:` instead")
    kind = type(node).__name__
    raise ExpressionError(f"{_describe(kind)} is not allowed; use numbers, names, + - * / and "
                          f"{', '.join(FUNCTIONS)}")


def _describe(kind: str) -> str:
    names = {
        "ListComp": "a comprehension", "SetComp": "a comprehension",
        "DictComp": "a comprehension", "GeneratorExp": "a comprehension",
        "Lambda": "a lambda", "List": "a list", "Tuple": "a tuple", "Set": "a set",
        "Dict": "a dictionary", "JoinedStr": "a string", "NamedExpr": "an assignment (`:=`)",
        "Await": "await", "Yield": "yield", "YieldFrom": "yield", "Slice": "a slice",
        "Starred": "`*`",
    }
    return names.get(kind, f"`{kind}`")


def _op_text(op: ast.AST) -> str:
    return {
        "Pow": "**", "Mod": "%", "FloorDiv": "//", "MatMult": "@", "LShift": "<<",
        "RShift": ">>", "BitOr": "|", "BitXor": "^", "BitAnd": "&", "Invert": "~", "Not": "not",
    }.get(type(op).__name__, type(op).__name__)


def _check_arity(function: str, count: int) -> None:
    if function in ("min", "max") and count < 2:
        raise ExpressionError(f"`{function}` needs at least two arguments")
    if function == "abs" and count != 1:
        raise ExpressionError("`abs` takes exactly one argument")
    if function == "round" and count not in (1, 2):
        raise ExpressionError("`round` takes a value and optionally a number of decimals")


def _literal(node: ast.Constant) -> Decimal:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        what = "text" if isinstance(value, str | bytes) else repr(value)
        raise ExpressionError(f"{what} is not a number; only numbers and names are allowed")
    # The source text, not the float, so 0.1 is exactly 0.1.
    text = getattr(node, "_ebr_text", "")
    if not _PLAIN_NUMBER.fullmatch(text):
        raise ExpressionError(
            f"`{text or value}` is not a plain decimal number; write numbers like 12 or 0.5 "
            "(no exponents, underscores, hex or leading dot)"
        )
    digits = sum(ch.isdigit() for ch in text)
    if digits > MAX_LITERAL_DIGITS:
        raise ExpressionError(
            f"a number has {digits} digits; at most {MAX_LITERAL_DIGITS} are allowed"
        )
    return Decimal(text)


def names(expression: str) -> frozenset[str]:
    """The names (parameter ids, step ids) an expression reads, after checking it is allowed."""
    body = _parse(expression)
    functions = {id(node.func) for node in ast.walk(body) if isinstance(node, ast.Call)}
    return frozenset(
        node.id
        for node in ast.walk(body)
        if isinstance(node, ast.Name) and id(node) not in functions
    )


def evaluate(expression: str, values: Mapping[str, Decimal]) -> Decimal:
    """The value of `expression` with each name taken from `values`.

    `values` maps parameter ids and step ids to numbers. A name is looked up as it is, else
    as the last part of a step id (`assay` finds `qc/test/assay`), as recipe authors write
    phase ids and step ids contain `/`.

    Raises ExpressionError for a disallowed expression, an unknown name, division by zero or a
    result out of range.
    """
    body = _parse(expression)
    with localcontext(_CONTEXT):
        try:
            result = _Evaluator(values).value(body)
        except DivisionByZero:
            raise ExpressionError("division by zero") from None
        except (InvalidOperation, Overflow, DecimalException, OverflowError):
            raise ExpressionError("the expression has no numeric result (out of range)") from None
    return result


def _attach_literal_text(body: ast.expr, source: str) -> None:
    # A float literal (0.1) would lose exactness: each number keeps its source text, which is
    # what gets converted. The expression is one line, so columns index `source` directly
    # (ast counts them in UTF-8 bytes; non-ASCII text before a number only shifts it, and
    # the shifted text then fails the plain-decimal test below, which refuses it).
    encoded = source.encode("utf-8")
    for node in ast.walk(body):
        if isinstance(node, ast.Constant) and node.end_col_offset is not None:
            segment = encoded[node.col_offset:node.end_col_offset].decode("utf-8", "replace")
            node._ebr_text = segment  # type: ignore[attr-defined]


class _Evaluator:
    def __init__(self, values: Mapping[str, Decimal]) -> None:
        self._values = values
        self._binary: dict[type, Callable[[Decimal, Decimal], Decimal]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Div: lambda a, b: a / b,
        }

    def value(self, node: ast.AST) -> Decimal:
        result = self._value(node)
        if abs(result) > MAX_MAGNITUDE:
            raise ExpressionError(
                f"the result {result:.3E} is out of range (at most {MAX_MAGNITUDE:.0E})"
            )
        return result

    def _value(self, node: ast.AST) -> Decimal:
        if isinstance(node, ast.Constant):
            return _literal(node)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp):
            left, right = self.value(node.left), self.value(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ExpressionError("division by zero")
            return self._binary[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, [self.value(arg) for arg in node.args])
        raise ExpressionError("the expression is not allowed")  # _check refused it already

    def _name(self, name: str) -> Decimal:
        key = self._key(name)
        raw = self._values[key]
        try:
            value = raw if isinstance(raw, Decimal) else Decimal(str(raw))
        except (InvalidOperation, ValueError):
            raise ExpressionError(f"`{name}` has no numeric value ({raw!r})") from None
        if not value.is_finite():
            raise ExpressionError(f"`{name}` has no numeric value ({value})")
        return value

    def _key(self, name: str) -> str:
        """The key of `values` a name means: the name itself (a parameter id), else the one
        step id `unit_procedure/operation/<name>` (a step id is not a Python name)."""
        if name in self._values:
            return name
        suffix = f"/{name}"
        steps = sorted(k for k in self._values if isinstance(k, str) and k.endswith(suffix))
        if len(steps) == 1:
            return steps[0]
        if steps:
            raise ExpressionError(f"`{name}` could mean {' or '.join(steps)}")
        known = sorted(self._values)
        listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "") or "none"
        raise ExpressionError(f"unknown name `{name}` (known: {listed})")

    @staticmethod
    def _call(function: str, args: list[Decimal]) -> Decimal:
        if function == "min":
            return min(args)
        if function == "max":
            return max(args)
        if function == "abs":
            return abs(args[0])
        # round(x) -> whole number, round(x, n) -> n decimals; half-even like the plan.
        places = args[1] if len(args) == 2 else Decimal(0)
        if places != places.to_integral_value() or not 0 <= places <= MAX_ROUND_DECIMALS:
            raise ExpressionError(
                f"`round` takes a whole number of decimals from 0 to {MAX_ROUND_DECIMALS}"
            )
        return args[0].quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_EVEN)
