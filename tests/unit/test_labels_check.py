"""Labels files checked at the door (modelwatch.performance.labels), on small frames."""

import pandas as pd
import pytest

from modelwatch.performance.labels import check_labels
from modelwatch.settings import DataSettings

DATA = DataSettings(id="instant", target="cnt", features=["temp"], timestamp=None)
REF = pd.DataFrame({"instant": [1, 2, 3], "temp": [0.1, 0.2, 0.3], "cnt": [10, 20, 30]})
CLS = DataSettings(id="row", target="y", features=["x"], timestamp=None)
CLS_REF = pd.DataFrame({"row": ["a", "b", "c"], "x": [1, 2, 3], "y": [1, 2, 1]})


def test_good_labels_have_no_problem():
    assert (
        check_labels(pd.DataFrame({"instant": [4, 5], "cnt": [1.5, 2]}), REF, DATA, "regression")
        == []
    )
    good = pd.DataFrame({"row": ["d", "e"], "y": [2, 1], "extra": [0, 0]})
    assert check_labels(good, CLS_REF, CLS, "classification") == []


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ({"instant": [4]}, "column 'cnt' is missing (a labels file has 'instant' and"),
        ({"cnt": [4]}, "column 'instant' is missing"),
        ({"instant": [4, 5], "cnt": ["30", "thirty"]}, "column 'cnt': the target must be a num"),
        ({"instant": [4, 5], "cnt": [True, False]}, "column 'cnt': the target must be a number"),
        ({"instant": ["1,001", "7"], "cnt": [1, 2]},
         "column 'instant': ids are numbers in the reference, here 1 are not (e.g. '1,001')"),
        ({"instant": ["4", 5], "cnt": [1, 2]},  # every value parses, the column is still text
         "column 'instant': ids are numbers in the reference, here they are text (e.g. '4', 5)"),
        ({"instant": [True, False], "cnt": [1, 2]},
         "column 'instant': ids are numbers in the reference, here they are true/false"),
        ({"instant": [4, 4, 5], "cnt": [1, 2, 3]}, "column 'instant': 1 duplicate id(s) (e.g. 4)"),
        ({"instant": [4, None], "cnt": [1, 2]}, "column 'instant': 1 missing id(s)"),
        ({"instant": [4, 5], "cnt": [1, None]}, "column 'cnt': 1 missing label(s)"),
    ],
)  # fmt: skip
def test_each_problem_is_said(frame, problem):
    problems = check_labels(pd.DataFrame(frame), REF, DATA, "regression")
    assert any(p.startswith(problem) for p in problems), problems


def test_classification_labels_must_be_known_classes():
    bad = pd.DataFrame({"row": ["d", "e"], "y": [2, 3]})
    assert check_labels(bad, CLS_REF, CLS, "classification") == [
        "column 'y': 1 label(s) not among the classes {1, 2} (e.g. 3)"
    ]
