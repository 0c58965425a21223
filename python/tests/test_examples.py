"""The worked examples in python/examples/ run to the end and write what they say."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import runstore

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def run_example(name, cwd, *args):
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, name), *args],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tlc_workflow(tmp_path):
    out = run_example("tlc_workflow.py", tmp_path)
    assert "accuracy" in out and "metrics_train_" in out
    with runstore.open(tmp_path / "tlc_workflow.runs", read_only=True) as store:
        (run,) = store.runs(project="cifar-ish")
        assert run.status_name == "COMPLETED"
        assert any(t.url.endswith("_pca") or "pca" in t.url for t in run.metrics_tables)


def test_wandb_move(tmp_path):
    run_example("wandb_move.py", tmp_path)
    with runstore.open(tmp_path / "runs.runs", read_only=True) as store:
        runs = store.runs(project="sweep")
        assert len(runs) == 2
        assert sorted(r.parameters["lr"] for r in runs) == [0.01, 0.1]
        assert all(r.status_name == "COMPLETED" for r in runs)


def test_tensorboard_move(tmp_path):
    run_example("tensorboard_move.py", tmp_path)
    with runstore.open(tmp_path / "runs.runs", read_only=True) as store:
        assert sorted(r.name for r in store.runs()) == ["exp1", "exp2"]


def test_mlflow_move(tmp_path):
    out = run_example("mlflow_move.py", tmp_path)
    assert "alpha-0.1" in out and "alpha-1.0" not in out


def test_sweep_of_shared_writers(tmp_path):
    out = run_example("sweep.py", tmp_path, "--workers", "3")
    assert "6 runs written by 3 processes" in out and "best sweep/runs/" in out
    with runstore.open(tmp_path / "sweep.runs", read_only=True) as store:
        runs = store.runs(project="sweep")
        assert len(runs) == 6
        assert all(r.status_name == "COMPLETED" and r.bulk_list() for r in runs)
