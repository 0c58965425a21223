#!/usr/bin/env python3
"""Aim 3.x (local repo: RocksDB containers + SQLite run metadata) on W1-W4, with same-run references.

    .venv/bin/python bench_aim.py DATA_DIR [--quick] [--only W1,W2]

Prints one JSON line per measurement on stdout (see README.md). Background resource tracking and
terminal-log capture are off (system_tracking_interval=None, capture_terminal_logs=False).
A read-only reader sees a run only after it is indexed (RepoIndexManager.index, what `aim up`
does), so after writing, each run is indexed and that time is reported as `index_s`.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bench_references import Refs  # noqa: E402

SYSTEM = "aim"
KEYS = ("loss", "acc", "lr", "grad_norm")


def new_run(repo_dir, **kw):
    from aim import Run

    return Run(repo=repo_dir, system_tracking_interval=None, capture_terminal_logs=False,
               log_system_params=False, **kw)


_REPOS = [0]


def new_repo(base):
    """A new Aim repo in a new directory under `base` (removed first); returns its path.

    A new path each time: Aim caches Repo objects (and their SQLite connections) per path, so a repo
    re-created at the same path after deleting it fails with 'attempt to write a readonly database'."""
    from aim import Repo

    _REPOS[0] += 1
    d = os.path.join(base, f"repo{_REPOS[0]}")
    common.remove(base)
    os.makedirs(d)
    Repo.from_path(d, init=True)
    return d


def index_runs(repo_dir, hashes):
    from aim import Repo
    from aim.sdk.index_manager import RepoIndexManager

    t0 = time.perf_counter()
    mng = RepoIndexManager.get_index_manager(Repo.from_path(repo_dir))
    for h in hashes:
        mng.index(h)
    return time.perf_counter() - t0


def read_metric(repo_dir, run_hash, name):
    import numpy as np
    from aim import Run
    from aim.storage.context import Context

    run = Run(run_hash, repo=repo_dir, read_only=True)
    m = run.get_metric(name, Context({}))
    if m is None:
        return np.zeros(0)
    steps, cols = m.data.numpy()  # sorted by step; metric.values.sparse_numpy() returned step hashes
    return np.asarray(cols[0], dtype=np.float64)


def w1(a, data, refs, ver, work, state):
    n = common.size(20_000, 2_000)
    reps = 1
    cols = data.w1(n)
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in KEYS}
    d = os.path.join(work, "w1")
    holder = {}

    def job(rd):
        holder["dir"] = rd
        run = new_run(rd, experiment="w1")
        for i in range(n):
            run.track({k: vals[k][i] for k in KEYS}, step=steps[i])
        run.close()
        holder["hash"] = run.hash

    med, _, _ = common.median_reps(job, reps, lambda: new_repo(d))
    idx = index_runs(holder["dir"], [holder["hash"]])
    rec = {"system": SYSTEM, "workload": "W1", "variant": "per-step", "n": n, "reps": reps, "median_s": med,
           "values_per_s": 4 * n / med, "bytes": common.path_bytes(d), "index_s": idx, "correct": True,
           "version": ver, "load1": common.load_note(),
           "note": "Run(...).track({4 keys}, step) per step + close() (timed); index_s = RepoIndexManager.index "
                   "afterwards (needed before another process can read it; untimed in median_s); bytes after "
                   "indexing, RocksDB LOG/OPTIONS files included; reduced n (slow)"}
    common.emit(common.with_refs(rec, *refs.w1(n, False)))
    common.unsupported(SYSTEM, "W1", "batched", "Run.track takes one step per call", ver)
    state["w2"] = (holder["dir"], holder["hash"], n)


def w2(a, data, refs, ver, work, state):
    if "w2" not in state:
        w1(a, data, refs, ver, work, state)
    d, h, n = state["w2"]
    want = data.w1_loss_sum(n)
    reps = 3
    med, _, arr = common.median_reps(lambda: read_metric(d, h, "loss"), reps)
    ok = len(arr) == n and common.close(float(arr.sum()), want, 1e-9)
    sref, aref = refs.w2(n)
    rec = {"system": SYSTEM, "workload": "W2", "variant": "warm-read", "n": n, "reps": reps, "median_s": med,
           "values_per_s": n / med, "correct": ok, "version": ver,
           "note": "Run(hash, read_only=True).get_metric('loss', Context({})).data.numpy(), run indexed first; "
                   "n = the W1 run's steps (reduced)"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["median_s"]), ("pyarrow-ipc", aref["median_s"])))
    fr = common.fresh("bench_aim.py", "w2", d, h, reps=reps)
    okf = fr["n"] == n and common.close(fr["sum"], want, 1e-9)
    common.emit_fresh(SYSTEM, n, reps, fr, okf, ver,
                      "new python process: import numpy (base_import_s), import aim (import_s), Run + get_metric + "
                      "data.numpy (open_query_s); median_s = process wall time",
                      sref, aref)
    common.remove(d, a.keep)


def child(args):
    clock = common.ChildClock()
    import numpy  # noqa: F401

    clock.mark("base_import_s")
    import aim  # noqa: F401
    from aim.storage.context import Context  # noqa: F401

    clock.mark("import_s")
    arr = read_metric(args[1], args[2], "loss")
    clock.mark("open_query_s")
    clock.report(n=len(arr), sum=float(arr.sum()))


def w3(a, data, refs, ver, work, state):
    n = common.size(300, 30)
    reps = 1
    params, outputs = data.w3(n)
    names, pdicts = common.w3_param_dicts(params)
    outs = common.w3_output_rows(outputs)
    top10, matches = data.w3_expected(n)
    d = os.path.join(work, "w3")
    hashes = []
    holder = {}

    def job(rd):
        holder["dir"] = rd
        hashes.clear()
        for i, name in enumerate(names):
            run = new_run(rd, experiment="w3")
            run.name = name
            run["hparams"] = pdicts[i]
            for e, acc, loss in outs[name]:
                run.track({"acc": acc, "loss": loss}, step=e)
            run.close()
            hashes.append(run.hash)

    wmed, _, _ = common.median_reps(job, reps, lambda: new_repo(d))
    rd = holder["dir"]
    idx = index_runs(rd, hashes)

    def query():
        from aim import Repo
        from aim.storage.context import Context
        from aim.sdk.types import QueryReportMode

        repo = Repo.from_path(rd)
        q = repo.query_runs("run.hparams.lr < 0.01 and run.metrics['acc'].last > 0.5",
                            report_mode=QueryReportMode.DISABLED)
        hits = []
        for coll in q.iter_runs():
            run = coll.run
            _, cols = run.get_metric("acc", Context({})).data.numpy()
            hits.append((float(cols[0][-1]), run.name))
        hits.sort(key=lambda x: (-x[0], x[1]))
        return [h[1] for h in hits[:10]], len(hits)

    qreps = 3
    qmed, _, (got, got_n) = common.median_reps(query, qreps)
    sref, aref = refs.w3(n)
    rec = {"system": SYSTEM, "workload": "W3", "variant": "write", "n": n, "reps": reps, "median_s": wmed,
           "runs_per_s": n / wmed, "index_s": idx, "bytes": common.path_bytes(d), "version": ver,
           "load1": common.load_note(),
           "note": "per run: Run(), run.name, run['hparams'] = 20 params, track({acc, loss}, step=epoch) x10, "
                   "close(); index_s = indexing all runs afterwards (not in median_s); reduced n (slow)"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W3", "variant": "query", "n": n, "reps": qreps, "median_s": qmed,
           "correct": got == top10 and got_n == matches, "matches": got_n, "version": ver,
           "note": "AimQL repo.query_runs(\"run.hparams.lr < 0.01 and run.metrics['acc'].last > 0.5\"); no ORDER "
                   "BY/LIMIT in AimQL, so each hit's acc series is read and sorted in Python"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["query_s"]), ("pyarrow-ipc", aref["query_s"])))
    common.remove(d, a.keep)


def w4(a, data, refs, ver, work, state):
    import numpy as np
    import pyarrow.parquet as pq

    # (a) per-row tracking of the scalar columns: no table type, embeddings cannot be stored
    n = common.size(20_000, 2_000)
    reps = 1
    t = data.w4(n)
    want = data.w4_loss_sum(n)
    cols = {c: t.column(c).to_numpy().tolist() for c in ("epoch", "predicted", "loss", "confidence")}
    d = os.path.join(work, "w4")
    holder = {}

    def write(rd):
        holder["dir"] = rd
        run = new_run(rd, experiment="w4")
        for i in range(n):
            run.track({"loss": cols["loss"][i], "confidence": cols["confidence"][i],
                       "predicted": cols["predicted"][i]}, step=i, epoch=cols["epoch"][i])
        run.close()
        holder["hash"] = run.hash

    wmed, _, _ = common.median_reps(write, reps, lambda: new_repo(d))
    idx = index_runs(holder["dir"], [holder["hash"]])

    def read():
        out = [read_metric(holder["dir"], holder["hash"], k) for k in ("loss", "confidence", "predicted")]
        return len(out[0]), float(out[0].sum())

    rreps = 3
    rmed, _, (rows, s) = common.median_reps(read, rreps)
    ok = rows == n and common.close(s, want, 1e-6)
    sref, aref = refs.w4(n)
    note = ("run.track({loss, confidence, predicted}, step=row, epoch=epoch) per row; embedding (float32[64]) and "
            "example_id not stored: no table or array-per-step type; reduced n (slow)")
    rec = {"system": SYSTEM, "workload": "W4", "variant": "track-per-row", "n": n, "reps": reps, "median_s": wmed,
           "rows_per_s": n / wmed, "bytes": common.path_bytes(d), "index_s": idx, "version": ver, "partial": True,
           "load1": common.load_note(), "note": "write: " + note}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W4", "variant": "track-per-row-read-sum", "n": n, "reps": rreps,
           "median_s": rmed, "rows_per_s": n / rmed, "correct": ok, "version": ver, "partial": True,
           "note": "read 3 metric series (data.numpy), sum loss; the reference reads all 6 columns"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["read_s"]), ("pyarrow-ipc", aref["read_s"])))
    common.remove(d, a.keep)

    # (b) write Parquet yourself, attach it as a run artifact (file:// storage)
    n = common.size(1_000_000, 50_000)
    reps = 1 if n >= 500_000 else 3
    t = data.w4(n)
    want = data.w4_loss_sum(n)
    d = os.path.join(work, "w4b")
    art = os.path.join(work, "w4b-artifacts")

    def setup():
        common.fresh_dir(art)
        return new_repo(d)

    def write2(rd):
        holder["dir"] = rd
        run = new_run(rd, experiment="w4b")
        run.set_artifacts_uri(f"file://{art}")
        tmp = os.path.join(work, "samples.parquet")
        pq.write_table(t, tmp)
        run.log_artifact(tmp, name="samples.parquet", block=True)
        run.close()
        os.remove(tmp)
        holder["hash"] = run.hash

    wmed, _, _ = common.median_reps(write2, reps, setup)
    idx = index_runs(holder["dir"], [holder["hash"]])

    def read2():
        from aim import Run

        run = Run(holder["hash"], repo=holder["dir"], read_only=True)
        with tempfile.TemporaryDirectory(dir=work) as tdir:
            p = run.artifacts["samples.parquet"].download(tdir)
            r = pq.read_table(p)
        return r.num_rows, float(np.sum(r.column("loss").to_numpy(), dtype=np.float64))

    rreps = 3
    rmed, _, (rows, s) = common.median_reps(read2, rreps)
    ok = rows == n and common.close(s, want, 1e-6)
    sref, aref = refs.w4(n)
    rec = {"system": SYSTEM, "workload": "W4", "variant": "parquet-artifact", "n": n, "reps": reps,
           "median_s": wmed, "rows_per_s": n / wmed, "bytes": common.path_bytes(art), "index_s": idx,
           "version": ver, "load1": common.load_note(),
           "note": "pyarrow.parquet.write_table (default snappy) + run.log_artifact(file://, block=True): Aim only "
                   "stores the file; bytes = artifact storage"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W4", "variant": "parquet-artifact-read-sum", "n": n, "reps": rreps,
           "median_s": rmed, "rows_per_s": n / rmed, "correct": ok, "version": ver,
           "note": "Run(hash, read_only=True).artifacts[...].download(tmp) (a copy) + pyarrow.parquet.read_table, "
                   "sum loss"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["read_s"]), ("pyarrow-ipc", aref["read_s"])))
    common.remove(d, a.keep)
    common.remove(art, a.keep)


def main():
    a = common.parse_args(__doc__)
    data = common.Data(a.data_dir)
    work = common.fresh_dir(a.work, SYSTEM)
    refs = Refs(data, a.work)
    t0 = time.perf_counter()
    import aim  # noqa: F401

    common.log(f"aim import {time.perf_counter() - t0:.2f}s")
    ver = common.version("aim")
    state = {}
    for w, fn in (("W1", w1), ("W2", w2), ("W3", w3), ("W4", w4)):
        if w in a.only:
            common.log(f"{SYSTEM} {w} ...")
            common.run_guarded(SYSTEM, w, lambda: fn(a, data, refs, ver, work, state))
    refs.close(a.keep)
    common.remove(work, a.keep)
    # Aim runs keep a heartbeat thread; do not let a leftover one (e.g. after a failed workload)
    # keep the process alive once every record is printed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
