# One line per target; CI (.ci/run) calls `make test`, exactly what the README says.
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup demo demo-bank test test-fast lint ui bench bench-steps bench-drift bench-quality bench-policies bench-drift-null bench-cli bench-bootstrap report-screenshot ui-check bench-scale bench-predlog server-up server-deploy server-status bench-server bench-serve clean

$(UV):
	python3 -m venv $(VENV) && $(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --inexact --compile-bytecode --python $(BIN)/python && touch $@

setup: $(VENV)/.synced
	@bash scripts/install_chromium.sh

demo: setup
	$(BIN)/modelwatch --params params.yaml demo

demo-bank: setup
	$(BIN)/modelwatch --params params.bank.yaml demo

# one pytest worker per core (at most 4), whole files per worker: each e2e module keeps its own
# fixtures and its worker its own temporary Prefect server
test: setup
	$(BIN)/pytest -m "slow or not slow" -n auto --maxprocesses 4 --dist loadfile --durations 10

test-fast: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/python benchmarks/bench_history.py --batches 500

bench-steps: setup
	$(BIN)/python benchmarks/bench_batch_costs.py

bench-drift: setup
	bash benchmarks/envs/setup.sh && $(BIN)/python benchmarks/bench_drift_speed.py

bench-quality: setup
	bash benchmarks/envs/setup.sh && $(BIN)/python benchmarks/bench_drift_quality.py

bench-policies: setup
	$(BIN)/python benchmarks/bench_policies.py --variants

bench-drift-null: setup
	$(BIN)/python benchmarks/bench_drift_null.py

bench-cli: setup
	$(BIN)/python benchmarks/bench_cli.py

bench-bootstrap: setup
	$(BIN)/python benchmarks/bench_bootstrap.py

bench-serve: setup
	$(BIN)/python benchmarks/bench_serve.py

bench-scale: setup
	$(BIN)/python benchmarks/bench_scale.py

bench-predlog: setup
	$(BIN)/python benchmarks/bench_predlog.py

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

report-screenshot: setup
	$(BIN)/python scripts/screenshot_report.py

ui-check: setup
	$(BIN)/python scripts/check_uis.py --fresh 4

ui: setup
	$(BIN)/modelwatch --params params.yaml ui

# server mode (README "Production mode"): servers on PostgreSQL (MODELWATCH_PG_URL) until Ctrl-C;
# then, in another shell, both projects' deployments in the work pool
server-up: setup
	$(BIN)/modelwatch --params params.yaml server start

server-deploy: setup
	. ./.modelwatch-server/env && $(BIN)/modelwatch --params params.yaml server deploy && $(BIN)/modelwatch --params params.bank.yaml server deploy

server-status: setup
	. ./.modelwatch-server/env && $(BIN)/modelwatch server status

bench-server: setup
	$(BIN)/python benchmarks/bench_server.py

clean:
	rm -rf .modelwatch .modelwatch-bank .modelwatch-server
