"""Look at both UIs as a person would: headless Chromium on the Prefect UI and the MLflow UI.

    .venv/bin/python scripts/check_uis.py --fresh 4              # replay 4 batches first (~1 min)
    .venv/bin/python scripts/check_uis.py --params params.yaml   # after `make demo`

Starts `modelwatch ui` on the project's stores, runs the checks of tests/ui/ui_check.py (the
same as tests/e2e/test_uis.py), keeps the screenshots in --out and prints one line per check.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the UI check is test tooling (tests/ui), not the product

from tests.ui import ui_check  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument(
        "--fresh",
        type=int,
        default=None,
        metavar="N",
        help="replay N batches into a temporary home first",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "test-output" / "ui")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="modelwatch-ui-"))
    try:
        params = (
            ui_check.replay(args.params, tmp, args.fresh, ROOT)
            if args.fresh
            else args.params.resolve()
        )
        checks = ui_check.check_project(params, args.out).checks
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for check in checks:
        sys.stdout.write(check.line() + "\n")
    return 0 if checks and all(c.ok for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
