#!/usr/bin/env python3
"""`runstore import` against each tool's own reader, on 100,000 steps x 4 scalars (issue 20).

    python3 bench_import.py [--dir /tmp/runstore-import-bench] [--reps 3] [--n 100000]
        [--py .venv/bin/python] [--py-trackio .venv-trackio/bin/python] [--runstore BIN]
        [--out results/YYYY-MM-DD-import.jsonl] [--no-file-store]

The driver needs only the standard library: every tool call runs in a child process
(`--child ROLE ...`) under the venv holding the tool (`--py`: mlflow, tensorboardX, tensorboard,
tbparse; `--py-trackio`: trackio).

1. Generates, with the real tools, in `--dir` (kept: generation is skipped when its `done.json`
   is present): a TensorBoard run (tensorboardX SummaryWriter.add_scalar x4 per step + close()),
   an MLflow run in `mlflow.db` and one in an `mlruns/` file store (MlflowClient.log_batch,
   1,000 Metric per call = 250 steps), a trackio project (trackio.log({4 keys}, step=i) +
   finish(), TRACKIO_DIR under --dir, local only). Same values everywhere (numpy seed 20).
2. Times, medians of --reps, each rep in a fresh process: the tool's reader loading all 4 series
   (`median_s` = load time inside the process, imports excluded; `wall_s` = process wall time);
   `runstore import` into a new DEST (process wall time); reading the imported steps table back
   (`runstore scan DEST <run>/steps_0000 --format arrow > /dev/null`, process wall time).
3. Checks: the tool's reader returns n points per key, the imported steps_0000 has n rows, the 4
   tag columns, and the same loss sum (rel 1e-6: TensorBoard stores float32).

Prints a table on stderr and appends one JSON line per measurement to --out.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = ("loss", "acc", "lr", "grad_norm")
SEED = 20
PROJECT = "import-bench"
RUN = "run-1"

for _k, _v in (("MLFLOW_DISABLE_TELEMETRY", "true"), ("DO_NOT_TRACK", "1"), ("GIT_PYTHON_REFRESH", "quiet"),
               ("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("GRADIO_ANALYTICS_ENABLED", "False"),
               ("TRACKIO_STORAGE_MODE", "sqlite"), ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")):
    os.environ.setdefault(_k, _v)
for _k in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_DATASET_ID", "TRACKIO_BUCKET_ID",
           "TRACKIO_REGISTRY_BUCKET_ID", "TRACKIO_WEBHOOK_URL", "SPACE_ID", "SYSTEM"):
    os.environ.pop(_k, None)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- children (run in the tool venvs)


def values(n):
    """step list and {key: list of Python floats}; float32-exact so every tool stores the same."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    i = np.arange(n, dtype=np.float64)
    cols = {
        "loss": 2.5 * np.exp(-i / 30000) + 0.05 * rng.random(n),
        "acc": 1 - np.exp(-i / 20000) * (0.9 + 0.05 * rng.random(n)),
        "lr": 1e-3 * np.cos(np.pi * i / (2 * n)) + 1e-6,
        "grad_norm": 1 + 4 * rng.random(n),
    }
    return list(range(n)), {k: v.astype(np.float32).astype(np.float64).tolist() for k, v in cols.items()}


def report(**d):
    print(json.dumps(d), flush=True)


def gen_tensorboard(d, n):
    from tensorboardX import SummaryWriter

    steps, vals = values(n)
    t0 = time.perf_counter()
    w = SummaryWriter(os.path.join(d, PROJECT, RUN))
    for i in steps:
        for k in KEYS:
            w.add_scalar(k, vals[k][i], i)
    w.close()
    report(gen_s=time.perf_counter() - t0, src=os.path.join(d, PROJECT))


def gen_mlflow(d, n, kind):
    if kind == "file":
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    steps, vals = values(n)
    uri = f"sqlite:///{d}/mlflow.db" if kind == "sqlite" else f"file:{d}/mlruns"
    client = MlflowClient(tracking_uri=uri)
    eid = client.create_experiment(PROJECT, artifact_location=f"file://{d}/artifacts")
    run = client.create_run(eid, run_name=RUN)
    rid = run.info.run_id
    ts = int(time.time() * 1000)
    per = 1000 // len(KEYS)  # MLflow caps a log_batch at 1,000 metrics: 250 steps per call
    t0 = time.perf_counter()
    for s in range(0, n, per):
        client.log_batch(rid, metrics=[Metric(k, vals[k][i], ts + i, i) for i in steps[s:s + per] for k in KEYS])
    client.set_terminated(rid)
    gen = time.perf_counter() - t0
    report(gen_s=gen, src=f"{d}/mlflow.db" if kind == "sqlite" else f"{d}/mlruns", uri=uri, run_id=rid)


def gen_trackio(d, n):
    os.environ["TRACKIO_DIR"] = d
    import contextlib

    import trackio
    from trackio import context_vars

    steps, vals = values(n)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        trackio.init(project=PROJECT, name=RUN, auto_log_cpu=False, auto_log_gpu=False, embed=False)
    for i in steps:
        trackio.log({k: vals[k][i] for k in KEYS}, step=i)
    run = context_vars.current_run.get()
    with contextlib.redirect_stdout(sys.stderr):
        trackio.finish()
    t = getattr(run, "_local_sender_thread", None)
    while t is not None and t.is_alive():  # finish() joins with a 30 s timeout
        time.sleep(0.1)
    report(gen_s=time.perf_counter() - t0, src=os.path.join(d, PROJECT + ".db"))


def read_child(role, args):
    t0 = time.perf_counter()
    import numpy  # noqa: F401

    if role == "read-tensorboard":
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        t1 = time.perf_counter()
        acc = EventAccumulator(args[0], size_guidance={"scalars": 0})
        acc.Reload()
        series = {k: [e.value for e in acc.Scalars(k)] for k in KEYS}
    elif role == "read-tbparse":
        from tbparse import SummaryReader

        t1 = time.perf_counter()
        df = SummaryReader(args[0], pivot=True).scalars  # one row per step, a column per tag
        series = {k: df[k].dropna().tolist() for k in KEYS}
    elif role == "read-mlflow":
        if args[0].startswith("file:"):
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        from mlflow.tracking import MlflowClient

        t1 = time.perf_counter()
        client = MlflowClient(tracking_uri=args[0])
        series = {k: [m.value for m in client.get_metric_history(args[1], k)] for k in KEYS}
    elif role == "read-trackio":
        os.environ["TRACKIO_DIR"] = args[0]
        from trackio.sqlite_storage import SQLiteStorage

        t1 = time.perf_counter()
        logs = SQLiteStorage.get_logs(PROJECT, RUN)  # every step: a dict with the logged keys
        series = {k: [r[k] for r in logs if k in r] for k in KEYS}
    else:
        raise SystemExit(f"unknown role {role}")
    t2 = time.perf_counter()
    report(import_s=t1 - t0, load_s=t2 - t1, rows={k: len(v) for k, v in series.items()},
           loss_sum=float(sum(series["loss"])))


def child_main(argv):
    role, args = argv[0], argv[1:]
    if role == "gen-tensorboard":
        gen_tensorboard(args[0], int(args[1]))
    elif role in ("gen-mlflow-sqlite", "gen-mlflow-file"):
        gen_mlflow(args[0], int(args[1]), role.rsplit("-", 1)[1])
    elif role == "gen-trackio":
        gen_trackio(args[0], int(args[1]))
    else:
        read_child(role, args)


# ---------------------------------------------------------------- driver


def child(py, role, *args, env=None):
    cmd = [py, os.path.abspath(__file__), "--child", role, *[str(a) for a in args]]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{role} failed: {p.stderr[-3000:]}")
    rep = json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])
    rep["wall_s"] = wall
    return rep


def run(cmd, **kw):
    t0 = time.perf_counter()
    if "stdout" in kw:
        p = subprocess.run(cmd, stderr=subprocess.PIPE, **kw)
    else:
        p = subprocess.run(cmd, capture_output=True, **kw)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({p.returncode}): {p.stderr[-3000:]!r}")
    return wall, p


def py_version(py, pkg):
    try:
        return subprocess.run([py, "-c", f"import importlib.metadata as m; print(m.version('{pkg}'))"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None


def loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default="/tmp/runstore-import-bench", help="work dir (generated data is cached here)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n", type=int, default=100_000, help="steps (4 scalars each)")
    ap.add_argument("--py", default=os.path.join(HERE, ".venv", "bin", "python"))
    ap.add_argument("--py-trackio", default=os.path.join(HERE, ".venv-trackio", "bin", "python"))
    ap.add_argument("--runstore", default=shutil.which("runstore") or "runstore")
    ap.add_argument("--out", default=os.path.join(HERE, "results", datetime.date.today().isoformat() + "-import.jsonl"))
    ap.add_argument("--no-file-store", action="store_true", help="skip the MLflow mlruns/ file store")
    ap.add_argument("--only", default="tensorboard,mlflow-sqlite,mlflow-file,trackio")
    a = ap.parse_args()
    n, reps = a.n, a.reps
    work = os.path.join(os.path.abspath(a.dir), f"n{n}")
    os.makedirs(work, exist_ok=True)
    rs = os.path.abspath(a.runstore) if os.path.exists(a.runstore) else a.runstore
    rs_version = subprocess.run([rs, "--version"], capture_output=True, text=True).stdout.strip()
    versions = {"runstore": rs_version, "mlflow": py_version(a.py, "mlflow"),
                "tensorboardX": py_version(a.py, "tensorboardX"), "tensorboard": py_version(a.py, "tensorboard"),
                "tbparse": py_version(a.py, "tbparse"), "trackio": py_version(a.py_trackio, "trackio")}
    log("versions:", versions)
    sources = [s for s in a.only.split(",") if s]
    if a.no_file_store and "mlflow-file" in sources:
        sources.remove("mlflow-file")
    out = open(a.out, "a")
    rows_out = []

    def emit(rec):
        rec = {k: v for k, v in rec.items() if v is not None}
        for k, v in list(rec.items()):
            if isinstance(v, float):
                rec[k] = float(f"{v:.4g}")
            elif isinstance(v, list) and v and isinstance(v[0], float):
                rec[k] = [float(f"{x:.4g}") for x in v]
        rec.setdefault("load1", loadavg())
        out.write(json.dumps(rec) + "\n")
        out.flush()
        rows_out.append(rec)
        log(json.dumps(rec))

    base = {"n": n, "values": 4 * n}
    for src in sources:
        tool = src.split("-")[0]
        py = a.py_trackio if tool == "trackio" else a.py
        ver = {"tensorboard": f"tensorboardX {versions['tensorboardX']}, tensorboard {versions['tensorboard']}",
               "mlflow": f"mlflow {versions['mlflow']}", "trackio": f"trackio {versions['trackio']}"}[tool]
        d = os.path.join(work, src)
        done = os.path.join(d, "done.json")
        try:
            # ---- generate (cached)
            if os.path.exists(done):
                with open(done) as f:
                    g = json.load(f)
                log(f"{src}: cached data in {d} (generated in {g['gen_s']:.1f} s)")
            else:
                shutil.rmtree(d, ignore_errors=True)
                os.makedirs(d)
                log(f"{src}: generating {n} steps x 4 in {d} ...")
                g = child(py, "gen-" + src, d, n)
                g["generated_at"] = datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z"
                g["load1"] = loadavg()
                with open(done, "w") as f:
                    json.dump(g, f)
            gnote = {"tensorboard": "tensorboardX SummaryWriter.add_scalar x4 per step + close() (add_scalars "
                                    "would write a sub-run folder per tag, i.e. 4 runs)",
                     "mlflow-sqlite": "MlflowClient.log_batch(1,000 Metric = 250 steps) per call, sqlite:///mlflow.db",
                     "mlflow-file": "MlflowClient.log_batch(1,000 Metric = 250 steps) per call, file: store (mlruns/)",
                     "trackio": "trackio.init + log({4 keys}, step=i) per step + finish(), until its writer thread ended"}[src]
            emit({"source": src, "what": "generate", "median_s": g["gen_s"], "reps": 1, **base,
                  "bytes": sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs
                               if f != "done.json"),
                  "version": ver, "load1": g.get("load1"), "note": gnote + " (timed once, when the data was made)"})

            # ---- the tool's reader, fresh process per rep
            tb_run = os.path.join(g["src"], RUN)  # the run's folder: EventAccumulator reads one run
            readers = {"tensorboard": [("read-tensorboard", [tb_run]), ("read-tbparse", [tb_run])],
                       "mlflow": [("read-mlflow", [g.get("uri"), g.get("run_id")])],
                       "trackio": [("read-trackio", [d])]}[tool]
            for role, args in readers:
                if role == "read-tbparse" and not versions["tbparse"]:
                    continue
                reps_r = [child(py, role, *args) for _ in range(reps)]
                loads = [r["load_s"] for r in reps_r]
                ok = all(v == n for v in reps_r[-1]["rows"].values())
                what = {"read-tensorboard": "EventAccumulator(size_guidance={'scalars': 0}).Reload() + Scalars x4",
                        "read-tbparse": "tbparse SummaryReader(logdir, pivot=True).scalars",
                        "read-mlflow": "MlflowClient.get_metric_history(run_id, key) x4",
                        "read-trackio": "SQLiteStorage.get_logs(project, run)"}[role]
                emit({"source": src, "what": "tool-read", "reader": what, "median_s": statistics.median(loads),
                      "times_s": loads, "wall_s": statistics.median(r["wall_s"] for r in reps_r),
                      "import_s": statistics.median(r["import_s"] for r in reps_r), "reps": reps, **base,
                      "rows": reps_r[-1]["rows"], "loss_sum": reps_r[-1]["loss_sum"], "correct": ok,
                      "version": (ver + (f", tbparse {versions['tbparse']}" if role == "read-tbparse" else "")),
                      "note": "fresh python process per rep; median_s = the load inside it (imports excluded), "
                              "wall_s = process wall time"})

            # ---- runstore import, new DEST per rep
            dest = os.path.join(work, f"{src}.runs")
            times = []
            for _ in range(reps):
                shutil.rmtree(dest, ignore_errors=True)
                if os.path.exists(dest):
                    os.remove(dest)
                w, p = run([rs, "import", "tensorboard" if tool == "tensorboard" else tool, g["src"], dest])
                times.append(w)
            import_out = p.stdout.decode(errors="replace").strip()
            # find the run's steps table
            _, p = run([rs, "tables", dest, "--json"])
            tables = [json.loads(ln) for ln in p.stdout.decode().splitlines() if ln.strip().startswith("{")]
            steps_t = [t for t in tables if str(t.get("url", t.get("table", ""))).endswith("/steps_0000")
                       and f"/runs/{RUN}/" in str(t.get("url", t.get("table", "")))]
            if not steps_t:
                raise RuntimeError(f"no {RUN}/steps_0000 among {tables}")
            url = steps_t[0].get("url", steps_t[0].get("table"))
            _, p = run([rs, "scan", dest, url, "--agg", f"count,sum:loss", "--format", "json"])
            agg = json.loads(p.stdout.decode().splitlines()[0])
            _, p = run([rs, "scan", dest, url, "--limit", "1", "--format", "json"])
            cols = sorted(json.loads(p.stdout.decode().splitlines()[0]).keys())
            cnt = next((v for k, v in agg.items() if k.startswith("count")), None)
            lsum = next((v for k, v in agg.items() if "sum" in k), None)
            ok = cnt == n and all(k in cols for k in KEYS) and lsum is not None and abs(
                lsum - reps_r[-1]["loss_sum"]) <= 1e-6 * abs(lsum)
            emit({"source": src, "what": "runstore-import", "median_s": statistics.median(times), "times_s": times,
                  "reps": reps, **base, "rows": cnt, "columns": cols, "loss_sum": lsum, "correct": ok,
                  "table": url, "bytes": os.path.getsize(dest) if os.path.isfile(dest) else None,
                  "version": f"{rs_version}; source {ver}", "stdout": import_out[-300:],
                  "note": "process wall time of `runstore import` into a new DEST (one commit per run, staged in "
                          "a scratch store then copied into DEST)"})

            # ---- read the imported table back, fresh process per rep
            for fmt in ("arrow", "json"):
                times = []
                for _ in range(reps):
                    with open(os.devnull, "wb") as nul:
                        w, _ = run([rs, "scan", dest, url, "--format", fmt], stdout=nul)
                    times.append(w)
                emit({"source": src, "what": f"runstore-read-{fmt}", "median_s": statistics.median(times),
                      "times_s": times, "reps": reps, **base, "rows": cnt, "columns": len(cols),
                      "version": rs_version,
                      "note": f"process wall time of `runstore scan DEST {url} --format {fmt} > /dev/null` "
                              "(all rows, all columns)"})
        except Exception as e:
            import traceback

            traceback.print_exc()
            emit({"source": src, "what": "error", "error": f"{type(e).__name__}: {e}"[:800]})

    # ---- table
    by = {}
    for r in rows_out:
        by.setdefault(r["source"], []).append(r)
    lines = ["| source | generate (tool) | tool reader: load / process wall | runstore import | runstore read-back (arrow / json) |",
             "|---|---|---|---|---|"]
    for src, rs_ in by.items():
        get = lambda w: [r for r in rs_ if r["what"] == w]  # noqa: E731
        gen = get("generate")
        reads = "; ".join(f"{r['reader'].split('(')[0].split()[-1] if 'tbparse' in r['reader'] else r['reader'].split('.')[0].split('(')[0]}"
                          f" {r['median_s']:.2f} / {r['wall_s']:.2f} s" for r in get("tool-read"))
        imp = get("runstore-import")
        ra, rj = get("runstore-read-arrow"), get("runstore-read-json")
        lines.append(f"| {src} | {gen[0]['median_s']:.1f} s | {reads} | "
                     f"{imp[0]['median_s']:.2f} s |" if imp else f"| {src} | {gen[0]['median_s'] if gen else '-'} | {reads} | error |")
        if imp and ra and rj:
            lines[-1] += f" {ra[0]['median_s']:.3f} / {rj[0]['median_s']:.3f} s |"
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
