"""The steps after the pull: policy evaluation (violation lifecycle), outbox planning, push.

Each is a ``PostStep`` of :class:`sync.engine.SyncEngine`; ``default_steps`` gives the job's
order. Planning commits with the violation changes it follows (level-triggered: the planner
reconciles the violations table with the outbox, so a crash between the two replans the same
actions with the same idempotency keys). Push runs only with ``--push`` / ``push: true`` and never
for ``import``; ``--dry-run`` shows the plan and writes nothing to the tools.
"""

from __future__ import annotations

import asyncio
import logging

from sync.engine import PostStep, SyncContext
from sync.outbox import plan_and_store
from sync.push import push_pending
from sync.violations import run_policy

log = logging.getLogger(__name__)


def _synced_sources(ctx: SyncContext) -> list[str]:
    """Sources whose data is fresh enough to resolve violations on (not failed as a whole)."""
    return [name for name, rec in ctx.receipt.sources.items() if rec.status != "failed"]


async def policy_step(ctx: SyncContext) -> None:
    summary = await asyncio.to_thread(
        run_policy,
        ctx.store,
        ctx.config,
        now=ctx.now,
        run_id=ctx.receipt.run_id,
        base_dir=ctx.options.base_dir,
        sources_evaluated=_synced_sources(ctx),
    )
    ctx.receipt.policy = summary.as_dict()
    log.info("policy: %s", ", ".join(f"{k} {v}" for k, v in ctx.receipt.policy.items()))


async def plan_step(ctx: SyncContext) -> None:
    planned = await asyncio.to_thread(
        plan_and_store,
        ctx.store.engine,
        ctx.config,
        now=ctx.now,
        run_id=ctx.receipt.run_id,
        base_dir=ctx.options.base_dir,
    )
    ctx.receipt.push = {"planned": planned}


async def push_step(ctx: SyncContext) -> None:
    opts = ctx.options
    wanted = ctx.config.push if opts.push is None else opts.push
    if opts.command == "import" or not (wanted or opts.dry_run):
        return
    summary = await push_pending(
        ctx.config,
        ctx.store.engine,
        now=ctx.now,
        sources=_synced_sources(ctx),
        dry_run=opts.dry_run,  # reached without `wanted` only for a dry run
        run_id=ctx.receipt.run_id,
        http_options=ctx.http_options,
        registry=ctx.registry,
    )
    data = {k: v for k, v in summary.to_dict().items() if k != "outcomes"}
    if summary.dry_run:
        data["would_write"] = sum(1 for o in summary.outcomes if o.result == "planned")
    ctx.receipt.push = {**(ctx.receipt.push or {}), **data}
    ctx.push_summary = summary
    if summary.failed:
        ctx.receipt.warnings.append(f"push: {summary.failed} action(s) failed; see `salesync status`")


def default_steps() -> list[PostStep]:
    return [policy_step, plan_step, push_step]
