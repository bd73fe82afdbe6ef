#!/usr/bin/env bash
# Creates one virtual environment per comparison engine under benchmarks/.venvs/<name>,
# from benchmarks/envs/<name>.txt, and checks that each one imports.
# Usage: bash benchmarks/envs/setup.sh [evidently] [nannyml]   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# The project's uv (Makefile: .venv/bin/uv), else the one on PATH.
UV="$ROOT/.venv/bin/uv"
[ -x "$UV" ] || UV="$(command -v uv)" || { echo "setup.sh: uv not found (run make setup)" >&2; exit 2; }
ENVS="$ROOT/benchmarks/envs"
VENVS="$ROOT/benchmarks/.venvs"
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(evidently nannyml)

# The engines phone home on import unless told not to; nothing but PyPI is reachable here.
export DO_NOT_TRACK=1 EVIDENTLY_DISABLE_TELEMETRY=1 NML_DISABLE_USAGE_LOGGING=1

for name in "${NAMES[@]}"; do
  req="$ENVS/$name.txt"
  [ -f "$req" ] || { echo "setup.sh: no requirements file $req" >&2; exit 2; }
  venv="$VENVS/$name"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$UV" pip install --quiet --python "$venv/bin/python" -r "$req"
  case "$name" in
    evidently) check='import evidently; from evidently import Report; from evidently.presets import DataDriftPreset; print("evidently", evidently.__version__)' ;;
    nannyml)   check='import nannyml; print("nannyml", nannyml.__version__)' ;;
    *)         check='print("ok")' ;;
  esac
  "$venv/bin/python" -c "$check"
done
