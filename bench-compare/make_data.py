#!/usr/bin/env python3
"""Write the shared benchmark data set (Arrow IPC files + expected.json) from a numpy seed.

The Rust runner (`cargo run --release -p bench-compare`) writes the canonical files with the
same names and schemas; this script exists so bench-compare/ works on its own.

    python make_data.py DATA_DIR [--force]
"""
import argparse
import json
import os
import sys

import numpy as np
import pyarrow as pa

SEED = 20261122
N_STEPS = 100_000
N_RUNS = 1_000
N_EPOCHS = 10
N_SAMPLES = 1_000_000
EMB_DIM = 64

FILES = ("w1_steps.arrow", "w3_params_1000.arrow", "w3_outputs_1000.arrow", "w4_samples.arrow", "expected.json")


def write_ipc(path, table):
    tmp = path + ".tmp"
    with pa.OSFile(tmp, "wb") as sink:
        with pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
    os.replace(tmp, path)


def w1(rng):
    step = np.arange(N_STEPS, dtype=np.int64)
    t = step / N_STEPS
    loss = 2.5 * np.exp(-4.0 * t) + 0.05 * rng.random(N_STEPS)
    acc = 1.0 - 0.9 * np.exp(-3.0 * t) - 0.02 * rng.random(N_STEPS)
    lr = 1e-3 * np.cos(0.5 * np.pi * t) + 1e-6
    grad_norm = rng.lognormal(0.0, 0.5, N_STEPS)
    return pa.table({"step": step, "loss": loss, "acc": acc, "lr": lr, "grad_norm": grad_norm})


def w3(rng):
    runs = [f"run-{i:07d}" for i in range(N_RUNS)]
    cols = {
        "run": pa.array(runs, pa.utf8()),
        "lr": 10.0 ** rng.uniform(-4.0, -1.0, N_RUNS),
        "batch_size": rng.choice(np.array([16, 32, 64, 128, 256], dtype=np.int64), N_RUNS),
        "optimizer": pa.array([["adam", "adamw", "sgd"][k] for k in rng.integers(0, 3, N_RUNS)], pa.utf8()),
        "seed": np.arange(N_RUNS, dtype=np.int64) * 7919 % 100_003,
        "dropout": rng.uniform(0.0, 0.5, N_RUNS),
    }
    for k in range(15):
        name = f"p{k:02d}"
        if k % 3 == 0:
            cols[name] = rng.integers(0, 10_000, N_RUNS, dtype=np.int64)
        elif k % 3 == 1:
            cols[name] = pa.array([f"v{x}" for x in rng.integers(0, 100, N_RUNS)], pa.utf8())
        else:
            cols[name] = rng.normal(0.0, 1.0, N_RUNS)
    params = pa.table(cols)
    final_acc = rng.uniform(0.2, 0.9, N_RUNS)
    run_col, epoch_col, acc_col, loss_col = [], [], [], []
    for i in range(N_RUNS):
        for e in range(N_EPOCHS):
            run_col.append(runs[i])
            epoch_col.append(e)
            a = final_acc[i] - 0.03 * (N_EPOCHS - 1 - e)
            acc_col.append(a)
            loss_col.append(1.0 - a + 0.01 * rng.random())
    outputs = pa.table({
        "run": pa.array(run_col, pa.utf8()),
        "epoch": pa.array(epoch_col, pa.int64()),
        "acc": pa.array(acc_col, pa.float64()),
        "loss": pa.array(loss_col, pa.float64()),
    })
    return params, outputs


def w4(rng):
    i = np.arange(N_SAMPLES, dtype=np.int64)
    example_id = (i % 250_000).astype(np.int32)
    epoch = (i // 250_000).astype(np.int32)
    predicted = rng.integers(0, 10, N_SAMPLES, dtype=np.int32)
    loss = rng.exponential(0.7, N_SAMPLES).astype(np.float32)
    confidence = rng.random(N_SAMPLES, dtype=np.float32)
    emb = rng.standard_normal((N_SAMPLES, EMB_DIM), dtype=np.float32)
    emb_arr = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), EMB_DIM)
    return pa.table({
        "example_id": example_id,
        "epoch": epoch,
        "predicted": predicted,
        "loss": loss,
        "confidence": confidence,
        "embedding": emb_arr,
    })


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.data_dir, exist_ok=True)
    if not a.force and all(os.path.exists(os.path.join(a.data_dir, f)) for f in FILES):
        print(f"make_data: {a.data_dir} already complete", file=sys.stderr)
        return
    # Imported here so this file's constants stay importable without the helpers.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import common

    rng = np.random.default_rng(SEED)
    t1 = w1(rng)
    params, outputs = w3(rng)
    t4 = w4(rng)
    write_ipc(os.path.join(a.data_dir, "w1_steps.arrow"), t1)
    write_ipc(os.path.join(a.data_dir, "w3_params_1000.arrow"), params)
    write_ipc(os.path.join(a.data_dir, "w3_outputs_1000.arrow"), outputs)
    write_ipc(os.path.join(a.data_dir, "w4_samples.arrow"), t4)
    top10, matches = common.w3_expected(params, outputs, N_RUNS)
    expected = {
        "w1_loss_sum": float(np.sum(t1.column("loss").to_numpy())),
        "w3_top10_1000": top10,
        "w3_matches_1000": matches,
        "w4_loss_sum": float(np.sum(t4.column("loss").to_numpy(), dtype=np.float64)),
    }
    with open(os.path.join(a.data_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"make_data: wrote {a.data_dir} (W3 matches {matches})", file=sys.stderr)


if __name__ == "__main__":
    main()
