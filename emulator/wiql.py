"""A small WIQL subset: `SELECT [System.Id] FROM WorkItems WHERE <expr> ORDER BY [System.Id]`.

Pure: parse() builds an AST, matches() evaluates it against a field mapping. Supported conditions:
`[Field] = | <> | CONTAINS | NOT CONTAINS | IN (...)` with string, number or `@project` values, combined
with AND / OR / NOT and parentheses. String comparisons are case-insensitive, as in the service;
`CONTAINS` on System.Tags matches whole tags only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TOKEN = re.compile(
    r"\s*(?:(?P<field>\[[^\]]+\])|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<macro>@\w+)"
    r"|(?P<op><>|!=|>=|<=|=|<|>|\(|\)|,|\*)|(?P<word>[A-Za-z_][\w.]*))",
)


class WiqlError(ValueError):
    """A query outside the supported subset or with a syntax error (the service answers 400)."""


@dataclass(frozen=True)
class Macro:
    name: str


Value = str | int | float | Macro


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # "=", "<>", "contains", "not contains", "in"
    values: tuple[Value, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or" | "not"
    operands: tuple[Expr, ...]


Expr = Condition | BoolOp


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    where: Expr | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)

    @property
    def uses_project_macro(self) -> bool:
        return _uses_macro(self.where, "project")


def _uses_macro(expr: Expr | None, name: str) -> bool:
    if expr is None:
        return False
    if isinstance(expr, Condition):
        return any(isinstance(v, Macro) and v.name == name for v in expr.values)
    return any(_uses_macro(e, name) for e in expr.operands)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        found = _TOKEN.match(text, pos)
        if found is None or found.lastgroup is None:
            raise WiqlError(f"Syntax error near '{text[pos : pos + 20].strip()}'.")
        tokens.append((found.lastgroup, found.group(found.lastgroup)))
        pos = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else ("eof", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        if all(self.peek(i)[0] == "word" and self.peek(i)[1].upper() == w for i, w in enumerate(words)):
            self.pos += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.keyword(*words):
            raise WiqlError(f"Expected {' '.join(words)} near '{self.peek()[1]}'.")

    def field(self) -> str:
        kind, text = self.take()
        if kind == "field":
            return text[1:-1].strip()
        if kind == "word":
            return text
        raise WiqlError(f"Expected a field name near '{text}'.")

    def query(self) -> Query:
        self.expect("SELECT")
        if self.peek() == ("op", "*"):
            raise WiqlError("SELECT * is not supported; list the fields to return.")
        fields = [self.field()]
        while self.peek() == ("op", ","):
            self.take()
            fields.append(self.field())
        self.expect("FROM")
        source = self.take()[1]
        if source.casefold() != "workitems":
            raise WiqlError(f"Only FROM WorkItems is supported, got '{source}'.")
        where = self.or_expr() if self.keyword("WHERE") else None
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDER", "BY"):
            order.append(self.order_item())
            while self.peek() == ("op", ","):
                self.take()
                order.append(self.order_item())
        if self.peek()[0] != "eof":
            raise WiqlError(f"Unexpected '{self.peek()[1]}'.")
        return Query(tuple(fields), where, tuple(order))

    def order_item(self) -> tuple[str, bool]:
        name = self.field()
        if self.keyword("DESC"):
            return name, True
        self.keyword("ASC")
        return name, False

    def or_expr(self) -> Expr:
        operands = [self.and_expr()]
        while self.keyword("OR"):
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_expr(self) -> Expr:
        operands = [self.unary()]
        while self.keyword("AND"):
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def unary(self) -> Expr:
        if self.peek() == ("op", "("):
            self.take()
            inner = self.or_expr()
            if self.take() != ("op", ")"):
                raise WiqlError("Missing closing parenthesis.")
            return inner
        if self.peek()[0] == "word" and self.peek()[1].upper() == "NOT" and self.peek(1)[0] != "word":
            self.take()
            return BoolOp("not", (self.unary(),))
        return self.condition()

    def condition(self) -> Condition:
        name = self.field()
        kind, text = self.take()
        if kind == "op" and text in {"=", "<>", "!="}:
            return Condition(name, "=" if text == "=" else "<>", (self.value(),))
        if kind == "word" and text.upper() == "CONTAINS":
            return Condition(name, "contains", (self.value(),))
        if kind == "word" and text.upper() == "NOT" and self.keyword("CONTAINS"):
            return Condition(name, "not contains", (self.value(),))
        if kind == "word" and text.upper() == "IN":
            return Condition(name, "in", self.value_list())
        raise WiqlError(f"Unsupported operator '{text}'.")

    def value_list(self) -> tuple[Value, ...]:
        if self.take() != ("op", "("):
            raise WiqlError("IN needs a parenthesised list.")
        values = [self.value()]
        while self.peek() == ("op", ","):
            self.take()
            values.append(self.value())
        if self.take() != ("op", ")"):
            raise WiqlError("Missing closing parenthesis.")
        return tuple(values)

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "macro" and text.lower() == "@project":
            return Macro("project")
        raise WiqlError(f"Unsupported value '{text}'.")


def parse(text: str) -> Query:
    try:
        return _Parser(text).query()
    except WiqlError:
        raise
    except (RecursionError, ValueError) as exc:  # absurd nesting, a number Python will not convert
        raise WiqlError(f"The query cannot be parsed: {type(exc).__name__}") from None


def matches(expr: Expr | None, fields: Mapping[str, object], project: str | None) -> bool:
    if expr is None:
        return True
    if isinstance(expr, BoolOp):
        results = (matches(e, fields, project) for e in expr.operands)
        if expr.op == "not":
            return not next(results)
        return all(results) if expr.op == "and" else any(results)
    actual = _lookup(fields, expr.field)
    values = [project if isinstance(v, Macro) else v for v in expr.values]
    if expr.op in {"contains", "not contains"}:
        found = _contains(expr.field, actual, values[0])
        return found if expr.op == "contains" else not found
    equal = any(_equals(actual, v) for v in values)
    return not equal if expr.op == "<>" else equal


def _lookup(fields: Mapping[str, object], name: str) -> object:
    wanted = name.casefold()
    return next((v for k, v in fields.items() if k.casefold() == wanted), None)


def _equals(actual: object, expected: object) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.casefold() == expected.casefold()
    if isinstance(actual, int | float) and isinstance(expected, int | float | str):
        try:
            return float(actual) == float(expected)
        except ValueError:
            return False
    return actual == expected


def _contains(field: str, actual: object, expected: object) -> bool:
    if actual is None or expected is None:
        return False
    needle = str(expected).casefold()
    if field.casefold() == "system.tags":
        return any(tag.strip().casefold() == needle for tag in str(actual).split(";"))
    return needle in str(actual).casefold()


def sort_key(order_by: tuple[tuple[str, bool], ...]) -> tuple[str, bool]:
    """Only ordering by id is supported; anything else falls back to ascending id."""
    if order_by and order_by[0][0].casefold() == "system.id":
        return order_by[0]
    return ("System.Id", False)
