"""Shared defaults of the flows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params.yaml"


def run_name(prefix: str, key: str) -> str:
    """Returns a flow run name like monitor-batch-012-2011-04-16 from a runtime parameter."""
    from prefect.runtime import flow_run

    value = flow_run.parameters.get(key)
    return f"{prefix}-{Path(str(value)).stem}" if value else prefix


SLOT_LEASE_SECONDS = 60.0  # a killed holder's slot is freed by Prefect after this at the latest


@contextmanager
def one_at_a_time(
    model_name: str, others_alive: bool, timeout_seconds: float = 1800
) -> Iterator[None]:
    """Holds the Prefect global concurrency limit `promotion-<model>` (limit 1, created on first
    use): at most one retrain, promotion or rollback of a model runs at a time; the others wait
    for the slot (visible in the Prefect UI under Concurrency).

    A killed holder leaves its slot taken in the database when its temporary Prefect server dies
    with it (the lease that would free it lived in that server). So the caller records its own
    event in the ledger first and tells whether any *other* live process has one
    (`others_alive`): when none has, a taken slot is stale and is released, with a log line.
    """
    from prefect import get_client, get_run_logger
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = f"promotion-{model_name}"
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=1)
                )
            except ObjectAlreadyExists:  # another run created it meanwhile
                pass
        else:
            if limit.active_slots > 0 and not others_alive:
                client.update_global_concurrency_limit(
                    name, GlobalConcurrencyLimitUpdate(active_slots=0)
                )
                get_run_logger().warning(
                    "released %d slot(s) of concurrency limit %s: no live process holds one "
                    "(a killed run left it taken)",
                    limit.active_slots,
                    name,
                )
    with concurrency(
        name,
        occupy=1,
        strict=True,
        timeout_seconds=timeout_seconds,
        lease_duration=SLOT_LEASE_SECONDS,
    ):
        yield


def tag_run(*tags: str | None) -> None:
    """Adds tags to the current flow run, so the Prefect UI can filter runs by model and by what
    happened (e.g. drift, retrain, promoted, rejected). A failure to tag is logged, never fatal."""
    from prefect import get_client, get_run_logger
    from prefect.runtime import flow_run

    wanted = {t for t in tags if t}
    if not flow_run.id or not wanted:
        return
    try:
        with get_client(sync_client=True) as client:
            current = set(client.read_flow_run(flow_run.id).tags or [])
            if not wanted <= current:
                client.update_flow_run(flow_run.id, tags=sorted(current | wanted))
    except Exception as exc:  # noqa: BLE001 - tags are a convenience; the run goes on
        get_run_logger().warning("could not tag the flow run with %s: %s", sorted(wanted), exc)


def promote_first(proj: Any, cand: Any, reason: str) -> None:
    """The first champion (bootstrap, adopt): the first-model policy judges the candidate's own
    validation metrics (no labelled batch exists yet), the decision is recorded, the aliases
    move, and the drift reference is marked as the new champion's.

    Raises:
        PromotionRejected: the policy refused the first model.
    """
    from modelwatch.decide import promotion
    from modelwatch.errors import PromotionRejected
    from modelwatch.stores import gate
    from tasks.events import mark_reference
    from tasks.registry import apply_promotion

    decision = promotion.decide_first_model(
        cand.cv_metrics,
        proj.settings.promotion,
        proj.settings.project.task,
        gate=gate.threshold_gate,
        candidate_version=cand.version,
        decision_id=f"promotion-{proj.model_name}-v{cand.version}",
    )
    baseline = cand.cv_metrics[proj.settings.retrain.performance_metric]
    apply_promotion(proj, decision, cand.run_id, baseline, reason)
    if not decision.promote:
        raise PromotionRejected(f"first model not promoted: {decision.summary()}")
    mark_reference(proj, cand.version)
