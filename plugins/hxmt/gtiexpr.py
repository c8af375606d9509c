"""Screening (GTI) expressions: a small, safe grammar, never `eval`.

HXMTDAS's *gtigen tasks take a cfitsio row-filter expression over the EHK and housekeeping
columns, e.g. `ELV>10&&COR>8&&SAA_FLAG==0&&T_SAA>300&&TN_SAA>300&&ANG_DIST<=0.04`. xoda accepts
the part of that language a screening needs:

    expression := or
    or         := and ( '||' and )*
    and        := unary ( '&&' unary )*
    unary      := '!' unary | '(' expression ')' | comparison
    comparison := operand ( '<' | '<=' | '>' | '>=' | '==' | '=' | '!=' ) operand
    operand    := NUMBER | COLUMN          (NUMBER: 10, -1.5, 4e-2; COLUMN: ELV, T_SAA, ...)

Column names match case-insensitively against the columns the caller declares; an unknown
column is refused with a message naming it and the known ones. `parse` returns a tree that
evaluates over numpy columns (`Expression.evaluate`) and splits into its top-level `&&`
criteria (`Expression.criteria`), so the GTI report can say how much time each criterion
removed. `str(expression)` is a canonical text (no blanks, the columns' own spelling), used in
cache keys and reports: `elv > 10` and `ELV>10` are the same screening.
"""
from __future__ import annotations

import abc

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|==|!=|&&|\|\||<|>|=|!|\(|\)|-)
""", re.VERBOSE)
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
MAX_LENGTH = 2000


class ExpressionError(ValueError):
    """A screening expression that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class _Token:
    kind: str          # number, name, op, end
    text: str
    position: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"unexpected character {text[position]!r} at position {position + 1} "
                                  f"of {text!r}")
        kind = match.lastgroup
        if kind != "space":
            out.append(_Token(kind, match.group(kind), position))
        position = match.end()
    out.append(_Token("end", "", len(text)))
    return out


class Node(abc.ABC):
    """A node of the expression tree."""

    @abc.abstractmethod
    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The boolean (or, for an operand, numeric) array of this node over the rows."""

    @abc.abstractmethod
    def columns(self) -> set[str]:
        """The column names this node reads."""


@dataclass(frozen=True)
class Operand(Node):
    value: float | None      # a number, or None for a column
    name: str | None         # the column's own spelling
    text: str                # as it is written in the canonical form

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.name is None:
            return np.asarray(self.value, dtype=float)
        return np.asarray(columns[self.name], dtype=float)

    def columns(self) -> set[str]:
        return {self.name} if self.name else set()

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Compare(Node):
    left: Operand
    op: str
    right: Operand

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        a, b = self.left.evaluate(columns), self.right.evaluate(columns)
        with np.errstate(invalid="ignore"):      # NaN compares false: such rows are bad time
            return {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                    "==": np.equal, "!=": np.not_equal}[self.op](a, b)

    def columns(self) -> set[str]:
        return self.left.columns() | self.right.columns()

    def __str__(self) -> str:
        return f"{self.left}{self.op}{self.right}"


@dataclass(frozen=True)
class Not(Node):
    term: Node

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        # A NaN comparison is false, so negating it would make a row with a missing value
        # good time: such rows stay bad, as cfitsio's null values do.
        defined = np.logical_and.reduce([np.isfinite(np.asarray(columns[name], dtype=float))
                                         for name in self.term.columns()])
        return ~self.term.evaluate(columns) & defined

    def columns(self) -> set[str]:
        return self.term.columns()

    def __str__(self) -> str:
        inner = str(self.term)
        return f"!{inner}" if isinstance(self.term, Not) else f"!({inner})"


@dataclass(frozen=True)
class Junction(Node):
    op: str                  # "&&" or "||"
    terms: tuple[Node, ...]

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        combine = np.logical_and if self.op == "&&" else np.logical_or
        result = self.terms[0].evaluate(columns)
        for term in self.terms[1:]:
            result = combine(result, term.evaluate(columns))
        return result

    def columns(self) -> set[str]:
        return set().union(*(t.columns() for t in self.terms))

    def __str__(self) -> str:
        parts = []
        for term in self.terms:
            text = str(term)
            # `a||b` inside `&&` needs parentheses; `&&` inside `||` binds tighter anyway.
            parts.append(f"({text})" if isinstance(term, Junction) and term.op == "||" and self.op == "&&"
                         else text)
        return self.op.join(parts)


class _Parser:
    def __init__(self, text: str, known: Mapping[str, str]):
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0
        self.known = known           # upper-case name -> the column's own spelling
        self.unknown: list[str] = []

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, token: _Token, expected: str) -> ExpressionError:
        found = "the end" if token.kind == "end" else repr(token.text)
        return ExpressionError(f"expected {expected} at position {token.position + 1} of {self.text!r}, "
                               f"found {found}")

    def parse(self) -> Node:
        node = self.disjunction()
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "'&&', '||' or the end")
        return node

    def disjunction(self) -> Node:
        return self._junction("||", self.conjunction)

    def conjunction(self) -> Node:
        return self._junction("&&", self.unary)

    def _junction(self, operator: str, operand: Callable[[], Node]) -> Node:
        """operand ( operator operand )*: the operand alone, or their flattened Junction."""
        terms = [operand()]
        while self.peek().text == operator:
            self.take()
            terms.append(operand())
        return terms[0] if len(terms) == 1 else Junction(operator, tuple(_flatten(operator, terms)))

    def unary(self) -> Node:
        token = self.peek()
        if token.text == "!":
            self.take()
            return Not(self.unary())
        if token.text == "(":
            self.take()
            node = self.disjunction()
            if self.peek().text != ")":
                raise self.fail(self.peek(), "')'")
            self.take()
            return node
        return self.comparison()

    def comparison(self) -> Node:
        left = self.operand()
        token = self.take()
        op = "==" if token.text == "=" else token.text
        if op not in _COMPARISONS:
            raise self.fail(token, "a comparison (<, <=, >, >=, ==, !=)")
        right = self.operand()
        if left.name is None and right.name is None:
            raise ExpressionError(f"the comparison {left}{op}{right} in {self.text!r} involves no column")
        return Compare(left, op, right)

    def operand(self) -> Operand:
        token = self.take()
        sign = ""
        if token.text == "-":
            sign, token = "-", self.take()
            if token.kind != "number":
                raise self.fail(token, "a number after '-'")
        if token.kind == "number":
            return Operand(float(sign + token.text), None, sign + token.text)
        if token.kind == "name":
            name = self.known.get(token.text.upper())
            if name is None:
                if token.text not in self.unknown:
                    self.unknown.append(token.text)
                name = token.text
            return Operand(None, name, name)
        raise self.fail(token, "a column name or a number")


def _flatten(op: str, terms: Sequence[Node]) -> list[Node]:
    out: list[Node] = []
    for term in terms:
        out.extend(term.terms if isinstance(term, Junction) and term.op == op else [term])
    return out


@dataclass(frozen=True)
class Expression:
    """A parsed screening expression."""

    tree: Node

    def __str__(self) -> str:
        return str(self.tree)

    def columns(self) -> set[str]:
        return self.tree.columns()

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Rows passing the expression (bool array)."""
        return np.asarray(self.tree.evaluate(columns), dtype=bool)

    def criteria(self) -> list[tuple[str, Node]]:
        """The top-level `&&` terms, each with its canonical text (one term if none)."""
        terms = self.tree.terms if isinstance(self.tree, Junction) and self.tree.op == "&&" else (self.tree,)
        return [(str(term), term) for term in terms]


def parse(text: str, known_columns: Iterable[str]) -> Expression:
    """Parse `text` against the columns it may use; ExpressionError on any problem."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    known = {name.upper(): name for name in known_columns}
    parser = _Parser(text, known)
    tree = parser.parse()
    if parser.unknown:
        plural = "s" if len(parser.unknown) > 1 else ""
        raise ExpressionError(f"unknown column{plural} {', '.join(parser.unknown)} in {text!r}; "
                              f"known columns: {', '.join(sorted(known.values()))}")
    return Expression(tree)
