"""MLflow model registry adapter: aliases champion, challenger and previous_champion.

Every move of `champion` is a transaction over the alias history (stores.alias_history) and
the registry, in this order: `prepared` record, previous_champion, champion, `committed` record.
A crash anywhere leaves the old or the new champion in place; `recover` (called first by every
move) finishes the transaction if the champion already moved, and undoes it otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from modelwatch.errors import RegistryError
from modelwatch.stores import tracking
from modelwatch.stores.alias_history import CHAMPION, AliasHistory

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
PREVIOUS = "previous_champion"
# CHAMPION ("champion") comes from alias_history, which needs it for champion_at


@dataclass(frozen=True)
class ModelVersionInfo:
    version: str
    tags: dict[str, str]
    run_id: str | None


def newest_trained_through(client: Any, name: str) -> int | None:
    """Returns trained_through_batch of the newest registered version, if any."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(filter_string=f"name = {tracking.quoted(name)}")
    except MlflowException as exc:
        tracking.raise_if_unavailable(client, exc)
        return None
    if not versions:
        return None
    newest = max(versions, key=lambda v: int(v.version))
    value = dict(newest.tags).get("trained_through_batch")
    return int(value) if value not in (None, "") else None


def get_alias(client: Any, name: str, alias: str) -> ModelVersionInfo | None:
    """Returns the version an alias points to, or None if the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        tracking.raise_if_unavailable(client, exc)
        return None
    return ModelVersionInfo(str(mv.version), dict(mv.tags), mv.run_id)


def require_alias(client: Any, name: str, alias: str) -> ModelVersionInfo:
    """Returns the version behind an alias.

    Raises:
        RegistryError: the model or the alias does not exist.
    """
    info = get_alias(client, name, alias)
    if info is None:
        raise RegistryError(f"model {name!r} has no {alias!r} alias (run `modelwatch bootstrap`)")
    return info


def aliases(client: Any, name: str) -> dict[str, str]:
    """Returns alias -> version for a registered model ({} when it is not registered)."""
    from mlflow.exceptions import MlflowException

    try:
        return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}
    except MlflowException as exc:
        tracking.raise_if_unavailable(client, exc)
        return {}


def tag_version(client: Any, name: str, version: str, tags: dict[str, object]) -> None:
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def set_challenger(
    client: Any,
    name: str,
    version: str,
    *,
    history: AliasHistory | None = None,
    actor: str | None = None,
    via: str | None = None,
    reason: str = "",
    decision_id: str = "",
) -> None:
    """Points `challenger` at a version; with a history, as a recorded `set` transaction."""
    if history is None:
        client.set_registered_model_alias(name, CHALLENGER, version)
        return
    _require_version(client, name, version)
    with history.lock():
        _recover_locked(client, name, history, actor, via)
        old = get_alias(client, name, CHALLENGER)
        move = _Move("set", CHALLENGER, old.version if old else None, version, None, None)
        _run(client, name, history, move, actor, via, reason, decision_id)


def promote(
    client: Any,
    name: str,
    version: str,
    *,
    history: AliasHistory,
    actor: str | None = None,
    via: str | None = None,
    reason: str = "",
    decision_id: str = "",
    approval: dict[str, str] | None = None,
) -> str | None:
    """Makes `version` the champion and keeps the outgoing one as previous_champion.

    Promoting the current champion changes nothing and records nothing. `actor` defaults to
    $MODELWATCH_ACTOR or the login name; `via` names the caller (e.g. a flow run); `approval`
    (approval, approval_by, approval_reason) records a person's approval with the move.

    Returns:
        The outgoing champion version (the champion itself if it was promoted again), or None.

    Raises:
        RegistryError: the version does not exist, the history is locked or unreadable, or the
            registry failed mid-way (the move was then finished or undone before raising).
    """
    _require_version(client, name, version)
    with history.lock():
        _recover_locked(client, name, history, actor, via)
        old = get_alias(client, name, CHAMPION)
        if old is not None and old.version == version:
            log.info("model %s: version %s is the champion already", name, version)
            return old.version
        prev = get_alias(client, name, PREVIOUS)
        before = prev.version if prev else None
        after = old.version if old else before
        move = _Move("promote", CHAMPION, old.version if old else None, version, before, after)
        _run(client, name, history, move, actor, via, reason, decision_id, approval)
    return old.version if old else None


def rollback(
    client: Any,
    name: str,
    *,
    history: AliasHistory,
    reason: str,
    actor: str | None = None,
    via: str | None = None,
    decision_id: str = "",
) -> tuple[str, str]:
    """Makes previous_champion the champion again.

    previous_champion then points to the champion before the restored one according to the
    history (AliasHistory.champion_lineage), or is removed when the history knows none.

    Returns:
        (the rolled-back version, the restored champion version).

    Raises:
        RegistryError: the reason is blank, there is no champion or no previous_champion, or
            the registry failed mid-way (the move was then finished or undone before raising).
    """
    if not reason.strip():
        raise RegistryError(f"rollback of model {name!r} needs a reason (got {reason!r})")
    with history.lock():
        _recover_locked(client, name, history, actor, via)
        champion = get_alias(client, name, CHAMPION)
        if champion is None:
            raise RegistryError(f"model {name!r} has no 'champion' alias: nothing to roll back")
        prev = get_alias(client, name, PREVIOUS)
        if prev is None or prev.version == champion.version:
            raise RegistryError(
                f"model {name!r} has no 'previous_champion' alias to roll back to "
                f"(champion is version {champion.version})"
                if prev is None
                else f"model {name!r}: previous_champion is the champion (version {prev.version})"
            )
        after = _champion_before(history, prev.version, champion.version)
        move = _Move("rollback", CHAMPION, champion.version, prev.version, prev.version, after)
        _run(client, name, history, move, actor, via, reason, decision_id)
    return champion.version, prev.version


def recover(
    client: Any,
    name: str,
    history: AliasHistory,
    *,
    actor: str | None = None,
    via: str | None = None,
) -> Literal["committed", "aborted"] | None:
    """Finishes or undoes an interrupted move (the history ends with a `prepared` record).

    If the moved alias already points to the new version, previous_champion is set as the move
    intended and the move is committed; otherwise previous_champion is put back and the move is
    aborted. The alias itself is never moved here.

    Returns:
        The state written, or None when there was nothing to recover.
    """
    with history.lock():
        return _recover_locked(client, name, history, actor, via)


def load_model(
    client: Any, ledger: Any, name: str, alias: str, extra_trusted: Sequence[str] = ()
) -> Any:
    """Loads the scikit-learn pipeline behind an alias, verified first (stores.integrity:
    digest recorded at registration, skops with modelwatch's allow-list, never pickle).

    Raises:
        RegistryError: the alias does not exist.
        ModelIntegrityError: the version failed verification (not loaded).
    """
    from modelwatch.stores import integrity

    info = require_alias(client, name, alias)
    return integrity.load_verified(client, ledger, name, info.version, extra_trusted)


@dataclass(frozen=True)
class _Move:
    action: Literal["promote", "rollback", "set"]
    alias: str
    from_version: str | None
    to_version: str
    previous_before: str | None  # where previous_champion points now (champion moves only)
    previous_after: str | None  # where it points once the move is committed


def _run(
    client: Any,
    name: str,
    history: AliasHistory,
    move: _Move,
    actor: str | None,
    via: str | None,
    reason: str,
    decision_id: str,
    approval: dict[str, str] | None = None,
) -> None:
    """The transaction; the caller holds the history lock."""
    from mlflow.exceptions import MlflowException

    prepared = history.append(
        state="prepared",
        **vars(move),
        reason=reason,
        decision_id=decision_id,
        actor=actor,
        via=via,
        **(approval or {}),
    )
    try:
        if move.alias == CHAMPION:
            _point(client, name, PREVIOUS, move.previous_after)
        client.set_registered_model_alias(name, move.alias, move.to_version)
    except MlflowException as exc:
        state = _recover_locked(client, name, history, actor, via)
        raise RegistryError(
            f"model {name!r}: {move.action} of version {move.to_version} as {move.alias!r} "
            f"failed in the registry ({exc}); the move was {state}"
        ) from exc
    history.close(prepared, "committed", actor=actor, via=via)
    log.info(
        "model %s: %s %s -> %s (%s)",
        name,
        move.alias,
        move.from_version,
        move.to_version,
        move.action,
    )


def _recover_locked(
    client: Any, name: str, history: AliasHistory, actor: str | None, via: str | None
) -> Literal["committed", "aborted"] | None:
    last = history.last()
    if last is None or last.state != "prepared":
        return None
    found = get_alias(client, name, last.alias)
    found_version = found.version if found else None
    done = found_version == last.to_version
    if last.alias == CHAMPION:
        _point(client, name, PREVIOUS, last.previous_after if done else last.previous_before)
    state: Literal["committed", "aborted"] = "committed" if done else "aborted"
    note = (
        f"recovered: {last.alias!r} found at version {found_version} "
        f"(the move to {last.to_version} {'had happened' if done else 'had not happened'})"
    )
    history.close(last, state, actor=actor, via=via, note=note)
    log.warning(
        "model %s: interrupted %s (txn %d) %s, %s", name, last.action, last.txn, state, note
    )
    return state


def _champion_before(history: AliasHistory, restored: str, current: str) -> str | None:
    lineage = history.champion_lineage()
    if lineage[-2:] == [restored, current]:
        return lineage[-3] if len(lineage) >= 3 else None
    log.warning(
        "alias history of %s does not show %s replacing %s; previous_champion will be removed",
        history.model_name,
        current,
        restored,
    )
    return None


def _point(client: Any, name: str, alias: str, version: str | None) -> None:
    if version is None:
        client.delete_registered_model_alias(name, alias)
    else:
        client.set_registered_model_alias(name, alias, version)


def _require_version(client: Any, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        tracking.raise_if_unavailable(client, exc)
        raise RegistryError(f"model {name!r} has no version {version!r}") from exc
