"""A small, honest subset of KQL for the emulator's Azure Resource Graph endpoint.

It is a test double, not Kusto: it runs the queries aztriage sends and the
shapes of Microsoft's documented ARG samples, over rows that are plain dicts.
What it understands (anything else is a ``KqlError``, which the endpoint answers
with ARG's own 400 error shape):

- a table name (case-insensitive) as the first stage, or a parenthesised query
  inside ``join``;
- ``where EXPR``; ``project [NAME =] EXPR, ...``; ``project-away NAME, ...``;
  ``extend NAME = EXPR, ...``; ``order by`` / ``sort by NAME [asc|desc], ...``;
  ``take N`` / ``limit N``; ``summarize count() [by NAME, ...]`` and
  ``summarize by NAME, ...``; ``mv-expand [NAME =] EXPR``;
  ``join kind=leftouter|inner (QUERY) on NAME`` or ``on $left.A == $right.B``
  (right-side columns whose names clash get a ``1`` suffix, as in Kusto);
- expressions: string, number and ``true``/``false`` literals; column paths with
  ``.name``, ``['name']`` and ``[index]``; ``and``, ``or``, ``not(...)``;
  ``==``, ``!=``, ``=~``, ``!~``, ``<``, ``<=``, ``>``, ``>=``, ``in``, ``in~``,
  ``!in``, ``!in~``, ``contains``, ``!contains``, ``has``, ``!has``,
  ``startswith``, ``endswith``; the functions ``tolower``, ``toupper``,
  ``tostring``, ``toint``, ``tolong``, ``isempty``, ``isnotempty``, ``isnull``,
  ``isnotnull``, ``array_length``, ``strcat``, ``iff``, ``coalesce``.

Kusto's own case rules are kept: column and property names are case-sensitive,
``==`` compares exactly, ``=~`` and ``in~`` ignore case, ``contains``/``has``
ignore case. Ordering sorts by Kusto's rule for mixed values (nulls last).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]
# A table by name; ``types`` (lower case), when given, are the only ``type`` values the
# query keeps (its first stage is ``where type =~ 'X'`` or ``where type in~ (...)``): a
# source may leave out other rows, as ARG's index does. The stage still runs after it.
TableSource = Callable[[str, "frozenset[str] | None"], Iterable[Row]]


class KqlError(ValueError):
    """A query outside the supported subset, or malformed; ``token`` names where."""

    def __init__(self, message: str, token: str = "") -> None:
        super().__init__(message)
        self.token = token


# ------------------------------------------------------------------ tokens
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<op>!in~|in~|!contains|!has|!startswith|!in\b|=~|!~|==|!=|<=|>=|[<>=(),.\[\]|])
    | (?P<name>\$?[A-Za-z_][A-Za-z0-9_]*(?:-(?:away|expand)\b)?)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Tok:
    kind: str  # str, num, op, name, end
    text: str
    value: Any = None


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        if text.startswith("//", pos):  # a comment runs to the end of its line
            end = text.find("\n", pos)
            pos = len(text) if end < 0 else end
            continue
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            snippet = text[pos : pos + 20].strip()
            raise KqlError(f"the emulator's KQL subset cannot read {snippet!r}", snippet)
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")
            out.append(Tok("str", raw, re.sub(r"\\(.)", r"\1", raw[1:-1])))
        elif m.group("num") is not None:
            raw = m.group("num")
            out.append(Tok("num", raw, float(raw) if "." in raw else int(raw)))
        elif m.group("op") is not None:
            out.append(Tok("op", m.group("op")))
        else:
            out.append(Tok("name", m.group("name")))
    out.append(Tok("end", ""))
    return out


# ------------------------------------------------------------------ values
def to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _str(value: Any) -> str:
    return value if type(value) is str else to_string(value)


def _to_number(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    try:
        return int(str(value))
    except (TypeError, ValueError):
        try:
            return float(str(value))
        except (TypeError, ValueError):
            return None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _has(haystack: str, term: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9])" + re.escape(term) + r"(?![A-Za-z0-9])", haystack, re.I) is not None


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("in", "in~", "!in", "!in~"):
        items = right if isinstance(right, list) else [right]
        if op.endswith("~"):
            found = to_string(left).lower() in {to_string(i).lower() for i in items}
        else:
            found = any(left == i or (isinstance(i, str) and to_string(left) == i) for i in items)
        return found if not op.startswith("!") else not found
    if op == "=~":
        return to_string(left).lower() == to_string(right).lower()
    if op == "!~":
        return to_string(left).lower() != to_string(right).lower()
    if op in ("==", "!="):
        if isinstance(left, str) or isinstance(right, str):
            same = left is not None and right is not None and to_string(left) == to_string(right)
        else:
            same = left == right
        return same if op == "==" else not same
    if op in ("contains", "!contains"):
        found = to_string(right).lower() in to_string(left).lower()
        return found if op == "contains" else not found
    if op in ("has", "!has"):
        found = _has(to_string(left), to_string(right))
        return found if op == "has" else not found
    if op == "startswith":
        return to_string(left).lower().startswith(to_string(right).lower())
    if op == "endswith":
        return to_string(left).lower().endswith(to_string(right).lower())
    a, b = _to_number(left), _to_number(right)
    if a is None or b is None:
        a, b = to_string(left), to_string(right)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "tolower": lambda v: _str(v).lower(),
    "toupper": lambda v: _str(v).upper(),
    "tostring": _str,
    "toint": _to_number,
    "tolong": _to_number,
    "isempty": _empty,
    "isnotempty": lambda v: not _empty(v),
    "isnull": lambda v: v is None,
    "isnotnull": lambda v: v is not None,
    "array_length": lambda v: len(v) if isinstance(v, list) else None,
    "strcat": lambda *vs: "".join(to_string(v) for v in vs),
    "iff": lambda c, a, b: a if c is True else b,
    "coalesce": lambda *vs: next((v for v in vs if not _empty(v)), None),
    "not": lambda v: not v,
}

_COMPARE_OPS = {
    "==",
    "!=",
    "=~",
    "!~",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "in~",
    "!in",
    "!in~",
    "contains",
    "!contains",
    "has",
    "!has",
    "startswith",
    "!startswith",
    "endswith",
}

Expr = Callable[[Row], Any]


class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, ahead: int = 0) -> Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def next(self) -> Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def is_(self, text: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "name") and tok.text.lower() == text

    def expect(self, text: str) -> Tok:
        tok = self.next()
        if tok.kind not in ("op", "name") or tok.text.lower() != text:
            raise KqlError(f"expected {text!r} but found {tok.text or 'the end of the query'!r}", tok.text)
        return tok

    def at_end(self) -> bool:
        return self.peek().kind == "end"

    def name(self) -> str:
        tok = self.next()
        if tok.kind != "name":
            raise KqlError(f"expected a name but found {tok.text or 'the end of the query'!r}", tok.text)
        return tok.text

    # expressions ----------------------------------------------------------
    def expr(self) -> Expr:
        return self._chain("or", self.and_expr)

    def and_expr(self) -> Expr:
        return self._chain("and", self.comparison)

    def _chain(self, word: str, operand: Callable[[], Expr]) -> Expr:
        """``operand (word operand)*`` for ``and`` / ``or``, left to right."""
        parts = [operand()]
        while self.is_(word):
            self.next()
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        if word == "and":
            return lambda row: all(bool(p(row)) for p in parts)
        return lambda row: any(bool(p(row)) for p in parts)

    def comparison(self) -> Expr:
        left = self.primary()
        tok = self.peek()
        op = tok.text.lower() if tok.kind in ("op", "name") else ""
        if op not in _COMPARE_OPS:
            return left
        self.next()
        if op in ("in", "in~", "!in", "!in~"):
            self.expect("(")
            start = self.i
            items = self.arguments(self.primary)
            listed = self.toks[start : self.i - 1]  # the items and their commas
            if op.endswith("~") and all(t.kind in ("str", "num") or t.text == "," for t in listed):
                # a list of literals, compared without case: one set, made once
                wanted = {to_string(t.value).lower() for t in listed if t.kind in ("str", "num")}
                negate = op.startswith("!")
                return lambda row: (_str(left(row)).lower() in wanted) != negate
            return lambda row: _compare(op, left(row), [item(row) for item in items])
        if op == "!startswith":
            right = self.primary()
            return lambda row: not _compare("startswith", left(row), right(row))
        literal = self.peek().kind == "str"  # a string literal is never followed by a path
        value = self.peek().value
        right = self.primary()
        if literal and op in ("=~", "!~"):
            low = str(value).lower()
            if op == "=~":
                return lambda row: _str(left(row)).lower() == low
            return lambda row: _str(left(row)).lower() != low
        if literal and op in ("==", "!="):
            text = str(value)

            def same(row: Row) -> bool:
                v = left(row)
                return v is not None and (v == text if type(v) is str else to_string(v) == text)

            return same if op == "==" else lambda row: not same(row)
        return lambda row: _compare(op, left(row), right(row))

    def arguments(self, parse: Callable[[], Expr]) -> list[Expr]:
        """A comma-separated list up to and including its closing parenthesis (the opening one is read)."""
        items: list[Expr] = []
        while not self.is_(")"):
            items.append(parse())
            if not self.is_(")"):
                self.expect(",")
        self.expect(")")
        return items

    def primary(self) -> Expr:
        tok = self.next()
        base: Expr
        if tok.kind in ("str", "num"):
            value = tok.value
            return lambda row: value
        if tok.kind == "op" and tok.text == "(":
            inner = self.expr()
            self.expect(")")
            base = inner
        elif tok.kind == "name":
            low = tok.text.lower()
            if low in ("true", "false"):
                flag = low == "true"
                return lambda row: flag
            if self.is_("("):
                fn = _FUNCTIONS.get(low)
                if fn is None:
                    raise KqlError(f"the function {tok.text}() is not in the emulator's KQL subset", tok.text)
                self.next()
                args = self.arguments(self.expr)
                if len(args) == 1:
                    base = (lambda f, a: lambda row: f(a(row)))(fn, args[0])
                else:
                    base = (lambda f, a: lambda row: f(*[x(row) for x in a]))(fn, args)
            else:
                column = tok.text
                base = lambda row: row.get(column)  # noqa: E731
        else:
            raise KqlError(f"unexpected {tok.text or 'end of the query'!r}", tok.text)
        return self.path(base)

    def path(self, base: Expr) -> Expr:
        steps: list[Any] = []
        while True:
            if self.is_("."):
                self.next()
                steps.append(self.name())
            elif self.is_("["):
                self.next()
                tok = self.next()
                if tok.kind not in ("str", "num"):
                    raise KqlError("an index must be a string or a number", tok.text)
                steps.append(tok.value)
                self.expect("]")
            else:
                break
        if not steps:
            return base
        if all(isinstance(step, str) for step in steps):

            def walk_names(row: Row) -> Any:
                value = base(row)
                for step in steps:
                    if type(value) is not dict:
                        return None
                    value = value.get(step)
                return value

            return walk_names

        def walk(row: Row) -> Any:
            value = base(row)
            for step in steps:
                if isinstance(step, int) and isinstance(value, list):
                    value = value[step] if -len(value) <= step < len(value) else None
                elif isinstance(value, dict):
                    value = value.get(step)
                else:
                    return None
            return value

        return walk

    # assignments: NAME = EXPR or a bare column path (named after its last step)
    def assignment(self) -> tuple[str, Expr]:
        if self.peek().kind == "name" and self.peek(1).kind == "op" and self.peek(1).text == "=":
            target = self.name()
            self.next()
            return target, self.expr()
        start = self.i
        expr = self.expr()
        named = [t for t in self.toks[start : self.i] if t.kind in ("name", "str")]
        if not named:
            raise KqlError("a projected expression needs a name (NAME = EXPR)")
        return str(named[-1].value if named[-1].kind == "str" else named[-1].text), expr

    def names(self) -> list[str]:
        out = [self.name()]
        while self.is_(","):
            self.next()
            out.append(self.name())
        return out


# ------------------------------------------------------------------ stages
def _outside_quotes(text: str, start: int = 0) -> Iterator[tuple[int, str, int]]:
    """(index, character, parenthesis depth after it) for each character outside string literals."""
    depth = 0
    quote = ""
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        else:
            depth += 1 if ch == "(" else -1 if ch == ")" else 0
            yield i, ch, depth
        i += 1


def _split_stages(text: str) -> list[str]:
    """Split a query on top-level pipes (not inside strings or parentheses)."""
    stages: list[str] = []
    start = 0
    for i, ch, depth in _outside_quotes(text):
        if ch == "|" and depth == 0:
            stages.append(text[start:i])
            start = i + 1
    stages.append(text[start:])
    return [s.strip() for s in stages]


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None or value == "":
        return (2, "")
    number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if number is not None:
        return (0, number)
    return (1, to_string(value))


def _column_key(column: str) -> Callable[[Row], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(column))


@dataclass
class Result:
    rows: list[Row]
    ordered: bool  # an order by fixed the order
    limited: bool  # take / limit or summarize (no paging token, as ARG)


_OPERATORS = {"where", "project", "extend", "project-away", "order", "sort", "take", "limit", "summarize", "mv-expand", "join"}


# (subquery text, how to run it) -> its rows: a source may keep the rows of a join's right
# side while what they were read from is unchanged (graph.Graph does).
SubqueryCache = Callable[[str, Callable[[], list[Row]]], list[Row]]


def run(query: str, tables: TableSource, *, subqueries: SubqueryCache | None = None) -> Result:
    stages = _split_stages(query)
    if not stages or not stages[0]:
        raise KqlError("the query is empty")
    head = tokenize(stages[0])
    if head[0].kind != "name" or len(head) != 2:
        raise KqlError(f"a query starts with a table name, not {stages[0][:40]!r}", stages[0][:40])
    table = head[0].text.lower()
    # The table and the wheres and mv-expands that follow it: a source may keep what each of
    # them leaves (queries that start alike share it: two over the VMs that are not Available,
    # every search of the NICs' addresses, whatever the address).
    lead = 1
    while lead < len(stages) and re.match(r"(where|mv-expand)\b", stages[lead], re.I):
        lead += 1

    def prefix(k: int) -> list[Row]:
        """The rows after stages[:k]."""
        if k == 1:
            return list(tables(table, _types_kept(stages[1] if len(stages) > 1 else "")))
        if subqueries is None:
            return _stages(stages[1:k], prefix(1), tables, None).rows
        return subqueries(" | ".join(stages[:k]), lambda: _stages([stages[k - 1]], prefix(k - 1), tables, subqueries).rows)

    return _stages(stages[lead:], list(prefix(lead)), tables, subqueries)


def _stages(stages: list[str], rows: list[Row], tables: TableSource, subqueries: SubqueryCache | None) -> Result:
    ordered = False
    limited = False
    for stage in stages:
        word = re.match(r"[A-Za-z][A-Za-z-]*", stage)
        if word is None or word.group(0).lower() not in _OPERATORS:
            name = word.group(0) if word else stage[:20]
            raise KqlError(f"the operator {name!r} is not in the emulator's KQL subset", name)
        p = _Parser(tokenize(stage))
        op = p.name().lower()
        if op == "where":
            pred = p.expr()
            rows = [r for r in rows if pred(r) is True]
        elif op in ("project", "extend"):
            pairs = [p.assignment()]
            while p.is_(","):
                p.next()
                pairs.append(p.assignment())
            if op == "project":
                rows = [{name: fn(r) for name, fn in pairs} for r in rows]
            else:
                rows = [{**r, **{name: fn(r) for name, fn in pairs}} for r in rows]
        elif op == "project-away":
            away = set(p.names())
            rows = [{k: v for k, v in r.items() if k not in away} for r in rows]
        elif op in ("order", "sort"):
            p.expect("by")
            keys: list[tuple[str, bool]] = []
            while True:
                col = p.name()
                desc = True  # Kusto's default order is descending
                if p.is_("asc") or p.is_("desc"):
                    desc = p.next().text.lower() == "desc"
                keys.append((col, desc))
                if not p.is_(","):
                    break
                p.next()
            for col, desc in reversed(keys):
                rows.sort(key=_column_key(col), reverse=desc)
            ordered = True
        elif op in ("take", "limit"):
            tok = p.next()
            if tok.kind != "num" or not isinstance(tok.value, int):
                raise KqlError(f"{op} needs a whole number", tok.text)
            rows = rows[: tok.value]
            limited = True
        elif op == "summarize":
            counting = False
            if p.is_("count"):
                p.next()
                p.expect("(")
                p.expect(")")
                counting = True
            by: list[str] = []
            if p.is_("by"):
                p.next()
                by = p.names()
            if not counting and not by:
                raise KqlError("summarize needs count() or by")
            groups: dict[tuple, int] = {}
            for r in rows:
                key = tuple(to_string(r.get(c)) if isinstance(r.get(c), (dict, list)) else r.get(c) for c in by)
                groups[key] = groups.get(key, 0) + 1
            rows = [{**dict(zip(by, key)), **({"count_": n} if counting else {})} for key, n in groups.items()]
            limited = True
        elif op == "mv-expand":
            target, fn = p.assignment()
            out: list[Row] = []
            for r in rows:
                value = fn(r)
                if isinstance(value, list) and value:
                    out.extend({**r, target: item} for item in value)
                else:
                    out.append({**r, target: None if isinstance(value, list) else value})
            rows = out
        elif op == "join":
            rows = _join(p, stage, rows, tables, subqueries)
        else:
            raise KqlError(f"the operator {op!r} is not in the emulator's KQL subset", op)
        if not p.at_end():
            raise KqlError(f"unexpected {p.peek().text!r} in {stage[:60]!r}", p.peek().text)
    return Result(rows, ordered, limited)


_TYPE_IS = re.compile(r"where\s+type\s*(?:=~|==)\s*'([^'\\]*)'", re.I)
_TYPE_IN = re.compile(r"where\s+type\s+in~?\s*\(\s*('[^'\\]*'(?:\s*,\s*'[^'\\]*')*)\s*\)", re.I)


def _types_kept(stage: str) -> frozenset[str] | None:
    """The types a first ``where`` keeps, when it is only a type test (lower case)."""
    stage = stage.strip()
    m = _TYPE_IS.fullmatch(stage)
    if m is not None:
        return frozenset({m.group(1).lower()})
    m = _TYPE_IN.fullmatch(stage)
    if m is not None:
        return frozenset(t.strip()[1:-1].lower() for t in m.group(1).split(","))
    return None


def _join(p: _Parser, stage: str, left_rows: list[Row], tables: TableSource, subqueries: SubqueryCache | None) -> list[Row]:
    kind = "innerunique"
    if p.is_("kind"):
        p.next()
        p.expect("=")
        kind = p.name().lower()
    if kind not in ("leftouter", "inner", "innerunique"):
        raise KqlError(f"join kind={kind} is not in the emulator's KQL subset", kind)
    p.expect("(")
    depth = 1
    start = p.i
    while depth:
        tok = p.next()
        if tok.kind == "end":
            raise KqlError("a join's right side needs its closing parenthesis")
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
    inner_text = _inner_text(stage)
    del start
    if subqueries is None:
        right_rows = run(inner_text, tables).rows
    else:
        right_rows = subqueries(inner_text, lambda: run(inner_text, tables, subqueries=subqueries).rows)
    p.expect("on")
    if p.peek().text.lower() == "$left":
        p.next()
        p.expect(".")
        left_key = p.name()
        p.expect("==")
        if p.name().lower() != "$right":
            raise KqlError("expected $right")
        p.expect(".")
        right_key = p.name()
    else:
        left_key = right_key = p.name()
    index: dict[Any, list[Row]] = {}
    for r in right_rows:
        index.setdefault(r.get(right_key), []).append(r)
    if kind == "innerunique":
        index = {k: v[:1] for k, v in index.items()}
    right_columns: list[str] = list(dict.fromkeys(k for r in right_rows for k in r))
    out: list[Row] = []
    for left in left_rows:
        matches = index.get(left.get(left_key)) if left.get(left_key) is not None else None
        if not matches:
            if kind == "leftouter":
                out.append({**left, **{_suffixed(c, left): None for c in right_columns}})
            continue
        for right in matches:
            merged = dict(left)
            for c, v in right.items():
                merged[_suffixed(c, left)] = v
            out.append(merged)
    return out


def _suffixed(column: str, left: Row) -> str:
    return column + "1" if column in left else column


def _inner_text(stage: str) -> str:
    start = stage.index("(")
    for i, ch, depth in _outside_quotes(stage, start):
        if ch == ")" and depth == 0:
            return stage[start + 1 : i]
    raise KqlError("a join's right side needs its closing parenthesis")


def output_columns(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(k for r in rows[:1000] for k in r))
