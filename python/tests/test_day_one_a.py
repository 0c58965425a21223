"""Day one, tried as a new user would (issue 18): close means closed, open's timeout and
AlreadyOpen's message, errors that are runstore.Error, runs as context managers, install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import runstore

REPO = Path(__file__).resolve().parents[2]


def cli() -> str:
    """The runstore command: $RUNSTORE_BIN, the target dir's release build, the script this
    Python's install of the package brings, or PATH."""
    candidates = [os.environ.get("RUNSTORE_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    candidates += [str(Path(target) / "release" / "runstore")]
    candidates += [str(Path(sys.executable).parent / "runstore"), shutil.which("runstore")]
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


# --------------------------------------------------------------------------------------------
# 4. Every error a user can cause is a runstore.Error naming the file, table and column


@pytest.fixture
def opened(tmp_path):
    path = tmp_path / "e.runs"
    with runstore.open(path) as store:
        run = store.init("p", "r")
        table = store.create_table("p", "inputs", {"a": [1, 2, 3]})
        yield str(path), store, run, table


def raises(kind, call, *parts):
    """Asserts `call()` raises runstore's `kind` whose message has every one of `parts`."""
    with pytest.raises(kind) as error:
        call()
    assert isinstance(error.value, runstore.Error)
    for part in parts:
        assert part in str(error.value), (part, str(error.value))
    return error.value


def test_closed_store_is_a_runstore_error_naming_the_file(opened):
    path, store, run, table = opened
    store.close()
    error = raises(runstore.StoreClosed, lambda: run.add_output_value({"a": 1}), path)
    assert isinstance(error, ValueError)  # as before: code catching ValueError still works


def test_columns_of_different_lengths_name_both_columns(opened):
    path, store, run, table = opened
    for data in ({"a": [1, 2], "b": [1, 2, 3]}, {"a": np.zeros(2), "b": np.zeros(3)}):
        error = raises(
            runstore.InvalidInput,
            lambda: run.add_metrics_data(data),
            path, "p/runs/r", "column 'b' has 3 rows", "column 'a' has 2",
        )
        assert isinstance(error, ValueError)
    raises(runstore.InvalidInput, lambda: store.create_table("p", "t", {"a": [1], "b": [1, 2]}),
           path, "column 'b'")
    raises(runstore.InvalidInput, lambda: run.append_metrics("m", {"a": [1], "b": [1, 2]}),
           path, "p/runs/r", "column 'b'")


def test_a_pandas_object_column_names_the_column(opened):
    pd = pytest.importorskip("pandas")
    path, store, run, table = opened
    frame = pd.DataFrame({"ok": [1, 2, 3], "mixed": [1, "x", None]})
    raises(runstore.InvalidInput, lambda: run.add_metrics_data(frame),
           path, "p/runs/r", "column 'mixed'", "'x'")
    raises(runstore.InvalidInput, lambda: store.create_table("p", "t", frame),
           path, "table p/tables/t", "column 'mixed'")
    raises(runstore.InvalidInput, lambda: run.append_metrics("steps", frame),
           path, "table p/runs/r/steps", "column 'mixed'")
    twice = pd.DataFrame([[1, 2]], columns=["a", "a"])
    raises(runstore.InvalidInput, lambda: run.add_metrics_data(twice), path, "'a'")


def test_siblings_wrong_dtype_ragged_keys_and_scalars(opened):
    path, store, run, table = opened
    raises(runstore.InvalidType, lambda: run.add_metrics_data({"c": np.zeros(3, dtype=complex)}),
           path, "column 'c'", "complex128")
    raises(runstore.InvalidType, lambda: run.add_metrics_data({"v": np.zeros(2, dtype=[("x", "i4")])}),
           path, "column 'v'")
    raises(runstore.InvalidInput, lambda: run.add_metrics_data({"m": [1, "x"]}), path, "column 'm'")
    raises(runstore.InvalidInput, lambda: run.add_metrics_data({"r": [[1, 2], "x"]}), path, "column 'r'")
    raises(runstore.InvalidType, lambda: run.add_metrics_data({"d": [{1: 2}]}), path, "column 'd'")
    raises(runstore.InvalidType, lambda: run.add_metrics_data({1: [1]}), path, "column names")
    raises(runstore.InvalidType, lambda: run.add_metrics_data({"s": 5}), path, "column 's'")
    raises(runstore.InvalidType, lambda: run.add_metrics_data({"n": None}), path, "column 'n'")
    raises(runstore.InvalidType, lambda: run.add_metrics_data("text"), path)
    raises(runstore.InvalidInput, lambda: run.add_metrics_data({"e": np.zeros((2, 0))}), path, "column 'e'")
    # a type nested thousands deep is refused before the Arrow C interface could recurse
    deep = 1
    for _ in range(5000):
        deep = [deep]
    raises(runstore.InvalidInput, lambda: run.add_metrics_data({"deep": [deep]}), path, "column 'deep'")
    deep_type = pa.int64()
    for _ in range(5000):
        deep_type = pa.list_(deep_type)
    raises(runstore.InvalidInput,
           lambda: run.add_metrics_data({"a": [1]}, override_column_schemas={"a": deep_type}),
           path, "column 'a'")
    # the originals stay reachable
    error = raises(runstore.InvalidInput, lambda: run.add_metrics_data({"m": [1, "x"]}))
    assert isinstance(error.__cause__, pa.ArrowInvalid)


def test_argument_errors_are_runstore_errors(opened):
    path, store, run, table = opened
    cases = [
        (runstore.InvalidType, lambda: run.log({"a": "x"}), ("p/runs/r", "'a'")),
        (runstore.InvalidType, lambda: run.log({1: 1.0}), ("p/runs/r",)),
        (runstore.InvalidInput, lambda: run.log({"step": 1.0}), ("p/runs/r", "step=N")),
        (runstore.InvalidType, lambda: run.log({"a": 1.0}, step="x"), ("p/runs/r",)),
        (runstore.InvalidInput, lambda: run.log({"a": 1.0}, step=2**70), ("p/runs/r",)),
        (runstore.InvalidType, lambda: run.add_output_value({1: 2}), ("p/runs/r",)),
        (runstore.InvalidType, lambda: run.add_output_value({"a": {1, 2}}), ("p/runs/r", "set")),
        (runstore.InvalidType, lambda: run.set_parameters({1: 2}), ("p/runs/r",)),
        (runstore.InvalidType, lambda: run.set_status(object()), ("p/runs/r",)),
        (runstore.InvalidType, lambda: run.set_description(5), ("p/runs/r",)),
        (runstore.InvalidInput, lambda: run.copy("x", if_exists="nope"), ("p/runs/r", "if_exists")),
        (runstore.InvalidInput, lambda: store.init("p", if_exists="nope"), ("if_exists",)),
        (runstore.InvalidInput, lambda: store.runs(limit=-1), ()),
        (runstore.InvalidInput, lambda: table.to_arrow(start=-1), ("p/tables/inputs",)),
        (runstore.InvalidInput, lambda: run.reduce_embeddings_per_dataset(method="tsne"), ("tsne",)),
        (runstore.InvalidInput, lambda: run.update_metrics([{"x": 1}]), ("url",)),
        (runstore.InvalidType, lambda: run.add_metrics_table(5), ("p/runs/r",)),
        (runstore.InvalidType, lambda: store.set_active_run(5), ()),
        (runstore.InvalidType, lambda: run.add_metrics_data({"a": [1]}, override_column_schemas={"a": 5}), ("'a'",)),
    ]
    for kind, call, parts in cases:
        error = raises(kind, call, path, *parts)
        builtin = TypeError if kind is runstore.InvalidType else ValueError
        assert isinstance(error, builtin), error


def test_runstore_errors_name_the_file(opened):
    path, store, run, table = opened
    raises(runstore.NotFound, lambda: table.to_arrow(["nope"]), path, "p/tables/inputs", "nope")
    raises(runstore.NotFound, lambda: store.table("p/tables/nope"), path)
    raises(runstore.RowCountMismatch, lambda: run.add_metrics_data({"a": [1]}, input_table_url=table),
           path, "p/runs/r")
    raises(runstore.InvalidQuery, lambda: store.runs(filter="((("), path)


def test_open_refuses_what_is_not_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raises(runstore.InvalidType, lambda: runstore.open(5), "int")
    assert not (tmp_path / "5").exists()
    raises(runstore.NotFound, lambda: runstore.open(tmp_path / "nope.runs", read_only=True),
           str(tmp_path / "nope.runs"))


# --------------------------------------------------------------------------------------------
# 5. Runs end with their with blocks: COMPLETED when left normally, CANCELLED (and why) when an
#    exception leaves; logging to a COMPLETED run warns once


class TrainingDiverged(Exception):
    pass


def statuses(path: Path) -> dict:
    """{run name: (status, description)} of every run of the store at `path`."""
    with runstore.open(path, read_only=True) as store:
        return {run.name: (run.status, run.description) for run in store.runs()}


def running(store, name: str, **kwargs) -> "runstore.Run":
    """A run of project p set RUNNING (init makes it EMPTY, as 3LC does)."""
    run = store.init("p", name, **kwargs)
    run.set_status_running()
    return run


def test_leaving_a_run_block_completes_it_and_commits_its_rows(tmp_path):
    with runstore.open(tmp_path / "l.runs") as store:
        run = store.init("p", "ok")
        assert run.status == "EMPTY"
        with run:
            assert run.status == "RUNNING"  # entering starts an EMPTY run
            run.log({"loss": 1.0})
        assert run.status == "COMPLETED"
        # the logger was closed, its rows committed (log_table names the run's step table)
        assert run.log_table.num_rows == 1
        assert [t.num_rows for t in run.metrics_tables] == [1]
        with store.init("p", "collecting") as run:
            run.set_status_collecting()
        assert run.status == "COMPLETED"
        with store.init("p", "paused") as run:
            run.set_status_paused()
        assert run.status == "PAUSED"  # not in progress: the block leaves it as it is
        with store.run("p/runs/paused") as run:  # any run, not only one init made
            assert run.status == "PAUSED"  # entering starts only an EMPTY run
            run.set_status_running()
        assert run.status == "COMPLETED"


def test_an_exception_leaving_a_run_block_cancels_it_naming_the_type(tmp_path):
    path = tmp_path / "l.runs"
    with runstore.open(path) as store:
        with pytest.raises(ZeroDivisionError):
            with store.init("p", "boom", description="lr sweep") as run:
                run.log({"loss": 1.0})
                1 / 0
        assert run.status == "CANCELLED"
        assert run.description == "lr sweep (cancelled by ZeroDivisionError)"
        assert [t.num_rows for t in run.metrics_tables] == [1]
        with pytest.raises(TrainingDiverged):
            with store.init("p", "diverged"):
                raise TrainingDiverged("loss is nan")
        with pytest.raises(SystemExit):
            with store.init("p", "exit-2"):
                sys.exit(2)
        with pytest.raises(SystemExit):
            with store.init("p", "exit-0"):
                sys.exit(0)
    assert statuses(path) == {
        "boom": ("CANCELLED", "lr sweep (cancelled by ZeroDivisionError)"),
        "diverged": ("CANCELLED", f"cancelled by {TrainingDiverged.__module__}.TrainingDiverged"),
        "exit-2": ("CANCELLED", "cancelled by SystemExit"),
        "exit-0": ("COMPLETED", ""),
    }


def test_an_exception_leaving_the_store_block_cancels_the_runs_it_started(tmp_path):
    path = tmp_path / "s.runs"
    with runstore.open(path) as store:
        running(store, "earlier")  # started by another handle: never touched below
    with pytest.raises(KeyboardInterrupt):
        with runstore.open(path) as store:
            store.run("p/runs/earlier").log({"loss": 1.0})
            running(store, "a", description="first try").log({"loss": 1.0})
            runstore.init("p", "b").set_status_running()  # the module-level init: this store
            store.init("p", "collecting").set_status_collecting()
            store.init("p", "post").set_status_post_processing()
            store.init("p", "empty")  # never started: nothing to cancel
            store.init("p", "done").set_status_completed()
            store.init("p", "paused").set_status_paused()
            running(store, "gone").delete()
            raise KeyboardInterrupt
    assert statuses(path) == {
        "earlier": ("RUNNING", ""),
        "a": ("CANCELLED", "first try (cancelled by KeyboardInterrupt)"),
        "b": ("CANCELLED", "cancelled by KeyboardInterrupt"),
        "collecting": ("CANCELLED", "cancelled by KeyboardInterrupt"),
        "post": ("CANCELLED", "cancelled by KeyboardInterrupt"),
        "empty": ("EMPTY", ""),
        "done": ("COMPLETED", ""),
        "paused": ("PAUSED", ""),
    }
    with runstore.open(path, read_only=True) as store:
        assert [t.num_rows for t in store.run("p/runs/a").metrics_tables] == [1]
    # left normally, the store's block changes no status
    with runstore.open(path) as store:
        running(store, "c")
    assert statuses(path)["c"] == ("RUNNING", "")
    # a run block inside a store block: the run's end comes first, the store's finds it done
    with pytest.raises(ValueError):
        with runstore.open(path) as store:
            with store.init("p", "inner"):
                raise ValueError("bad batch")
    assert statuses(path)["inner"] == ("CANCELLED", "cancelled by ValueError")


def test_a_run_block_of_a_read_only_store_changes_nothing(tmp_path):
    path = tmp_path / "ro.runs"
    with runstore.open(path) as writer:
        running(writer, "live")  # another process's run, RUNNING there
        writer.init("p", "new")
        with runstore.open(path, read_only=True) as reader:
            with reader.run("p/runs/live") as run:
                assert run.status == "RUNNING"
            with pytest.raises(ZeroDivisionError):
                with reader.run("p/runs/new") as run:
                    assert run.status == "EMPTY"
                    1 / 0
    assert statuses(path) == {"live": ("RUNNING", ""), "new": ("EMPTY", "")}


def test_a_run_that_cannot_be_marked_warns_and_keeps_the_exception(tmp_path):
    store = runstore.open(tmp_path / "c.runs")
    run = store.init("p", "r")
    with pytest.warns(RuntimeWarning, match="p/runs/r.*not marked CANCELLED.*ValueError.*closed"):
        with pytest.raises(ValueError, match="original"):
            with run:
                store.close()
                raise ValueError("original")
    # left normally, a failure to complete the run is an error of its own
    store = runstore.open(tmp_path / "c.runs")
    with pytest.raises(runstore.StoreClosed):
        with store.init("p", "r2"):
            store.close()


def test_logging_to_a_completed_run_warns_once(tmp_path):
    import warnings

    with runstore.open(tmp_path / "w.runs") as store:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # logging to a running run never warns
            with store.init("p", "r") as run:
                for step in range(3):
                    run.log({"loss": 1.0 / (step + 1)})
        with pytest.warns(runstore.RunCompletedWarning, match="p/runs/r is COMPLETED") as record:
            run.log({"loss": 0.1})
            run.log({"loss": 0.05})
            run.log({"loss": 0.01, "acc": 0.9})  # a new key, a new table: still the one warning
            store.run("p/runs/r").log({"loss": 0.0})  # another object of the same run
        assert len(record) == 1
        assert record[0].filename == __file__  # points at the caller's line
        run.close_log()
        assert sum(t.num_rows for t in run.metrics_tables) == 7  # logged all the same
        other = running(store, "r2")
        other.log({"loss": 1.0})
        other.set_status_completed()  # while its logger is open
        with pytest.warns(runstore.RunCompletedWarning, match="p/runs/r2"):
            other.log({"loss": 2.0})


# --------------------------------------------------------------------------------------------
# 6. Install: the package brings the runstore command (the Rust command line, in _native)


def command(*args: str) -> subprocess.CompletedProcess:
    """`python -m runstore ARGS`: the package's command line in a process of its own (it acts
    for the whole process: the runs it sets RUNNING belong to its parent)."""
    return subprocess.run(
        [sys.executable, "-m", "runstore", *args], capture_output=True, text=True, timeout=120
    )


def test_the_command_line_comes_with_the_package(tmp_path):
    import json

    path = tmp_path / "cli.runs"
    with runstore.open(path) as store:
        with store.init("p", "r", parameters={"lr": 0.01}) as run:
            run.add_output_value({"epoch": 1, "loss": 0.5})
        with pytest.raises(ValueError):
            with store.init("p", "broken"):
                raise ValueError("nan loss")
    proc = command("runs", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    runs = {row["url"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert runs["p/runs/r"]["status"] == "COMPLETED"
    assert runs["p/runs/r"]["params"] == {"lr": 0.01}
    assert runs["p/runs/broken"]["description"] == "cancelled by ValueError"
    proc = command("show", str(path), "p/runs/broken")
    assert proc.returncode == 0, proc.stderr
    assert "CANCELLED" in proc.stdout and "cancelled by ValueError" in proc.stdout
    # writing commands too: the run belongs to the caller, as with the binary
    proc = command("init", str(path), "--project", "p", "--name", "from-cli")
    assert (proc.returncode, proc.stdout.strip()) == (0, "p/runs/from-cli"), proc.stderr
    # exit codes and messages as the binary's
    proc = command("show", str(path), "p/runs/missing")
    assert proc.returncode == 1
    assert proc.stderr.startswith("runstore: ") and 'no run "missing"' in proc.stderr
    proc = command("no-such-command")
    assert proc.returncode == 2 and "Usage" in proc.stderr
    proc = command("--help")
    assert proc.returncode == 0 and "Exit codes" in proc.stdout


def test_the_installed_runstore_script_is_the_command_line(tmp_path):
    script = Path(sys.executable).parent / "runstore"
    if not script.is_file():
        pytest.skip(f"no {script}: install the package (pip install . or maturin develop)")
    path = tmp_path / "script.runs"
    with runstore.open(path) as store:
        store.init("p", "r")
    proc = subprocess.run(
        [str(script), "runs", str(path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "p/runs/r" in proc.stdout or " r " in proc.stdout, proc.stdout


def test_cli_main_returns_the_exit_code_and_restores_sigint(capfd):
    import signal

    from runstore._cli import main

    before = signal.getsignal(signal.SIGINT)
    assert main(["--version"]) == 0
    assert capfd.readouterr().out.strip() == f"runstore {runstore.__version__}"
    assert main(["frobnicate"]) == 2
    assert "frobnicate" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")
def test_ctrl_c_stops_the_command_as_it_stops_the_binary(tmp_path):
    import signal
    import time

    path = tmp_path / "held.runs"
    holder = hold_in_child(path, "single", 60)
    try:
        waiting = subprocess.Popen(
            [sys.executable, "-m", "runstore", "--wait", "60", "init", str(path), "--project", "p"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        time.sleep(2)  # importing runstore, then waiting for the holder to close
        assert waiting.poll() is None
        waiting.send_signal(signal.SIGINT)
        waiting.wait(timeout=10)  # without the default SIGINT action it would wait 60 s
        assert waiting.returncode == -signal.SIGINT
    finally:
        holder.kill()
        holder.wait(timeout=30)
