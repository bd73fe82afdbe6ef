"""Batch ids from file names: safe as one path component, as a Prefect artifact key."""

import pytest

from modelwatch.io import safe_stem
from tasks.artifacts import artifact_key

MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("batch-2011-01-08.csv", "batch-2011-01-08"),
        ("...csv", "batch-01234567"),  # ".." must not name the folder above
        ("..hidden.csv", "hidden"),
        ("a\\b.csv", "a_b"),
        ("semaine été.csv", "semaine été"),  # letters of any script stay
        ("tab\there.csv", "tab_here"),
        ("x" * 300 + ".csv", "x" * 100),
        ("no-suffix", "no-suffix"),
    ],
)
def test_safe_stem(name, stem):
    assert safe_stem(name, MD5) == stem


def test_artifact_keys_are_ascii_and_distinct():
    assert artifact_key("batch-2011-01-08") == "batch-2011-01-08"
    accented, plain = artifact_key("semaine-été"), artifact_key("semaine-t")
    assert accented.startswith("semaine-t-") and accented != plain
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in accented)
    assert artifact_key("Batch_01") != artifact_key("batch-01")
    assert artifact_key("日本") and all(c.isascii() for c in artifact_key("日本"))
