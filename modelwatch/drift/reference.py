"""The data a batch's drift is measured against."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class DriftReference:
    """What a batch is compared with: the rows, the predictions made for them, a label that
    says which data they are (reference.strategy), and the md5 of the champion's reference in
    the data repository (lineage of the run)."""

    frame: pd.DataFrame
    predictions: pd.Series
    label: str
    md5: str
