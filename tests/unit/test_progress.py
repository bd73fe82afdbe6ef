"""Progress lines of long work: counts, percent, elapsed and time left; short work stays quiet."""

from __future__ import annotations

import logging

import pytest

from modelwatch.progress import Progress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "modelwatch.progress"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (3.2, "3s"), (59.6, "1m00s"), (75, "1m15s"), (3700, "1h01m")]
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_every_step_reports_count_percent_elapsed_and_time_left(clock, caplog):
    caplog.set_level(logging.INFO, logger="modelwatch.progress")
    progress = Progress("replay", 4, every=0, clock=clock)
    clock.now += 10
    assert progress.advance(detail="batch-001 Completed") == (
        "replay: 1/4 (25%) batch-001 Completed, 10s elapsed, about 30s left"
    )
    clock.now += 30
    progress.advance(detail="batch-002 Completed")
    clock.now += 20
    progress.advance()
    clock.now += 20
    last = progress.advance(detail="batch-004 Rejected")
    assert last == "replay: 4/4 (100%) batch-004 Rejected, 1m20s elapsed"  # done: no time left
    assert lines(caplog)[1] == "replay: 2/4 (50%) batch-002 Completed, 40s elapsed, about 40s left"
    assert len(lines(caplog)) == 4


def test_short_work_stays_quiet(clock, caplog):
    caplog.set_level(logging.INFO, logger="modelwatch.progress")
    progress = Progress("training", 7, every=5, clock=clock)
    for _ in range(7):
        clock.now += 0.5
        assert progress.advance() is None
    assert lines(caplog) == []


def test_long_work_reports_at_most_every_interval_and_at_the_end(clock, caplog):
    caplog.set_level(logging.INFO, logger="modelwatch.progress")
    progress = Progress("drift on 1000000 rows", 10, every=5, clock=clock)
    said = []
    for _ in range(10):
        clock.now += 2
        said.append(progress.advance())
    # due after 6 s (step 3) and 12 s (step 6) and 18 s (step 9), then the final line at step 10
    assert [i + 1 for i, s in enumerate(said) if s] == [3, 6, 9, 10]
    assert said[2] == "drift on 1000000 rows: 3/10 (30%), 6s elapsed, about 14s left"
    assert said[-1].startswith("drift on 1000000 rows: 10/10 (100%), 20s elapsed")


def test_remaining_is_unknown_before_the_first_step(clock):
    progress = Progress("x", 3, clock=clock)
    assert progress.remaining() is None
    assert progress.line() == "x: 0/3 (0%), 0s elapsed"


def test_outside_a_flow_run_no_artifact_is_made(clock):
    from tasks.progress import flow_progress

    progress = flow_progress("x", 2, artifact_key="x-progress")
    assert progress._on_update is None
    progress.advance(2)


def test_each_step_reports_the_share_done(clock):
    seen = []
    progress = Progress("x", 4, clock=clock, on_update=seen.append)
    progress.advance()
    progress.advance(3)
    assert seen == [25.0, 100.0]


def test_lines_go_to_on_line_when_given(clock, caplog):
    caplog.set_level(logging.INFO, logger="modelwatch.progress")
    got = []
    progress = Progress("drift", 2, every=0, clock=clock, on_line=got.append)
    progress.advance(detail="a")
    progress.advance(detail="b")
    assert [line.split(",")[0] for line in got] == ["drift: 1/2 (50%) a", "drift: 2/2 (100%) b"]
    assert lines(caplog) == []  # not on the module logger as well
