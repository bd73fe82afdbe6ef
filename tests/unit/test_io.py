"""modelwatch.io: every unreadable file is a SchemaError naming the file; writes are atomic."""

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from modelwatch.errors import SchemaError
from modelwatch.io import atomic_target, file_md5, read_csv_file, write_csv, write_text

DATA = Path(__file__).parents[1] / "data"
BATCH_COLUMNS = [
    "instant",
    "dteday",
    "season",
    "mnth",
    "hr",
    "holiday",
    "weekday",
    "workingday",
    "weathersit",
    "temp",
    "atemp",
    "hum",
    "windspeed",
]


def test_read_csv_file_returns_rows_and_pandas3_dtypes():
    frame = read_csv_file(DATA / "bike_ok.csv")
    assert list(frame.columns) == BATCH_COLUMNS
    assert len(frame) == 60
    assert frame["instant"].tolist() == list(range(1, 61))
    assert str(frame["dteday"].dtype) == "str"
    assert str(frame["temp"].dtype) == "float64"
    assert frame.loc[0, "hum"] == pytest.approx(0.81)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bike_empty.csv", "file is empty (0 bytes), no rows"),
        ("bike_header_only.csv", "no rows (only a header: instant, dteday, season"),
        ("bike_unparsable.csv", "not a readable CSV file: 'utf-8' codec can't decode byte 0x89"),
    ],
)
def test_read_csv_file_rejects_broken_files_naming_them(name, reason):
    path = DATA / name
    before = path.read_bytes()
    with pytest.raises(SchemaError) as info:
        read_csv_file(path)
    assert str(info.value).startswith(f"{path}: {reason}")
    assert path.read_bytes() == before  # reading never touches the input


def test_read_csv_file_missing_file(tmp_path):
    with pytest.raises(SchemaError, match=r"batch_2011-05-07\.csv: file not found"):
        read_csv_file(tmp_path / "batch_2011-05-07.csv")


def test_read_csv_file_directory(tmp_path):
    with pytest.raises(SchemaError, match="is a directory, expected a CSV file"):
        read_csv_file(tmp_path)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('a,b\n1,"2\n3,4\n', "EOF inside string starting at row 1"),
        ("a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
    ],
)
def test_read_csv_file_unparsable_text(tmp_path, content, reason):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(SchemaError, match=rf"broken\.csv: not a readable CSV file: .*{reason}"):
        read_csv_file(path)


def test_read_csv_file_blank_lines_only(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n\n\n")
    with pytest.raises(SchemaError, match=r"blank\.csv: no header and no rows"):
        read_csv_file(path)


def test_write_csv_round_trips_without_index_and_leaves_no_temp_file(tmp_path):
    frame = pd.DataFrame({"id": [3, 1], "city": ["Oslo", None], "x": [0.5, 1.25]}, index=[10, 20])
    path = write_csv(frame, tmp_path / "out" / "frame.csv")
    assert path.read_text().splitlines() == ["id,city,x", "3,Oslo,0.5", "1,,1.25"]
    back = read_csv_file(path)
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    assert sorted(p.name for p in path.parent.iterdir()) == ["frame.csv"]


def test_write_csv_replaces_an_existing_file(tmp_path):
    path = tmp_path / "frame.csv"
    path.write_text("old\n")
    write_csv(pd.DataFrame({"a": [1]}), path)
    assert path.read_text() == "a\n1\n"


def test_atomic_target_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "report.json"
    write_text("complete\n", path)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_target(path) as tmp:
            tmp.write_text("half a rep")
            raise RuntimeError("disk full")
    assert path.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_file_md5_matches_hashlib():
    """Reference: hashlib.md5 of the whole file."""
    path = DATA / "bike_ok.csv"
    assert file_md5(path) == hashlib.md5(path.read_bytes()).hexdigest()
    assert file_md5(DATA / "bike_empty.csv") == "d41d8cd98f00b204e9800998ecf8427e"


def test_file_md5_missing_file(tmp_path):
    with pytest.raises(SchemaError, match=r"nope\.csv: file not found"):
        file_md5(tmp_path / "nope.csv")
