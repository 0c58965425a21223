"""runstore from Python: W1 per-step logging, W2 reading a series back into numpy, W4
add_metrics_data of 1,000,000 rows from numpy (against pyarrow writing an Arrow IPC file) and
reading it back (against pyarrow's memory-mapped IPC read).

Run (after `maturin develop --release` in a virtualenv with pyarrow and numpy):

    python bench-compare/runstore_py.py [--steps 100000] [--rows 1000000] [--reps 3]

Prints one JSON line per measurement (medians of --reps repetitions, data from a fixed numpy
seed). Peers measured from Python (../shared/research/peers.md): MLflow 382 values/s per
step, Aim 2,443, TensorBoard 7,253.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import runstore

W2_CHILD = """
import sys, time
t0 = time.perf_counter()
import runstore
store = runstore.open(sys.argv[1], read_only=True)
t1 = time.perf_counter()
table = store.table(sys.argv[2])
loss = table.to_numpy("loss")
t2 = time.perf_counter()
assert loss.shape == (int(sys.argv[3]),), loss.shape
print(t2 - t1, t2 - t0, float(loss.sum()))
"""


def emit(**fields):
    print(json.dumps(fields), flush=True)


def median(xs):
    return statistics.median(xs)


def w1(tmp, steps, reps):
    times = []
    last_path = None
    for rep in range(reps):
        path = os.path.join(tmp, f"w1-{rep}.runs")
        rng = np.random.default_rng(rep)
        values = rng.random((steps, 4)).tolist()
        store = runstore.open(path)
        run = store.init(project_name="bench", run_name="w1")
        log = run.log
        start = time.perf_counter()
        for step, (a, b, c, d) in enumerate(values):
            log({"loss": a, "acc": b, "lr": c, "grad_norm": d}, step=step)
        store.close()  # commit and seal every row
        times.append(time.perf_counter() - start)
        last_path = path
    m = median(times)
    emit(system="runstore-python", workload="W1", variant="per-step", n=steps, reps=reps,
         median_s=m, values_per_s=4 * steps / m, steps_per_s=steps / m,
         bytes=os.path.getsize(last_path),
         reference="tensorboard-python (peers.md)", reference_values_per_s=7253,
         ratio=(4 * steps / m) / 7253)
    return last_path


def w2(path, steps, reps):
    with runstore.open(path, read_only=True) as store:
        url = store.run("bench/runs/w1").metrics_tables[0].url
    read, total = [], []
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", W2_CHILD, path, url, str(steps)],
                             check=True, capture_output=True, text=True).stdout.split()
        read.append(float(out[0]))
        total.append(float(out[1]))
    emit(system="runstore-python", workload="W2", variant="series-to-numpy, fresh process",
         n=steps, reps=reps, median_s=median(read), values_per_s=steps / median(read),
         median_s_with_import=median(total))


def w4_data(rows):
    rng = np.random.default_rng(42)
    return {
        "example_id": np.arange(rows, dtype=np.int32),
        "epoch": np.full(rows, 3, dtype=np.int32),
        "predicted": rng.integers(0, 10, rows, dtype=np.int32),
        "loss": rng.random(rows, dtype=np.float32),
        "confidence": rng.random(rows, dtype=np.float32),
        "embedding": rng.random((rows, 64), dtype=np.float32),
    }


def w4(tmp, rows, reps):
    data = w4_data(rows)
    expected = float(data["loss"].astype(np.float64).sum())
    write, ref_write, ref_write_sync = [], [], []
    store_path = ipc_path = None
    for rep in range(reps):
        store_path = os.path.join(tmp, f"w4-{rep}.runs")
        store = runstore.open(store_path)
        run = store.init(project_name="bench", run_name="w4")
        start = time.perf_counter()
        run.add_metrics_data(data)
        write.append(time.perf_counter() - start)
        store.close()

        ipc_path = os.path.join(tmp, f"w4-{rep}.arrow")
        start = time.perf_counter()
        table = runstore.to_arrow_table(data)  # the same numpy -> Arrow conversion
        with pa.OSFile(ipc_path, "wb") as sink:
            with pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        ref_write.append(time.perf_counter() - start)
        with open(ipc_path, "rb+") as f:
            os.fsync(f.fileno())
        ref_write_sync.append(time.perf_counter() - start)
        if rep < reps - 1:
            os.remove(ipc_path)
    m, r = median(write), median(ref_write)
    emit(system="runstore-python", workload="W4", variant="add_metrics_data from numpy",
         n=rows, reps=reps, median_s=m, rows_per_s=rows / m,
         bytes=os.path.getsize(store_path), reference="pyarrow-ipc",
         reference_median_s=r, ratio=m / r,
         reference_with_fsync_median_s=median(ref_write_sync),
         ratio_vs_fsync=m / median(ref_write_sync))

    read, ref_read = [], []
    for _ in range(reps):
        start = time.perf_counter()
        with runstore.open(store_path, read_only=True) as store:
            table = store.run("bench/runs/w4").metrics_tables[0].to_arrow(["loss"])
            total = pc.sum(table.column("loss")).as_py()
        read.append(time.perf_counter() - start)
        assert abs(total - expected) / expected < 1e-3, (total, expected)

        start = time.perf_counter()
        with pa.memory_map(ipc_path) as source:
            t = pa.ipc.open_file(source).read_all()
            total_ref = pc.sum(t.column("loss")).as_py()
        ref_read.append(time.perf_counter() - start)
        assert abs(total_ref - expected) / expected < 1e-3
    m, r = median(read), median(ref_read)
    emit(system="runstore-python", workload="W4", variant="read as pyarrow + sum loss",
         n=rows, reps=reps, median_s=m, rows_per_s=rows / m, reference="pyarrow-ipc-mmap",
         reference_median_s=r, ratio=m / r)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="runstore-py-bench-")
    try:
        path = w1(tmp, args.steps, args.reps)
        w2(path, args.steps, args.reps)
        w4(tmp, args.rows, args.reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
