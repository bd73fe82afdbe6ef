"""What check_reference finds in a reference before bootstrap (pure pandas)."""

import pandas as pd

from modelwatch.settings import DataSettings, ValidationSettings
from modelwatch.stores.validation import check_reference

DATA = DataSettings(
    id="row", target="y", features=["x", "colour"], categorical=["colour"], positive_label="yes"
)
REF = pd.DataFrame(
    {"row": [1, 2, 3, 4], "x": [0.1, 0.5, 0.2, 0.9], "colour": ["a", "b", "a", "b"],
     "y": ["yes", "no", "no", "yes"]}
)  # fmt: skip


def test_a_clean_reference_has_no_finding():
    assert check_reference(REF, DATA, ValidationSettings(), "classification") == []


def test_classes_ids_and_missing_columns_are_reported():
    wrong = DataSettings(**{**DATA.model_dump(), "positive_label": "Yes"})
    assert check_reference(REF, wrong, ValidationSettings(), "classification") == [
        "data.positive_label 'Yes' is not a class of 'y' in the reference (classes: 'no', 'yes')"
    ]
    one = REF.assign(y="yes", row=[1, 1, 2, None])
    found = check_reference(one, DATA, ValidationSettings(), "classification")
    assert found == [
        "column 'row': 1 missing and 1 repeated ids (every batch needs unique ids)",
        "column 'y': one class only (['yes']): nothing to learn",
    ]
    assert check_reference(REF.drop(columns="x"), DATA, ValidationSettings(), "regression") == [
        "column 'x' is missing from the reference"
    ]
