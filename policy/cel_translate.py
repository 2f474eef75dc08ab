"""CEL -> Python translation for the common subset (see :mod:`policy.cel`): the static checks
(unknown names and keys, impossible operand types) and the runtime helpers the closures call."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from lark import Token, Tree

from mapping.schema import Person, SalesProject, Task, iso_utc


@dataclass(frozen=True, slots=True)
class CelContext:
    """What an expression may read besides ``task`` and ``project``."""

    now: datetime
    today: date
    now_s: str
    today_s: str


# task key -> (python expression over ``t`` and ``c``, static type)
_S, _I, _F, _B, _L, _M, _DYN, _NULL = "string", "int", "double", "bool", "list", "map", "dyn", "null"
_TASK_KEYS: Final[dict[str, tuple[str, str]]] = {
    **{k: (f"t.{k}", _S) for k in ("source", "kind", "id", "title")},
    **{k: (f"t.{k}", _S) for k in ("url", "project_id", "project", "source_status", "priority", "parent_id")},
    "status": ("t.status", _S),  # a StrEnum: compares as its string
    "owner": ("_person(t.owner)", _M),
    "assignees": ("_people(t.assignees)", _L),
    "due_date": ("_d(t.due_date)", _S),
    "start_date": ("_d(t.start_date)", _S),
    **{k: (f"_ts(t.{k})", _S) for k in ("due_at", "completed_at", "created_at", "updated_at")},
    **{k: (f"t.{k}", _B) for k in ("completed", "is_milestone", "archived")},
    "labels": ("t.labels", _L),
    "fields": ("t.fields", _M),
    # convenience keys
    "is_open": ("t.is_open", _B),
    "has_owner": ("(t.owner is not None)", _B),
    "has_due": ("t.has_due", _B),
    "days_to_due": ("days_to_due(t, c)", _I),
    "days_since_update": ("days_since(t.updated_at, c)", _I),
    "days_since_created": ("days_since(t.created_at, c)", _I),
}
_PROJECT_KEYS: Final[dict[str, tuple[str, str]]] = {
    **{
        k: (f"_p(p).{k}", _S)
        for k in ("source", "kind", "id", "name", "url", "customer", "currency", "stage")
    },
    "owner": ("_person(_p(p).owner)", _M),
    "deal_value": ("_p(p).deal_value", _F),
    "start_date": ("_d(_p(p).start_date)", _S),
    "due_date": ("_d(_p(p).due_date)", _S),
    "status": ("_p(p).status.value", _S),
    "archived": ("_p(p).archived", _B),
    "updated_at": ("_ts(_p(p).updated_at)", _S),
    "fields": ("_p(p).fields", _M),
}
_NUMERIC: Final = frozenset({_I, _F})
BOOL_TYPES: Final = frozenset({_B, _DYN})  # what a whole rule expression may yield


class Unsupported(Exception):
    """The construct is outside the fast subset: use celpy's interpreter."""


class CelTypeError(Exception):
    def __init__(self, message: str, node: Tree[Any] | Token) -> None:
        super().__init__(message)
        self.line, self.column = _pos(node)


def _pos(node: Tree[Any] | Token) -> tuple[int | None, int | None]:
    if isinstance(node, Token):
        return node.line, node.column
    meta = node.meta
    return getattr(meta, "line", None), getattr(meta, "column", None)


# ---- runtime helpers of the fast path ---------------------------------------------------------


def _person(p: Person | None) -> dict[str, Any] | None:
    return None if p is None else p.export()


def _people(ps: tuple[Person, ...]) -> list[dict[str, Any]]:
    return [p.export() for p in ps]


def _d(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _ts(value: datetime | None) -> str | None:
    return iso_utc(value)


def _p(p: SalesProject | None) -> SalesProject:
    if p is None:
        raise LookupError("no project")
    return p


def days_to_due(t: Task, c: CelContext) -> int | None:
    if t.due_date is not None:
        return (t.due_date - c.today).days
    if t.due_at is not None:
        return (t.due_at.date() - c.now.date()).days
    return None


def days_since(value: datetime | None, c: CelContext) -> int | None:
    return None if value is None else (c.now - value).days


def _dot(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        return obj[name]
    raise TypeError(f"no field {name!r}")


def _has(obj: Any, name: str) -> bool:
    return isinstance(obj, dict) and name in obj


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError("not a bool")


def _div(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int):
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q
    return a / b


def _size(x: Any) -> int:
    if isinstance(x, str | list | tuple | dict):
        return len(x)
    raise TypeError("size() of a non-container")


def _string(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if x is None:
        raise TypeError("string(null)")
    return str(x)


HELPERS: Final[dict[str, Any]] = {
    f.__name__: f
    for f in (_person, _people, _d, _ts, _p, days_to_due, days_since, _dot, _has, _bool, _div, _size, _string)
}
HELPERS["_re"] = re


# ---- translation --------------------------------------------------------------------------------

_REL_OPS: Final = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
}
_ARITH_OPS: Final = {
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}


class Translator:
    def __init__(self) -> None:
        self.locals: dict[str, str] = {}  # CEL comprehension variable -> python name

    def expr(self, node: Tree[Any]) -> tuple[str, str]:
        kind = node.data
        ch: list[Any] = list(node.children)
        if kind == "expr":
            cond = self.expr(ch[0])
            if len(ch) == 1 or ch[1] is None:
                return cond
            self._need_bool(cond, ch[0])
            a, b = self.expr(ch[1]), self.expr(ch[2])
            typ = a[1] if a[1] == b[1] else _DYN
            return f"({a[0]} if {self._as_bool(cond)} else {b[0]})", typ
        if kind in ("conditionalor", "conditionaland"):
            if len(ch) == 1 or ch[0] is None:
                return self.expr(ch[-1])
            left, right = self.expr(ch[0]), self.expr(ch[1])
            self._need_bool(left, ch[0])
            self._need_bool(right, ch[1])
            op = "or" if kind == "conditionalor" else "and"
            return f"({self._as_bool(left)} {op} {self._as_bool(right)})", _B
        if kind == "relation":
            if len(ch) == 1:
                return self.expr(ch[0])
            op_node, right_node = ch
            left = self.expr(op_node.children[0])
            right = self.expr(right_node)
            return self._relation(_REL_OPS[op_node.data], left, right, op_node)
        if kind in ("addition", "multiplication"):
            if len(ch) == 1:
                return self.expr(ch[0])
            op_node, right_node = ch
            left = self.expr(op_node.children[0])
            right = self.expr(right_node)
            return self._arith(_ARITH_OPS[op_node.data], left, right, op_node)
        if kind == "unary":
            if len(ch) == 1:
                return self.expr(ch[0])
            operand = self.expr(ch[1])
            if ch[0].data == "unary_not":
                self._need_bool(operand, ch[1])
                return f"(not {self._as_bool(operand)})", _B
            if operand[1] not in (*_NUMERIC, _DYN):
                raise CelTypeError(f"unary - needs a number, got {operand[1]}", node)
            return f"(-{operand[0]})", operand[1]
        if kind in ("member", "primary"):
            return self.expr(ch[0])
        if kind == "paren_expr":
            return self.expr(ch[0])
        if kind == "literal":
            return self._literal(ch[0])
        if kind == "ident":
            return self._ident(ch[0])
        if kind == "member_dot":
            return self._member_dot(ch[0], ch[1])
        if kind == "member_index":
            base, index = self.expr(ch[0]), self.expr(ch[1])
            if base[1] not in (_L, _M, _DYN):
                raise CelTypeError(f"cannot index a {base[1]}", node)
            return f"{base[0]}[{index[0]}]", _DYN
        if kind == "member_dot_arg":
            return self._method(ch[0], ch[1], ch[2] if len(ch) > 2 else None, node)
        if kind == "ident_arg":
            return self._function(ch[0], ch[1] if len(ch) > 1 else None, node)
        if kind == "list_lit":
            items = [self.expr(e)[0] for e in (ch[0].children if ch and ch[0] is not None else [])]
            return "[" + ", ".join(items) + "]", _L
        if kind == "map_lit":
            inits = ch[0].children if ch and ch[0] is not None else []
            pairs = [
                f"{self.expr(k)[0]}: {self.expr(v)[0]}" for k, v in zip(inits[::2], inits[1::2], strict=True)
            ]
            return "{" + ", ".join(pairs) + "}", _M
        raise Unsupported(kind)

    # -- pieces

    @staticmethod
    def _need_bool(operand: tuple[str, str], node: Tree[Any]) -> None:
        if operand[1] not in (_B, _DYN):
            raise CelTypeError(f"expected a bool, got {operand[1]}", node)

    @staticmethod
    def _as_bool(operand: tuple[str, str]) -> str:
        return operand[0] if operand[1] == _B else f"_bool({operand[0]})"

    @staticmethod
    def _relation(op: str, left: tuple[str, str], right: tuple[str, str], node: Tree[Any]) -> tuple[str, str]:
        lt, rt = left[1], right[1]
        if op == "in":
            if rt not in (_L, _M, _DYN):
                raise CelTypeError(f"'in' needs a list or map on the right, got {rt}", node)
            return f"({left[0]} in {right[0]})", _B
        known = _DYN not in (lt, rt)
        if op in ("==", "!="):
            if known and _NULL not in (lt, rt) and lt != rt and not (lt in _NUMERIC and rt in _NUMERIC):
                raise CelTypeError(f"cannot compare {lt} {op} {rt}", node)
            return f"({left[0]} {op} {right[0]})", _B
        if _NULL in (lt, rt) or _B in (lt, rt) or _L in (lt, rt) or _M in (lt, rt):
            raise CelTypeError(f"no ordering {lt} {op} {rt}", node)
        if known and lt != rt and not (lt in _NUMERIC and rt in _NUMERIC):
            raise CelTypeError(f"cannot compare {lt} {op} {rt}", node)
        return f"({left[0]} {op} {right[0]})", _B

    @staticmethod
    def _arith(op: str, left: tuple[str, str], right: tuple[str, str], node: Tree[Any]) -> tuple[str, str]:
        lt, rt = left[1], right[1]
        allowed = {*_NUMERIC, _DYN} | ({_S, _L} if op == "+" else set())
        if (
            lt not in allowed
            or rt not in allowed
            or (_DYN not in (lt, rt) and (lt in _NUMERIC) != (rt in _NUMERIC))
        ):
            raise CelTypeError(f"no operator {lt} {op} {rt}", node)
        typ = lt if lt == rt else (_F if {lt, rt} == set(_NUMERIC) else _DYN)
        if op == "/":
            return f"_div({left[0]}, {right[0]})", typ
        if op == "%":
            raise Unsupported("%")  # CEL's truncating modulo: leave to celpy
        return f"({left[0]} {op} {right[0]})", typ

    @staticmethod
    def _literal(token: Token) -> tuple[str, str]:
        text = str(token)
        kind = token.type
        if kind == "NULL_LIT":
            return "None", _NULL
        if kind == "BOOL_LIT":
            return ("True" if text == "true" else "False"), _B
        if kind == "INT_LIT":
            return repr(int(text, 0) if "x" not in text else int(text, 16)), _I
        if kind == "FLOAT_LIT":
            return repr(float(text)), _F
        if kind in ("STRING_LIT", "MLSTRING_LIT"):
            if "\\u" in text or "\\x" in text or re.search(r"\\\d", text):
                raise Unsupported("escape")
            return repr(ast.literal_eval(text)), _S
        raise Unsupported(kind)

    def _ident(self, token: Token) -> tuple[str, str]:
        name = str(token)
        if name in self.locals:
            return self.locals[name], _DYN
        if name == "task":
            return "t", "task"
        if name == "project":
            return "p", "project"
        if name == "now":
            return "c.now_s", _S
        if name == "today":
            return "c.today_s", _S
        raise CelTypeError(f"undeclared reference {name!r} (known: task, project, now, today)", token)

    def _member_dot(self, base_node: Tree[Any], name_tok: Token) -> tuple[str, str]:
        base = self.expr(base_node)
        name = str(name_tok)
        if base[1] in ("task", "project"):
            keys = _TASK_KEYS if base[1] == "task" else _PROJECT_KEYS
            if name not in keys:
                raise CelTypeError(
                    f"{base[1]} has no field {name!r} (known: {', '.join(sorted(keys))})", name_tok
                )
            return keys[name]
        if base[1] not in (_M, _DYN):
            raise CelTypeError(f"a {base[1]} has no fields", name_tok)
        return f"_dot({base[0]}, {name!r})", _DYN

    def _args(self, exprlist: Tree[Any] | None) -> list[Tree[Any]]:
        return list(exprlist.children) if exprlist is not None else []

    def _function(self, name_tok: Token, exprlist: Tree[Any] | None, node: Tree[Any]) -> tuple[str, str]:
        name = str(name_tok)
        args = self._args(exprlist)
        if name == "has" and len(args) == 1:
            target = _strip(args[0])
            if target.data != "member_dot":
                raise CelTypeError("has() needs a field selection like has(task.fields.x)", node)
            base = self.expr(target.children[0])
            field = str(target.children[1])
            if base[1] in ("task", "project"):
                keys = _TASK_KEYS if base[1] == "task" else _PROJECT_KEYS
                return ("True" if field in keys else "False"), _B
            return f"_has({base[0]}, {field!r})", _B
        if len(args) != 1:
            raise Unsupported(name)
        arg = self.expr(args[0])
        if name == "size":
            return f"_size({arg[0]})", _I
        if name == "int":
            return f"int({arg[0]})", _I
        if name == "double":
            return f"float({arg[0]})", _F
        if name == "string":
            return f"_string({arg[0]})", _S
        raise Unsupported(name)

    def _method(
        self, base_node: Tree[Any], name_tok: Token, exprlist: Tree[Any] | None, node: Tree[Any]
    ) -> tuple[str, str]:
        name = str(name_tok)
        args = self._args(exprlist)
        if name in ("exists", "all") and len(args) == 2:
            var = _strip(args[0])
            if var.data != "ident":
                raise CelTypeError(f"{name}() needs a variable name first", node)
            base = self.expr(base_node)
            cel_var = str(var.children[0])
            py_var = f"v_{cel_var}_{len(self.locals)}"
            saved = dict(self.locals)
            self.locals[cel_var] = py_var
            try:
                pred = self.expr(args[1])
            finally:
                self.locals = saved
            self._need_bool(pred, args[1])
            fn = "any" if name == "exists" else "all"
            return f"{fn}({self._as_bool(pred)} for {py_var} in {base[0]})", _B
        base = self.expr(base_node)
        if name == "size" and not args:
            return f"_size({base[0]})", _I
        if name in ("startsWith", "endsWith", "contains", "matches") and len(args) == 1:
            if base[1] not in (_S, _DYN):
                raise CelTypeError(f"{name}() needs a string, got {base[1]}", node)
            arg = self.expr(args[0])
            if arg[1] not in (_S, _DYN):
                raise CelTypeError(f"{name}() needs a string argument, got {arg[1]}", node)
            py = {
                "startsWith": f"{base[0]}.startswith({arg[0]})",
                "endsWith": f"{base[0]}.endswith({arg[0]})",
                "contains": f"({arg[0]} in {base[0]})",
                "matches": f"(_re.search({arg[0]}, {base[0]}) is not None)",
            }[name]
            return py, _B
        raise Unsupported(name)


def _strip(node: Tree[Any]) -> Tree[Any]:
    """Descend through single-child wrapper nodes (expr -> ... -> primary)."""
    while (
        isinstance(node, Tree)
        and node.data
        in (
            "expr",
            "conditionalor",
            "conditionaland",
            "relation",
            "addition",
            "multiplication",
            "unary",
            "member",
            "primary",
        )
        and len([c for c in node.children if c is not None]) == 1
        and isinstance(node.children[-1], Tree)
    ):
        node = node.children[-1]
    return node


# What a translated expression raises where CEL would give an error value (= no match).
CEL_RUNTIME_ERRORS: Final = (
    TypeError,
    KeyError,
    LookupError,
    ValueError,
    AttributeError,
    IndexError,
    ZeroDivisionError,
    re.error,
)
