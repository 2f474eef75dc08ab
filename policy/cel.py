"""Custom rules in CEL: parsed by ``cel-python`` (``celpy``), checked, and compiled once.

The interpreter of ``celpy`` costs ~250 µs per evaluation, far too slow for a million tasks. So each
expression is parsed with celpy's own parser and the common subset (literals, ``task``/``project``
members, comparisons, arithmetic, ``&& || ! ?:``, ``in``, lists and maps, ``size``, ``has``,
``startsWith``/``endsWith``/``contains``/``matches``, ``int``/``double``/``string``, ``exists``/``all``)
is translated into a Python closure that reads the :class:`~mapping.schema.Task` directly. Anything
outside the subset runs on celpy's interpreter, with the activation built from ``Task.export()``.
Both paths see the same values: instants and dates are ISO strings exactly as in the export (``now``
and ``today`` too), so ``task.due_date < today`` compares ``YYYY-MM-DD`` strings.

Semantics follow the current CEL spec where celpy 0.5 is older: equality is heterogeneous
(``task.owner != null``, ``task.days_to_due != null``, ``1 == 1.0`` are plain booleans, where celpy
raises "no matching overload"), ``string(true)`` is ``"true"``, and ints and doubles compare and mix in
arithmetic. Expressions outside the fast subset get celpy's own (stricter) semantics.

A rule whose evaluation errors (a missing custom field, ``null > 1``) does not match: CEL's error
value is treated as "no violation". (One corner differs from full CEL: ``error || true`` is an error
in the fast path, hence no match, where CEL's commutative ``||`` gives true.)

Static checks at load time, reported as :class:`errors.ConfigError` with the rule id, line and column:
syntax errors, unknown variables, unknown ``task.``/``project.`` keys, and operand types that can never
match (``task.title > 5``, ``task.is_open && "x"``); the whole expression must be a bool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError

from errors import ConfigError
from mapping.schema import SalesProject, Task
from policy.cel_translate import (
    BOOL_TYPES,
    CEL_RUNTIME_ERRORS,
    HELPERS,
    CelContext,
    CelTypeError,
    Translator,
    Unsupported,
    days_since,
    days_to_due,
)

__all__ = ["CEL_RUNTIME_ERRORS", "CelContext", "CompiledCel", "compile_rule", "task_activation"]

# ---- compiled rule --------------------------------------------------------------------------------

Matcher = Callable[[Task, SalesProject | None, CelContext], bool]


@dataclass(frozen=True)
class CompiledCel:
    """One compiled expression. ``fast`` is the translated closure, or None (celpy interprets)."""

    rule_id: str
    expression: str
    fast: Callable[[Task, SalesProject | None, CelContext], Any] | None
    program: Any  # celpy Runner

    def matches(self, task: Task, project: SalesProject | None, ctx: CelContext) -> bool:
        """True when the expression holds for this task; an evaluation error counts as false."""
        if self.fast is not None:
            try:
                return self.fast(task, project, ctx) is True
            except CEL_RUNTIME_ERRORS:
                return False
        return self.interpret(task, project, ctx)

    def interpret(self, task: Task, project: SalesProject | None, ctx: CelContext) -> bool:
        """celpy's interpreter (the reference semantics; also used to cross-check the fast path)."""
        activation = {
            "task": json_to_cel(task_activation(task, ctx)),
            "project": json_to_cel(project.export() if project else None),
            "now": celpy.celtypes.StringType(ctx.now_s),
            "today": celpy.celtypes.StringType(ctx.today_s),
        }
        try:
            result = self.program.evaluate(activation)
        except CELEvalError:
            return False
        return isinstance(result, celpy.celtypes.BoolType) and bool(result)


def task_activation(task: Task, ctx: CelContext) -> dict[str, Any]:
    """``task`` for CEL: ``Task.export()`` plus the convenience keys."""
    data = task.export()
    data["is_open"] = task.is_open
    data["has_owner"] = task.owner is not None
    data["has_due"] = task.has_due
    data["days_to_due"] = days_to_due(task, ctx)
    data["days_since_update"] = days_since(task.updated_at, ctx)
    data["days_since_created"] = days_since(task.created_at, ctx)
    return data


_ENV: celpy.Environment | None = None


def _env() -> celpy.Environment:
    global _ENV
    if _ENV is None:
        _ENV = celpy.Environment()
    return _ENV


def compile_rule(rule_id: str, expression: str, *, where: str = "policies") -> CompiledCel:
    """Parse, check and compile one expression; errors name the rule id and the position."""
    env = _env()
    key = f"custom[{rule_id}].expression"
    try:
        tree = env.compile(expression)
    except CELParseError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise ConfigError(
            f"CEL syntax error at line {exc.line}, column {exc.column}: {first}", path=where, key=key
        ) from None
    fast: Callable[[Task, SalesProject | None, CelContext], Any] | None = None
    try:
        code, typ = Translator().expr(tree)
        if typ not in BOOL_TYPES:
            raise CelTypeError(f"the expression must yield a bool, it yields {typ}", tree)
        fast = eval(f"lambda t, p, c: {code}", dict(HELPERS))
    except CelTypeError as exc:
        raise ConfigError(
            f"CEL type error at line {exc.line}, column {exc.column}: {exc}", path=where, key=key
        ) from None
    except Unsupported:
        fast = None
    return CompiledCel(rule_id=rule_id, expression=expression, fast=fast, program=env.program(tree))
