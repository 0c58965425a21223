"""Day one, tried as a new user would (issue 18): close means closed, open's timeout and
AlreadyOpen's message, errors that are runstore.Error, runs as context managers, install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import runstore

REPO = Path(__file__).resolve().parents[2]


def cli() -> str:
    """The runstore binary: $RUNSTORE_BIN, the target dir's release build, or PATH."""
    candidates = [os.environ.get("RUNSTORE_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    candidates += [str(Path(target) / "release" / "runstore"), shutil.which("runstore")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no runstore binary (build it with cargo build --release)")


def python_opens(path: Path, *extra: str) -> subprocess.CompletedProcess:
    """Another Python process opening the store for writing and creating a run."""
    code = (
        "import sys, runstore\n"
        "with runstore.open(sys.argv[1]) as s:\n"
        "    s.init('other', 'from-child').set_status_completed()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path), *extra], capture_output=True, text=True, timeout=60
    )


# --------------------------------------------------------------------------------------------
# 1. Close means closed


def test_close_releases_the_file_while_objects_are_alive(tmp_path):
    path = tmp_path / "x.runs"
    store = runstore.open(path)
    run = store.init("p", "r1")
    run.log({"loss": 1.0})
    table = store.create_table("p", "inputs", {"a": [1, 2, 3]})
    data = table.to_arrow()
    store.close()
    # run, table, data and store are all still alive: another process opens the file at once
    child = python_opens(path)
    assert child.returncode == 0, child.stderr
    proc = subprocess.run(
        [cli(), "init", str(path), "--project", "cli-project", "--name", "from-cli"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    # Arrow data already read stays valid
    assert data.column("a").to_pylist() == [1, 2, 3]
    # and the logged row was committed at close
    with runstore.open(path, read_only=True) as again:
        assert again.run("p/runs/r1").metrics_tables[0].num_rows == 1
        assert {p["name"] for p in again.projects()} >= {"p", "other", "cli-project"}
    del run, table, store


def test_leaving_with_releases_the_file_while_objects_are_alive(tmp_path):
    path = tmp_path / "x.runs"
    with runstore.open(path) as store:
        run = store.init("p", "r1")
    reopened = runstore.open(path)  # a re-run notebook cell, with run still alive
    reopened.close()
    child = python_opens(path)
    assert child.returncode == 0, child.stderr
    assert run.name == "r1"


def test_stale_objects_raise_store_closed_naming_the_file(tmp_path):
    path = tmp_path / "x.runs"
    store = runstore.open(path)
    run = store.init("p", "r1")
    table = store.create_table("p", "inputs", {"a": [1, 2, 3]})
    store.close()
    store.close()  # idempotent
    assert store.closed
    # identity stays readable, like a closed file's name
    assert (run.name, run.project, run.url) == ("r1", "p", "p/runs/r1")
    assert table.url == "p/tables/inputs"
    assert store.path == str(path)
    calls = [
        lambda: run.status,
        lambda: run.parameters,
        lambda: run.add_output_value({"a": 1}),
        lambda: run.log({"loss": 1.0}),
        lambda: run.set_status_completed(),
        lambda: run.bulk_list(),
        lambda: table.to_arrow(),
        lambda: table.num_rows,
        lambda: table.schema,
        lambda: store.init("p"),
        lambda: store.runs(),
        lambda: store.table("p/tables/inputs"),
        lambda: store.flush(),
        lambda: store.set_active_run(run),
    ]
    for call in calls:
        with pytest.raises(runstore.StoreClosed) as error:
            call()
        assert isinstance(error.value, runstore.Error)
        assert isinstance(error.value, ValueError)
        assert f"store {path} is closed" in str(error.value)


def test_objects_made_after_close_are_closed_too(tmp_path):
    path = tmp_path / "x.runs"
    store = runstore.open(path)
    run = store.init("p", "r1")
    store.close()
    with pytest.raises(runstore.StoreClosed):
        run.copy("r2")


def test_many_run_objects_are_all_released(tmp_path):
    path = tmp_path / "x.runs"
    store = runstore.open(path)
    keep = [store.init("p", f"r{i}") for i in range(10)]
    for _ in range(500):  # objects Python frees along the way
        store.run("p/runs/r0")
    keep += store.runs()
    keep += [r.metrics_tables for r in keep[:3]]
    store.close()
    child = python_opens(path)
    assert child.returncode == 0, child.stderr
