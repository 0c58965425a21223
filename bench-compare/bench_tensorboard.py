#!/usr/bin/env python3
"""TensorBoard event files (tensorboardX writer, tensorboard EventAccumulator / tbparse readers)
on W1-W4, with same-run references.

    .venv/bin/python bench_tensorboard.py DATA_DIR [--quick] [--only W1,W2]

Prints one JSON line per measurement on stdout (see README.md). TensorFlow is not installed:
tensorboard's EventAccumulator works without it.
"""
import glob
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bench_references import Refs  # noqa: E402

SYSTEM = "tensorboard"
KEYS = ("loss", "acc", "lr", "grad_norm")
# EventAccumulator keeps a 10,000-point reservoir sample per tag unless told otherwise.
SIZE_GUIDANCE = {"scalars": 0}


def read_loss(logdir):
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(logdir, size_guidance=SIZE_GUIDANCE)
    acc.Reload()
    ev = sorted(acc.Scalars("loss"), key=lambda e: e.step)
    return np.array([e.value for e in ev], dtype=np.float64)


def w1(a, data, refs, ver, work, state):
    from tensorboardX import FileWriter, SummaryWriter
    from tensorboardX.proto.summary_pb2 import Summary

    n = common.size(100_000, 5_000)
    reps = 1 if n >= 50_000 else 3
    cols = data.w1(n)
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in KEYS}
    d = os.path.join(work, "w1s")

    def job(_):
        w = SummaryWriter(d)
        for i in range(n):
            for k in KEYS:
                w.add_scalar(k, vals[k][i], steps[i])
        w.close()

    med, _, _ = common.median_reps(job, reps, lambda: common.fresh_dir(d))
    refs1 = refs.w1(n, False)
    rec = {"system": SYSTEM, "workload": "W1", "variant": "per-step", "n": n, "reps": reps, "median_s": med,
           "values_per_s": 4 * n / med, "bytes": common.path_bytes(d), "correct": True, "version": ver,
           "load1": common.load_note(),
           "note": "tensorboardX SummaryWriter.add_scalar x4 per step + close() (timed). Not durable per call: "
                   "events are queued and flushed every flush_secs=120 and on close()"}
    common.emit(common.with_refs(rec, *refs1))
    state["w2"] = (d, n)

    d2 = os.path.join(work, "w1f")

    def job2(_):
        w = FileWriter(d2)
        for i in range(n):
            w.add_summary(Summary(value=[Summary.Value(tag=k, simple_value=vals[k][i]) for k in KEYS]), steps[i])
        w.close()

    med, _, _ = common.median_reps(job2, reps, lambda: common.fresh_dir(d2))
    rec = {"system": SYSTEM, "workload": "W1", "variant": "per-step-summary", "n": n, "reps": reps,
           "median_s": med, "values_per_s": 4 * n / med, "bytes": common.path_bytes(d2), "correct": True,
           "version": ver, "load1": common.load_note(),
           "note": "lower-level tensorboardX FileWriter.add_summary(one Summary holding 4 values) per step + close()"}
    common.emit(common.with_refs(rec, *refs1))
    common.remove(d2, a.keep)
    common.unsupported(SYSTEM, "W1", "batched", "no tensorboardX call covers several steps", ver)


def w2(a, data, refs, ver, work, state):
    if "w2" not in state:
        w1(a, data, refs, ver, work, state)
    d, n = state["w2"]
    want = data.w1_loss_sum(n)
    reps = 1 if n >= 50_000 else 3
    med, _, arr = common.median_reps(lambda: read_loss(d), reps)
    # TensorBoard stores scalars as float32: compare with a float32-sized tolerance.
    ok = len(arr) == n and common.close(float(arr.sum()), want, 1e-6)
    sref, aref = refs.w2(n)
    rec = {"system": SYSTEM, "workload": "W2", "variant": "warm-read", "n": n, "reps": reps, "median_s": med,
           "values_per_s": n / med, "correct": ok, "version": ver,
           "note": "EventAccumulator(logdir, size_guidance={'scalars': 0}).Reload() + Scalars('loss'): parses the "
                   "whole event file (all 4 tags); values are float32 (checked at rel 1e-6); the add_scalar file"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["median_s"]), ("pyarrow-ipc", aref["median_s"])))
    fr = common.fresh("bench_tensorboard.py", "w2", d, reps=reps)
    okf = fr["n"] == n and common.close(fr["sum"], want, 1e-6)
    common.emit_fresh(SYSTEM, n, reps, fr, okf, ver,
                      "new python process: import numpy (base_import_s), import EventAccumulator (import_s), "
                      "Reload + Scalars (open_query_s); median_s = process wall time",
                      sref, aref)
    common.remove(d, a.keep)


def child(args):
    clock = common.ChildClock()
    import numpy  # noqa: F401

    clock.mark("base_import_s")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: F401

    clock.mark("import_s")
    arr = read_loss(args[1])
    clock.mark("open_query_s")
    clock.report(n=len(arr), sum=float(arr.sum()))


def w3(a, data, refs, ver, work, state):
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    n = common.size(1000, 50)
    reps = 1 if n >= 500 else 3
    params, outputs = data.w3(n)
    names, pdicts = common.w3_param_dicts(params)
    outs = common.w3_output_rows(outputs)
    top10, matches = data.w3_expected(n)
    d = os.path.join(work, "w3")

    def job(_):
        for i, name in enumerate(names):
            w = SummaryWriter(os.path.join(d, name))
            for e, acc, loss in outs[name]:
                w.add_scalar("acc", acc, e)
                w.add_scalar("loss", loss, e)
            # What add_hparams() writes, into this run's own writer: add_hparams(name=...) would open a
            # second writer (and event file) per run. The metric 'acc' refers to the scalar tag above.
            for s in hparams(pdicts[i], {"acc": outs[name][-1][1]}):
                w.file_writer.add_summary(s)
            w.close()

    wmed, _, _ = common.median_reps(job, reps, lambda: common.fresh_dir(d))

    def query():
        from tbparse import SummaryReader

        r = SummaryReader(d, extra_columns={"dir_name"})
        hp = r.hparams
        sc = r.scalars
        lr = hp[hp["tag"] == "lr"].set_index("dir_name")["value"].astype(float)
        acc = sc[sc["tag"] == "acc"].sort_values("step").groupby("dir_name")["value"].last()
        df = lr.to_frame("lr").join(acc.to_frame("acc"), how="inner")
        df = df[(df["lr"] < 0.01) & (df["acc"] > 0.5)]
        df = df.reset_index().sort_values(["acc", "dir_name"], ascending=[False, True])
        return list(df["dir_name"][:10]), len(df)

    qreps = 1 if n >= 500 else 3
    qmed, _, (got, got_n) = common.median_reps(query, qreps)
    sref, aref = refs.w3(n)
    rec = {"system": SYSTEM, "workload": "W3", "variant": "write", "n": n, "reps": reps, "median_s": wmed,
           "runs_per_s": n / wmed, "bytes": common.path_bytes(d), "files": common.path_files(d), "version": ver,
           "load1": common.load_note(),
           "note": "per run: SummaryWriter(logdir/run), add_scalar acc+loss for 10 epochs, the 3 hparams summaries "
                   "(tensorboardX.summary.hparams, 20 params, metric 'acc'), close()"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W3", "variant": "query", "n": n, "reps": qreps, "median_s": qmed,
           "correct": got == top10 and got_n == matches, "matches": got_n, "version": ver,
           "note": "no query API: tbparse SummaryReader(logdir).hparams + .scalars load every run, then pandas "
                   "filters (acc = the run's last acc) and sorts. acc values are float32"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["query_s"]), ("pyarrow-ipc", aref["query_s"])))
    common.remove(d, a.keep)


def w4(a, data, refs, ver, work, state):
    import numpy as np
    import pandas as pd
    from tensorboardX import SummaryWriter

    n = common.size(100_000, 10_000)
    reps = 1 if n >= 50_000 else 3
    t = data.w4(n)
    want = data.w4_loss_sum(n)
    header = ["example_id", "epoch", "predicted", "loss", "confidence"]
    mat = t.column("embedding").combine_chunks().flatten().to_numpy().reshape(n, 64)
    meta = [list(r) for r in zip(*(t.column(c).to_numpy().tolist() for c in header))]  # untimed input prep
    # tolist() gives Python floats printed with float64 digits; the writer prints what it is given.
    d = os.path.join(work, "w4")

    def write(_):
        w = SummaryWriter(d)
        w.add_embedding(mat, metadata=meta, metadata_header=header, tag="samples", global_step=0)
        w.close()

    wmed, _, _ = common.median_reps(write, reps, lambda: common.fresh_dir(d))

    def read():
        tens = glob.glob(os.path.join(d, "*", "samples", "tensors.tsv"))[0]
        md = os.path.join(os.path.dirname(tens), "metadata.tsv")
        emb = pd.read_csv(tens, sep="\t", header=None, dtype=np.float32).to_numpy()
        m = pd.read_csv(md, sep="\t")
        return len(m), emb.shape, float(m["loss"].to_numpy(dtype=np.float64).sum())

    rreps = 3
    rmed, _, (rows, shape, s) = common.median_reps(read, rreps)
    ok = rows == n and shape == (n, 64) and common.close(s, want, 1e-6)
    sref, aref = refs.w4(n)
    rec = {"system": SYSTEM, "workload": "W4", "variant": "write", "n": n, "reps": reps, "median_s": wmed,
           "rows_per_s": n / wmed, "bytes": common.path_bytes(d), "version": ver, "load1": common.load_note(),
           "note": "add_embedding(mat[n,64], metadata=5 columns) -> projector TSV text files (the only table-like "
                   "path); reduced n (slow)"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["write_s"]), ("pyarrow-ipc", aref["write_s"])))
    rec = {"system": SYSTEM, "workload": "W4", "variant": "read-sum", "n": n, "reps": rreps, "median_s": rmed,
           "rows_per_s": n / rmed, "correct": ok, "version": ver,
           "note": "pandas.read_csv of tensors.tsv and metadata.tsv, sum loss (no TensorBoard reader API for it)"}
    common.emit(common.with_refs(rec, ("sqlite3-wal", sref["read_s"]), ("pyarrow-ipc", aref["read_s"])))
    common.remove(d, a.keep)


def main():
    a = common.parse_args(__doc__)
    data = common.Data(a.data_dir)
    work = common.fresh_dir(a.work, SYSTEM)
    refs = Refs(data, a.work)
    t0 = time.perf_counter()
    import tensorboardX  # noqa: F401

    common.log(f"tensorboardX import {time.perf_counter() - t0:.2f}s")
    ver = f"tensorboardX {common.version('tensorboardX')}, tensorboard {common.version('tensorboard')}"
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
