#!/usr/bin/env bash
# Create bench-compare/.venv with the pinned peer tools, and bench-compare/.venv-trackio with
# trackio (idempotent: a stamp file per venv).
# Pins follow docs peers.md: mlflow 3.18.0 pins mlflow-skinny==3.18.0, which PyPI
# does not have, so an unpinned `pip install mlflow` fails or resolves oddly: pin 3.17.2.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-v2"
PY="${PYTHON:-python3}"

# trackio in its own venv. pip resolves it together with the pins below (checked 2026-12-07 with
# `pip install --dry-run`), but it would change the other tools' environment: pillow 13 -> 12
# (trackio caps pillow < 13), and uvicorn[standard]'s uvloop/httptools, which uvicorn then uses
# (it serves `aim up` in ui_anchors.py). numpy and pyarrow for the shared helpers.
tvenv="$here/.venv-trackio"
tstamp="$tvenv/.installed-v1"
if [ ! -f "$tstamp" ]; then
  if [ ! -x "$tvenv/bin/python" ]; then
    "$PY" -m venv "$tvenv"
  fi
  "$tvenv/bin/python" -m pip install --quiet --upgrade pip >&2 || true
  "$tvenv/bin/python" -m pip install --quiet "trackio==0.43.0" "numpy" "pyarrow" >&2
  "$tvenv/bin/python" - <<'PY' >&2
import importlib.metadata as m
for p in ("trackio", "huggingface-hub", "numpy", "pyarrow"):
    try:
        print(f"{p}=={m.version(p)}")
    except m.PackageNotFoundError:
        print(f"{p}: missing")
PY
  touch "$tstamp"
fi

if [ -f "$stamp" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$PY" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2 || true
"$venv/bin/python" -m pip install --quiet \
  "mlflow==3.17.2" "mlflow-skinny==3.17.2" \
  "tensorboardX==2.6.5" "tensorboard==2.21.0" \
  "aim==3.29.1" "tbparse==0.0.9" \
  "numpy" "pyarrow" "pandas" >&2
"$venv/bin/python" - <<'PY' >&2
import importlib.metadata as m
for p in ("mlflow", "mlflow-skinny", "tensorboardX", "tensorboard", "aim", "aimrocks", "tbparse", "numpy", "pyarrow", "pandas", "protobuf"):
    try:
        print(f"{p}=={m.version(p)}")
    except m.PackageNotFoundError:
        print(f"{p}: missing")
PY
touch "$stamp"
