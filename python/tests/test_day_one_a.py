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


# --------------------------------------------------------------------------------------------
# 2. shared=True honours timeout=


HOLD = (
    "import sys, time, runstore\n"
    "s = runstore.open(sys.argv[1], shared=sys.argv[2] == 'shared')\n"
    "print('open', flush=True)\n"
    "time.sleep(float(sys.argv[3]))\n"
    "s.close()\n"
)


def hold_in_child(path: Path, mode: str, seconds: float) -> subprocess.Popen:
    """A child process holding the store open (`mode`: 'single' or 'shared') for `seconds`."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), mode, str(seconds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline().strip() == "open", child.stderr.read()
    return child


@pytest.mark.parametrize("shared", [True, False])
def test_timeout_waits_for_the_writer_to_close(tmp_path, shared):
    import time

    path = tmp_path / "x.runs"
    runstore.open(path).close()
    child = hold_in_child(path, "single" if shared else "shared", 1.0)
    try:
        started = time.monotonic()
        with runstore.open(path, shared=shared, timeout=10) as store:
            waited = time.monotonic() - started
            store.init("p", "after-wait")
        assert 0.3 < waited < 9, waited
    finally:
        child.wait(timeout=30)


@pytest.mark.parametrize("shared", [True, False])
def test_timeout_gives_up_with_already_open(tmp_path, shared):
    import time

    path = tmp_path / "x.runs"
    runstore.open(path).close()
    child = hold_in_child(path, "single" if shared else "shared", 5.0)
    try:
        started = time.monotonic()
        with pytest.raises(runstore.AlreadyOpen):
            runstore.open(path, shared=shared, timeout=0.5)
        waited = time.monotonic() - started
        assert 0.5 <= waited < 3, waited
        started = time.monotonic()
        with pytest.raises(runstore.AlreadyOpen):
            runstore.open(path, shared=shared)  # no timeout: at once
        assert time.monotonic() - started < 0.5
    finally:
        child.kill()
        child.wait(timeout=30)


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf"), 10**9])
def test_a_timeout_out_of_range_is_invalid_input(tmp_path, timeout):
    with pytest.raises(runstore.InvalidInput, match="timeout="):
        runstore.open(tmp_path / "x.runs", timeout=timeout)


# --------------------------------------------------------------------------------------------
# 3. AlreadyOpen names the holder and says what to do


def test_already_open_by_this_process_says_so(tmp_path):
    path = tmp_path / "x.runs"
    first = runstore.open(path)
    try:
        with pytest.raises(runstore.AlreadyOpen) as error:
            runstore.open(path)
        message = str(error.value)
        assert str(path) in message
        if sys.platform.startswith("linux"):
            assert "by this process" in message
            assert "close the other handle" in message
        for hint in ("read_only=True", "shared=True", "timeout="):
            assert hint in message, message
        with pytest.raises(runstore.AlreadyOpen, match="shared=True"):
            runstore.open(path, shared=True)
    finally:
        first.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the holder's pid needs /proc")
@pytest.mark.parametrize("mode", ["single", "shared"])
def test_already_open_by_another_process_names_its_pid(tmp_path, mode):
    path = tmp_path / "x.runs"
    runstore.open(path).close()
    child = hold_in_child(path, mode, 30.0)
    try:
        with pytest.raises(runstore.AlreadyOpen) as error:
            runstore.open(path, shared=(mode == "single"))
        assert f"by process {child.pid}" in str(error.value), str(error.value)
        assert "this process" not in str(error.value)
        proc = subprocess.run(
            [cli(), "init", str(path), "--project", "p"], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 1
        assert f"already open for writing by process {child.pid}" in proc.stderr, proc.stderr
        assert "--wait SECONDS" in proc.stderr and "--shared" in proc.stderr
    finally:
        child.kill()
        child.wait(timeout=30)
