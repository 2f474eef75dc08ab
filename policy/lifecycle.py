"""The violation lifecycle as a pure function: what was stored + this evaluation + now -> transitions.

Per (rule, source, task_id):

===================  ================  ==========================================================
stored state         this evaluation   transition (state afterwards; first_seen)
===================  ================  ==========================================================
none                 open              ``new`` (open; now)
open                 open              ``persisting`` (open; kept)
resolved             open              ``reopened`` (open; now: a new episode; ``reopened`` += 1)
waived               open              ``reopened`` (open; kept: it was never fixed, the waiver
                                       expired or was removed)
any / none           waived            ``waived`` (waived; kept, or now when new)
open / waived        absent            ``resolved`` (resolved; resolved_at = now), but only when
                                       the violation's source was evaluated this run
resolved             absent            nothing
===================  ================  ==========================================================

``sources_evaluated=None`` means every source was evaluated. A per-owner violation (source ``*``)
counts as evaluated whenever anything was.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from mapping.schema import Violation, ViolationState

Key = tuple[str, str, str]  # (rule, source, task_id)
Kind = Literal["new", "persisting", "reopened", "waived", "resolved"]


@dataclass(frozen=True, slots=True)
class StoredViolation:
    """What the store remembers of one violation."""

    state: ViolationState
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    reopened: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    """One change to write. ``violation`` is None for ``resolved`` (nothing was found this time)."""

    key: Key
    kind: Kind
    state: ViolationState
    first_seen: datetime
    resolved_at: datetime | None
    reopened: int
    violation: Violation | None


@dataclass(frozen=True, slots=True)
class LifecycleSummary:
    """Counts of one evaluation: new, still open, fixed, waived (now), and back again."""

    new: int = 0
    persisting: int = 0
    resolved: int = 0
    waived: int = 0
    reopened: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "persisting": self.persisting,
            "resolved": self.resolved,
            "waived": self.waived,
            "reopened": self.reopened,
        }


def plan_lifecycle(
    previous: Mapping[Key, StoredViolation],
    current: Sequence[Violation],
    now: datetime,
    *,
    sources_evaluated: Collection[str] | None = None,
) -> list[Transition]:
    """The transitions that take ``previous`` to this evaluation (see the module table)."""
    out: list[Transition] = []
    seen: set[Key] = set()
    for v in current:
        key = v.key
        if key in seen:
            continue
        seen.add(key)
        prev = previous.get(key)
        if v.state is ViolationState.WAIVED:
            first = prev.first_seen if prev is not None and prev.state is not ViolationState.RESOLVED else now
            reopened = prev.reopened if prev is not None else 0
            out.append(
                Transition(key, "waived", ViolationState.WAIVED, first, None, reopened, _stamp(v, first))
            )
            continue
        if prev is None:
            out.append(Transition(key, "new", ViolationState.OPEN, now, None, 0, _stamp(v, now)))
        elif prev.state is ViolationState.OPEN:
            out.append(
                Transition(
                    key,
                    "persisting",
                    ViolationState.OPEN,
                    prev.first_seen,
                    None,
                    prev.reopened,
                    _stamp(v, prev.first_seen),
                )
            )
        else:
            first = now if prev.state is ViolationState.RESOLVED else prev.first_seen
            out.append(
                Transition(
                    key, "reopened", ViolationState.OPEN, first, None, prev.reopened + 1, _stamp(v, first)
                )
            )
    evaluated = None if sources_evaluated is None else set(sources_evaluated)
    for key, prev in previous.items():
        if key in seen or prev.state is ViolationState.RESOLVED:
            continue
        source = key[1]
        if evaluated is not None and source not in evaluated and not (source == "*" and evaluated):
            continue
        out.append(
            Transition(key, "resolved", ViolationState.RESOLVED, prev.first_seen, now, prev.reopened, None)
        )
    out.sort(key=lambda tr: tr.key)
    return out


def summarize(transitions: Sequence[Transition]) -> LifecycleSummary:
    counts = {"new": 0, "persisting": 0, "resolved": 0, "waived": 0, "reopened": 0}
    for tr in transitions:
        counts[tr.kind] += 1
    return LifecycleSummary(**counts)


def _stamp(v: Violation, first_seen: datetime) -> Violation:
    return v.model_copy(update={"first_seen": first_seen})
