#!/usr/bin/env python3
"""trackio (wandb's logging API on a local SQLite file) on W1 and W2, with same-run references.

    .venv-trackio/bin/python bench_trackio.py DATA_DIR [--quick] [--only W1,W2]

Prints one JSON line per measurement on stdout (see README.md). trackio stays local: its directory
(TRACKIO_DIR) is under the work directory, no Space / server / bucket is named, no dashboard is
launched (`trackio.show` is never called; `init` only embeds one in notebooks), no Hugging Face Hub
access (HF_HUB_OFFLINE, HF_HUB_DISABLE_TELEMETRY), CPU/GPU system-metric threads off. trackio has
its own venv (`.venv-trackio`, made by setup.sh): its dependencies are not mixed with MLflow's and
Aim's pins. W3/W4 are not measured (issue 18 asks for W1 and W2).
"""
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bench_references import Refs  # noqa: E402

SYSTEM = "trackio"
KEYS = ("loss", "acc", "lr", "grad_norm")

# Local only, and nothing in the background. Set before trackio is imported (trackio.utils reads
# TRACKIO_DIR at import time); child processes inherit them. trackio itself has no telemetry
# switch (none in its source); huggingface_hub's and gradio's are set in case they are reached.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# "auto" switches to JSONL fragments when TRACKIO_DIR looks like a network filesystem: keep SQLite.
os.environ.setdefault("TRACKIO_STORAGE_MODE", "sqlite")
for _k in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_DATASET_ID", "TRACKIO_BUCKET_ID",
           "TRACKIO_REGISTRY_BUCKET_ID", "TRACKIO_WEBHOOK_URL", "SPACE_ID", "SYSTEM"):
    os.environ.pop(_k, None)

_PROJECTS = [0]


def set_dir(work):
    """TRACKIO_DIR for this process (and its children): must run before `import trackio`."""
    d = os.path.join(work, "trackio-dir")
    os.makedirs(d, exist_ok=True)
    os.environ["TRACKIO_DIR"] = d
    return d


def project_files(tdir, project):
    """The project's SQLite file and its -wal/-shm sidecars (and lock file), what `bytes` counts."""
    return [os.path.join(tdir, f) for f in os.listdir(tdir) if f.startswith(project + ".")]


def read_series(project, run, key):
    """trackio's own reader: SQLiteStorage.get_metric_values (what `trackio get metric` and the
    server's /get_metric_values call); rows come ORDER BY timestamp, so sort by step."""
    import numpy as np
    from trackio.sqlite_storage import SQLiteStorage

    rows = SQLiteStorage.get_metric_values(project, run, key)
    rows.sort(key=lambda r: r["step"])
    return (np.array([r["step"] for r in rows], dtype=np.int64),
            np.array([r["value"] for r in rows], dtype=np.float64))


def w1(a, data, refs, ver, work, state):
    import numpy as np
    import trackio

    tdir = os.environ["TRACKIO_DIR"]
    n = common.size(100_000, 5_000)
    reps = common.size(3, 1)
    cols = data.w1(n)
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in KEYS}
    stragglers = []

    def setup():
        # A new project (own SQLite file) per repetition. Untimed, like the other tools' store creation:
        # trackio.init (run registration) and SQLiteStorage.init_db (the file and its tables, which
        # trackio would otherwise create lazily in its first background write).
        from trackio.sqlite_storage import SQLiteStorage

        _PROJECTS[0] += 1
        project = f"bench-w1-{_PROJECTS[0]}"
        SQLiteStorage.init_db(project)
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON lines
            trackio.init(project=project, name="run-1", auto_log_cpu=False, auto_log_gpu=False, embed=False)
        return project

    # trackio.finish() joins the background sender thread with a 30 s timeout and returns even if it
    # is still writing: check that it had ended, else the timer stopped before the data was written.
    def job(project):
        from trackio import context_vars

        for i in range(n):
            trackio.log({k: vals[k][i] for k in KEYS}, step=steps[i])
        run = context_vars.current_run.get()
        with contextlib.redirect_stdout(sys.stderr):
            trackio.finish()
        t = getattr(run, "_local_sender_thread", None)
        stragglers.append(t is not None and t.is_alive())
        return project

    med, times, project = common.median_reps(job, reps, setup)
    files = project_files(tdir, project)
    nbytes = sum(os.path.getsize(f) for f in files)
    ok = not any(stragglers)
    for k in KEYS:
        got_steps, got = read_series(project, "run-1", k)
        ok = ok and len(got) == n and bool(np.array_equal(got_steps, cols["step"])) and bool(
            np.array_equal(got, cols[k]))
    rec = {"system": SYSTEM, "workload": "W1", "variant": "per-step", "n": n, "reps": reps, "median_s": med,
           "values_per_s": 4 * n / med, "bytes": nbytes, "correct": ok, "version": ver,
           "load1": common.load_note(), "times_s": times,
           "note": "trackio.log({4 keys}, step=i) per step + trackio.finish() (timed; trackio.init and "
                   "SQLiteStorage.init_db untimed, new project per rep). Not durable per call: log() queues, "
                   "a background thread writes batches every 0.5 s (SQLiteStorage.bulk_log, one transaction, "
                   "WAL, synchronous=NORMAL) and finish() joins it. "
                   "bytes = the project's .db + -wal/-shm; correct = all 4 series read back equal (steps and "
                   "float64 values) and no sender thread alive after finish()"}
    common.emit(common.with_refs(rec, *refs.w1(n, False)))
    common.unsupported(SYSTEM, "W1", "batched", "trackio.log takes one step per call (like wandb.log)", ver)
    for i in range(1, _PROJECTS[0]):  # earlier repetitions' projects; the last one is W2's
        for f in project_files(tdir, f"bench-w1-{i}"):
            common.remove(f, a.keep)
    state["w2"] = (project, n)


def w2(a, data, refs, ver, work, state):
    if "w2" not in state:
        w1(a, data, refs, ver, work, state)
    project, n = state["w2"]
    want = data.w1_loss_sum(n)
    reps = 3
    med, _, (st, arr) = common.median_reps(lambda: read_series(project, "run-1", "loss"), reps)
    ok = len(arr) == n and common.close(float(arr.sum()), want, 1e-9)
    sref, aref = refs.w2(n)
    rec = {"system": SYSTEM, "workload": "W2", "variant": "warm-read", "n": n, "reps": reps, "median_s": med,
           "values_per_s": n / med, "correct": ok, "version": ver,
           "note": "trackio's reader SQLiteStorage.get_metric_values(project, run, 'loss') (behind `trackio get "
                   "metric` and the server's /get_metric_values; trackio.Api has runs but no metric reader) -> "
                   "sort by step -> numpy; it opens the project DB per call and parses each step's JSON row"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["median_s"]), ("pyarrow-ipc", aref["median_s"])))
    fr = common.fresh("bench_trackio.py", "w2", project, reps=reps)
    okf = fr["n"] == n and common.close(fr["sum"], want, 1e-9)
    common.emit_fresh(SYSTEM, n, reps, fr, okf, ver,
                      "new python process: import numpy (base_import_s), import trackio (import_s), "
                      "SQLiteStorage.get_metric_values + sort + numpy (open_query_s); median_s = process wall time",
                      sref, aref)


def child(args):
    clock = common.ChildClock()
    import numpy  # noqa: F401

    clock.mark("base_import_s")
    import trackio  # noqa: F401
    from trackio.sqlite_storage import SQLiteStorage  # noqa: F401

    clock.mark("import_s")
    _, arr = read_series(args[1], "run-1", "loss")
    clock.mark("open_query_s")
    clock.report(n=len(arr), sum=float(arr.sum()))


def main():
    a = common.parse_args(__doc__)
    data = common.Data(a.data_dir)
    work = common.fresh_dir(a.work, SYSTEM)
    set_dir(work)
    refs = Refs(data, a.work)
    t0 = time.perf_counter()
    import trackio  # noqa: F401

    common.log(f"trackio import {time.perf_counter() - t0:.2f}s")
    ver = common.version("trackio")
    state = {}
    for w, fn in (("W1", w1), ("W2", w2)):
        if w in a.only:
            common.log(f"{SYSTEM} {w} ...")
            common.run_guarded(SYSTEM, w, lambda: fn(a, data, refs, ver, work, state))
    refs.close(a.keep)
    common.remove(work, a.keep)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
