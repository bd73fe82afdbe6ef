"""Renders the drift HTML report for a bike-sharing week and screenshots it in headless Chromium.

Reference: the rows before demo.reference_end; current: the week starting 2011-06-04. Writes
test-output/drift_report.html and test-output/drift_report.png, then prints their paths.

    uv run --no-sync python scripts/screenshot_report.py [--params params.yaml] [--out test-output]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from modelwatch.drift import compute_drift
from modelwatch.drift.html import render_drift_html
from modelwatch.settings import load_settings
from modelwatch.training import fit

ROOT = Path(__file__).resolve().parent.parent
WEEK_START = pd.Timestamp("2011-06-04")
logger = logging.getLogger("screenshot_report")


def build_html(
    params: Path, broken: str | None = None, explained: bool = False
) -> tuple[str, float, float]:
    """Returns the report page for the demo week and render_drift_html's wall and CPU seconds.

    `broken` names a feature to blank in the current week, to see how an untested column looks;
    `explained` adds the champion's attribution drift section (explain.* settings).
    """
    loaded = load_settings(params)
    settings, data = loaded.settings, loaded.settings.data
    frame = pd.read_csv(loaded.paths.resolve(settings.demo.source), parse_dates=[data.timestamp])
    when = frame[data.timestamp]
    reference = frame[when < pd.Timestamp(settings.demo.reference_end)]
    current = frame[(when >= WEEK_START) & (when < WEEK_START + pd.Timedelta(days=7))].copy()
    if broken:
        current[broken] = float("nan")
    # The champion the demo bootstraps: trained on the reference, with the permutation
    # importances that rank the drift; its predictions fill the prediction section.
    champion = fit.fit_model(reference, data, settings.training, settings.project.task)
    predictions = (
        pd.Series(champion.pipeline.predict(reference[data.features])),
        pd.Series(champion.pipeline.predict(current[data.features])),
    )
    report = compute_drift(
        reference,
        current,
        data,
        settings.drift,
        prediction_reference=predictions[0],
        prediction_current=predictions[1],
        importance=champion.importance,
    )
    sections = (_attribution(champion.pipeline, reference, current, settings),) if explained else ()
    start, cpu = time.perf_counter(), time.process_time()
    page = render_drift_html(
        report,
        reference,
        current,
        title=f"Drift: week of {WEEK_START:%Y-%m-%d} vs rows before {settings.demo.reference_end}",
        prediction=predictions,
        sections=sections,
    )
    return page, time.perf_counter() - start, time.process_time() - cpu


def _attribution(model, reference: pd.DataFrame, current: pd.DataFrame, settings) -> str:
    """The attribution-drift section, computed as tasks/explain.py does."""
    from modelwatch import explain
    from modelwatch.explain.html import attribution_section

    cfg = settings.explain

    def mean_abs(rows: pd.DataFrame):
        return explain.explain_with_settings(
            model,
            explain.sample_rows(rows, cfg.sample_rows, cfg.seed),
            explain.sample_rows(reference, cfg.background_rows, cfg.seed),
            settings,
        )

    ref, cur = mean_abs(reference), mean_abs(current)
    drift = explain.compare_attributions(
        ref.mean_abs(), cur.mean_abs(), method=cur.method, output=cur.output,
        rows=cur.rows, reference_rows=ref.rows, champion_version="demo",
    )  # fmt: skip
    return attribution_section(drift)


def screenshot(html_path: Path, png_path: Path, size: str = "1280,2400") -> None:
    """Writes a PNG of the whole page rendered by headless Chromium (Playwright over Debian's
    chromium, the UI check's browser: tests/ui/browser.py).

    Raises:
        SystemExit: chromium is not installed or failed.
    """
    sys.path.insert(0, str(ROOT))
    from tests.ui.browser import Browser, BrowserError

    width, height = (int(x) for x in size.split(","))
    try:
        with Browser(width=width, height=height) as browser:
            browser.open(html_path.resolve().as_uri())
            browser.page.screenshot(path=str(png_path), full_page=True)
    except BrowserError as exc:
        raise SystemExit(f"chromium failed: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "test-output")
    parser.add_argument("--window-size", default="1280,2400")
    parser.add_argument("--broken-column", help="blank this feature in the current week")
    parser.add_argument("--explain", action="store_true", help="add the attribution drift")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    page, wall, cpu = build_html(args.params, args.broken_column, args.explain)
    args.out.mkdir(parents=True, exist_ok=True)
    html_path, png_path = args.out / "drift_report.html", args.out / "drift_report.png"
    html_path.write_text(page, encoding="utf-8")
    logger.info("render_drift_html: %.3f s wall, %.3f s CPU, %d bytes", wall, cpu, len(page))
    logger.info("html -> %s", html_path)
    screenshot(html_path, png_path, args.window_size)
    logger.info("screenshot -> %s", png_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
