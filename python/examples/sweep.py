"""A hyperparameter sweep: several processes write one store at once (shared writers), each
with its run, per-step history, outputs and a checkpoint blob; then the analysis in pandas.

    python python/examples/sweep.py [STORE] [--workers 4]      (default: sweep.runs)
"""

import argparse
import math
import multiprocessing as mp
import pickle

import numpy as np

import runstore


def train(path: str, lr: float, batch_size: int) -> str:
    """One trial, in its own process: a shared writer next to the others."""
    with runstore.open(path, shared=True, timeout=30) as store:
        run = store.init(project_name="sweep", parameters={"lr": lr, "batch_size": batch_size})
        run.set_status_running()
        weights = np.zeros(16, dtype=np.float32)
        for step in range(500):
            loss = math.exp(-lr * step * batch_size / 64) + 0.05 / math.sqrt(batch_size)
            run.log({"loss": loss, "lr": lr}, step=step)
            weights += lr * 0.01
        acc = 1 - loss
        run.add_output_value({"epoch": 1, "val_loss": loss, "val_acc": acc})
        run.put_bulk("checkpoint.pkl", pickle.dumps(weights))  # bulk data next to the run
        run.set_status_completed()
        return run.url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store", nargs="?", default="sweep.runs")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    grid = [(lr, bs) for lr in (0.001, 0.01, 0.1) for bs in (32, 128)]
    with mp.get_context("spawn").Pool(args.workers) as pool:
        urls = pool.starmap(train, [(args.store, lr, bs) for lr, bs in grid])
    print(f"{len(urls)} runs written by {args.workers} processes")

    # Analysis: the runs' parameters and outputs as one DataFrame, best first.
    with runstore.open(args.store, read_only=True) as store:
        runs = store.runs(project="sweep", order_by="outputs.val_acc DESC")
        frame = runs.to_arrow(["params.lr", "params.batch_size", "outputs.val_acc"]).to_pandas()
        print(frame.to_string(index=False))
        best = runs[0]
        history = best.metrics_tables[0].to_pandas()
        print(f"best {best.url}: loss {history['loss'].iloc[0]:.3f} -> {history['loss'].iloc[-1]:.3f}"
              f" over {len(history)} steps; checkpoint {len(best.bulk('checkpoint.pkl'))} bytes")
        by_lr = frame.groupby("params.lr")["outputs.val_acc"].mean()
        print(by_lr.to_string())


if __name__ == "__main__":
    main()
