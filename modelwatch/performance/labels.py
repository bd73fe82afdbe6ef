"""A labels file checked before it is taken in: a bad one must never break a later batch (pure).

Labels arrive late and from elsewhere (a join in a warehouse, a spreadsheet someone exported);
every later evaluation reads them, so a file that would fail there is refused at the door,
with every problem said in one line each, and kept aside (stores.project.ingest_labels).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from modelwatch.settings import DataSettings

MAX_SHOWN = 3
REQUEST_ID, ROW = "request_id", "row"  # a labels file of the prediction log's requests
MAX_KEY = 120  # characters of an id kept for matching labels to batches; longer ids are skipped


def id_keys(ids: pd.Series) -> list[str]:
    """Row ids as the text the ledger matches on: 7, 7.0 and "7" are one id; missing and
    over-long values (a rejected batch may hold anything) have no key."""
    out = []
    for value in ids.dropna().tolist():
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        key = str(value).strip()
        if 0 < len(key) <= MAX_KEY:
            out.append(key)
    return out


def key_of(value: object) -> str:
    """The key of one id (see id_keys); "" when it has none."""
    keys = id_keys(pd.Series([value], dtype=object))
    return keys[0] if keys else ""


def map_request_ids(
    frame: pd.DataFrame, data: DataSettings, known: Mapping[tuple[str, int], object]
) -> tuple[pd.DataFrame, list[str]]:
    """Returns a labels file keyed by `request_id` (+ `row`, default 0) instead of the id column
    as one keyed by the id column, and the problems that stop it. Each (request_id, row) gets
    the id its row had in the prediction log (`known`: the id the client sent), else the log's
    rule for a row sent without one: f"{request_id}:{row}". A file with the id column, or
    without request_id, is returned as it is."""
    if data.id in frame.columns or REQUEST_ID not in frame.columns:
        return frame, []
    problems = []
    requests = frame[REQUEST_ID]
    if requests.isna().any():
        missing = int(requests.isna().sum())
        problems.append(f"column {REQUEST_ID!r}: {missing} missing request id(s)")
    rows = frame[ROW] if ROW in frame.columns else pd.Series(0, index=frame.index)
    numbers = pd.to_numeric(rows, errors="coerce")
    bad = rows[numbers.isna() | (numbers < 0) | (numbers % 1 != 0)]
    if len(bad):
        problems.append(
            f"column {ROW!r}: {len(bad)} value(s) are not row positions (0, 1, 2, ...)"
            f"{_shown(bad.unique())}"
        )
    if problems:
        return frame, problems
    pairs = zip(requests.astype(str).str.strip(), numbers.astype(int), strict=True)
    ids = pd.Series(
        [known.get((r, n), f"{r}:{n}") for r, n in pairs], index=frame.index, dtype=object
    )
    # the log keeps ids as text ("7": the service's rule, as the ledger matches ids); numbers
    # are numbers again, as they are when the file keyed by id is read back from CSV
    numbers = pd.to_numeric(ids, errors="coerce")
    if len(ids) and numbers.notna().all():
        ids = numbers
    out = frame.drop(columns=[c for c in (REQUEST_ID, ROW) if c in frame.columns])
    out.insert(0, data.id, ids.infer_objects())
    return out, []


def check_labels(
    frame: pd.DataFrame, reference: pd.DataFrame, data: DataSettings, task: str
) -> list[str]:
    """Returns the problems of a labels file (none: it can be taken in).

    Checked: the id and target columns exist; ids are present, unique and of the reference's
    kind (numbers for numeric ids, text otherwise); the target is numeric for regression (not
    true/false), and for classification one of the classes the reference holds.
    """
    problems = []
    missing = [c for c in (data.id, data.target) if c not in frame.columns]
    if missing:
        return [f"column {c!r} is missing (a labels file has {data.id!r} and {data.target!r})"
                for c in missing]  # fmt: skip
    ids, target = frame[data.id], frame[data.target]
    if ids.isna().any():
        problems.append(f"column {data.id!r}: {int(ids.isna().sum())} missing id(s)")
    duplicated = ids[ids.duplicated(keep=False) & ids.notna()]
    if len(duplicated):
        shown = _shown(duplicated.unique())
        problems.append(f"column {data.id!r}: {duplicated.nunique()} duplicate id(s){shown}")
    numeric_ids = _is_number(reference[data.id])
    if numeric_ids and not _is_number(ids.dropna()):
        bad = ids[pd.to_numeric(ids, errors="coerce").isna() & ids.notna()]
        # every value may parse as a number and still be text (a mixed or boolean column)
        kind = "true/false" if pd.api.types.is_bool_dtype(ids) else "text"
        here = f"here {len(bad)} are not" if len(bad) else f"here they are {kind}"
        problems.append(
            f"column {data.id!r}: ids are numbers in the reference, {here}"
            f"{_shown((bad if len(bad) else ids.dropna()).unique())}"
        )
    if target.isna().any():
        problems.append(f"column {data.target!r}: {int(target.isna().sum())} missing label(s)")
    known = target.dropna()
    if task == "regression":
        if pd.api.types.is_bool_dtype(known) or not _is_number(known):
            bad = known[pd.to_numeric(known, errors="coerce").isna()]
            problems.append(
                f"column {data.target!r}: the target must be a number, {len(bad) or len(known)} "
                f"value(s) are not{_shown((bad if len(bad) else known).unique())}"
            )
    else:
        classes = set(reference[data.target].dropna().unique())
        unseen = known[~known.isin(classes)]
        if len(unseen):
            allowed = ", ".join(repr(_plain(c)) for c in sorted(classes, key=str))
            problems.append(
                f"column {data.target!r}: {len(unseen)} label(s) not among the classes "
                f"{{{allowed}}}{_shown(unseen.unique())}"
            )
    return problems


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else value


def _shown(values: object) -> str:
    items = list(values)[:MAX_SHOWN]
    return f" (e.g. {', '.join(repr(_plain(v)) for v in items)})" if items else ""
