#!/usr/bin/env python3
"""MLflow (SQLite backend store, local file artifacts) on W1-W4, with same-run references.

    .venv/bin/python bench_mlflow.py DATA_DIR [--quick] [--only W1,W2]

Prints one JSON line per measurement on stdout (see README.md). Telemetry is off
(MLFLOW_DISABLE_TELEMETRY, set in common.py).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bench_references import Refs  # noqa: E402

SYSTEM = "mlflow"
KEYS = ("loss", "acc", "lr", "grad_norm")


_STORES = [0]


def new_store(base):
    """A fresh SQLite tracking DB + file artifact root in a new directory under `base`.

    Returns (uri, client, experiment id, directory). A new path each time: MLflow caches its store
    (and pooled connections) per URI, so a DB re-created at the same path would not be seen.
    Creating the DB runs MLflow's alembic migrations (seconds); callers keep that out of the timer."""
    import mlflow
    from mlflow import MlflowClient

    _STORES[0] += 1
    d = os.path.join(base, f"store{_STORES[0]}")
    common.remove(base)
    os.makedirs(d)
    uri = f"sqlite:///{d}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    eid = client.create_experiment("bench", artifact_location=f"file://{d}/artifacts")
    mlflow.set_experiment(experiment_id=eid)
    return uri, client, eid, d


def loss_history(client, run_id):
    import numpy as np

    hist = client.get_metric_history(run_id, "loss")
    hist = sorted(hist, key=lambda m: m.step)
    return np.array([m.value for m in hist], dtype=np.float64)


def w1(a, data, refs, ver, work, state):
    import mlflow
    from mlflow.entities import Metric

    # per-step: fluent log_metrics, each call a committed SQLite transaction (synchronous=FULL)
    n = common.size(2_000, 200)
    reps = common.size(3, 1)
    cols = data.w1(n)
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in KEYS}
    d = os.path.join(work, "w1s")

    def job(_):
        with mlflow.start_run():
            for i in range(n):
                mlflow.log_metrics({k: vals[k][i] for k in KEYS}, step=steps[i])

    med, times, _ = common.median_reps(job, reps, lambda: new_store(d))
    d = os.path.join(d, f"store{_STORES[0]}")
    rec = {"system": SYSTEM, "workload": "W1", "variant": "per-step", "n": n, "reps": reps, "median_s": med,
           "values_per_s": 4 * n / med, "bytes": common.path_bytes(d), "correct": True, "version": ver,
           "load1": common.load_note(),
           "note": "mlflow.log_metrics(4 keys, step) per step inside start_run/end_run (timed); fresh DB per rep, "
                   "migrations untimed; bytes include the ~0.95 MB empty schema; reduced n (slow)"}
    common.emit(common.with_refs(rec, *refs.w1(n, False)))
    common.remove(d, a.keep)

    # batched: MlflowClient.log_batch with 4,000 Metric objects (1,000 steps) per call
    n = common.size(100_000, 2_000)
    reps = 1 if n >= 50_000 or common.QUICK else 3
    cols = data.w1(n)
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in KEYS}
    d = os.path.join(work, "w1b")
    holder = {}

    def setup():
        holder["store"] = new_store(d)
        return holder["store"]

    def jobb(store):
        uri, client, eid, _ = store
        run = client.create_run(eid)
        rid = run.info.run_id
        ts = int(time.time() * 1000)
        for lo in range(0, n, 1000):
            client.log_batch(rid, metrics=[Metric(k, vals[k][i], ts, steps[i])
                                           for i in range(lo, min(n, lo + 1000)) for k in KEYS])
        client.set_terminated(rid)
        return rid

    med, times, rid = common.median_reps(jobb, reps, setup)
    rec = {"system": SYSTEM, "workload": "W1", "variant": "batched", "n": n, "reps": reps, "median_s": med,
           "values_per_s": 4 * n / med, "bytes": common.path_bytes(d), "correct": True, "version": ver,
           "load1": common.load_note(),
           "note": "MlflowClient.log_batch(4,000 Metric) per 1,000 steps (client splits into 1,000-metric store calls)"}
    common.emit(common.with_refs(rec, *refs.w1(n, True)))
    state["w2"] = (d, holder["store"][0], rid, n)


def w2(a, data, refs, ver, work, state):
    from mlflow import MlflowClient

    if "w2" not in state:
        w1(a, data, refs, ver, work, state)
    d, uri, rid, n = state["w2"]
    want = data.w1_loss_sum(n)
    client = MlflowClient(uri)
    reps = 3
    med, _, arr = common.median_reps(lambda: loss_history(client, rid), reps)
    ok = len(arr) == n and common.close(float(arr.sum()), want, 1e-9)
    (sref, aref) = refs.w2(n)
    rec = {"system": SYSTEM, "workload": "W2", "variant": "warm-read", "n": n, "reps": reps, "median_s": med,
           "values_per_s": n / med, "correct": ok, "version": ver,
           "note": "MlflowClient.get_metric_history(run_id, 'loss') -> numpy, client already open"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["median_s"]), ("pyarrow-ipc", aref["median_s"])))
    fr = common.fresh("bench_mlflow.py", "w2", uri, rid, reps=reps)
    okf = fr["n"] == n and common.close(fr["sum"], want, 1e-9)
    common.emit_fresh(SYSTEM, n, reps, fr, okf, ver,
                      "new python process: import numpy (base_import_s), import mlflow (import_s), MlflowClient + "
                      "get_metric_history (open_query_s); median_s = process wall time",
                      sref, aref)
    common.remove(d, a.keep)


def child(args):
    clock = common.ChildClock()
    import numpy  # noqa: F401

    clock.mark("base_import_s")
    import mlflow  # noqa: F401
    from mlflow import MlflowClient

    clock.mark("import_s")
    uri, rid = args[1], args[2]
    arr = loss_history(MlflowClient(uri), rid)
    clock.mark("open_query_s")
    clock.report(n=len(arr), sum=float(arr.sum()))


def w3(a, data, refs, ver, work, state):
    import mlflow
    from mlflow.entities import Metric

    n = common.size(1000, 50)
    reps = 1 if n >= 500 or common.QUICK else 3
    params, outputs = data.w3(n)
    names, pdicts = common.w3_param_dicts(params)
    outs = common.w3_output_rows(outputs)
    top10, matches = data.w3_expected(n)
    d = os.path.join(work, "w3")
    holder = {}

    def setup():
        holder["store"] = new_store(d)
        return holder["store"]

    def job(store):
        uri, client, eid, _ = store
        for name in names:
            with mlflow.start_run(run_name=name) as run:
                mlflow.log_params(pdicts[name_idx[name]])
                ts = int(time.time() * 1000)
                ms = []
                for e, acc, loss in outs[name]:
                    ms.append(Metric("acc", acc, ts, e))
                    ms.append(Metric("loss", loss, ts, e))
                client.log_batch(run.info.run_id, metrics=ms)

    name_idx = {nm: i for i, nm in enumerate(names)}
    wmed, _, _ = common.median_reps(job, reps, setup)
    uri, client, eid, _ = holder["store"]

    def query():
        found, token = [], None
        while True:
            page = client.search_runs([eid], "metrics.acc > 0.5", order_by=["metrics.acc DESC"],
                                      max_results=1000, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        hits = [r for r in found if float(r.data.params["lr"]) < 0.01]
        return [r.info.run_name for r in hits[:10]], len(hits)

    qreps = 3
    qmed, _, (got, got_n) = common.median_reps(query, qreps)
    sref, aref = refs.w3(n)
    rec = {"system": SYSTEM, "workload": "W3", "variant": "write", "n": n, "reps": reps, "median_s": wmed,
           "runs_per_s": n / wmed, "bytes": common.path_bytes(d), "version": ver, "load1": common.load_note(),
           "note": "per run: fluent start_run(run_name) + log_params(20) + MlflowClient.log_batch(10 epochs x "
                   "acc,loss) + end_run; fresh DB, migrations untimed"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W3", "variant": "query", "n": n, "reps": qreps, "median_s": qmed,
           "correct": got == top10 and got_n == matches, "matches": got_n, "version": ver,
           "note": "search_runs('metrics.acc > 0.5', order_by=['metrics.acc DESC']) (all pages), then lr < 0.01 "
                   "filtered in Python: params are strings, the filter 'params.lr < 0.01' is rejected"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["query_s"]), ("pyarrow-ipc", aref["query_s"])))
    common.remove(d, a.keep)


def w4(a, data, refs, ver, work, state):
    import mlflow

    n = common.size(1_000_000, 50_000)
    reps = 1 if n >= 500_000 or common.QUICK else 3
    t = data.w4(n)
    want = data.w4_loss_sum(n)
    df = t.to_pandas()  # the caller's DataFrame (embedding: one numpy array per row); untimed
    d = os.path.join(work, "w4")
    holder = {}

    def setup():
        holder["store"] = new_store(d)
        return holder["store"]

    def write(store):
        with mlflow.start_run() as run:
            mlflow.log_table(df, "samples.parquet")
        return run.info.run_id

    wmed, _, rid = common.median_reps(write, reps, setup)
    uri, client, eid, _ = holder["store"]
    art = os.path.join(holder["store"][3], "artifacts")

    def read():
        r = mlflow.load_table("samples.parquet", run_ids=[rid])
        return len(r), float(r["loss"].to_numpy().astype("float64").sum()), len(r["embedding"].iloc[0])

    rreps = 3
    rmed, _, (rows, s, dim) = common.median_reps(read, rreps)
    ok = rows == n and dim == 64 and common.close(s, want, 1e-6)
    sref, aref = refs.w4(n)
    rec = {"system": SYSTEM, "workload": "W4", "variant": "write", "n": n, "reps": reps, "median_s": wmed,
           "rows_per_s": n / wmed, "bytes": common.path_bytes(art), "version": ver, "load1": common.load_note(),
           "note": "mlflow.log_table(df, 'samples.parquet') in a run; bytes = artifact files only"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W4", "variant": "read-sum", "n": n, "reps": rreps, "median_s": rmed,
           "rows_per_s": n / rmed, "correct": ok, "version": ver,
           "note": "mlflow.load_table('samples.parquet', run_ids=[id]) -> pandas, sum loss"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["read_s"]), ("pyarrow-ipc", aref["read_s"])))
    common.remove(d, a.keep)


def main():
    a = common.parse_args(__doc__)
    data = common.Data(a.data_dir)
    work = common.fresh_dir(a.work, SYSTEM)
    refs = Refs(data, a.work)
    t0 = time.perf_counter()
    import mlflow  # noqa: F401

    common.log(f"mlflow import {time.perf_counter() - t0:.2f}s")
    ver = common.version("mlflow")
    state = {}
    for w, fn in (("W1", w1), ("W2", w2), ("W3", w3), ("W4", w4)):
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
