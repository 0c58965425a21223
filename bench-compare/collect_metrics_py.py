"""collect_metrics over a 100,000-row input table with a numpy "model": throughput and peak
memory (issue 18's proof that the metrics table is streamed, never whole in memory).

Run (after `maturin develop --release` in a virtualenv with pyarrow and numpy):

    python bench-compare/collect_metrics_py.py [--rows 100000] [--width 64] [--batch 1024] [--reps 3]

Each repetition runs in a fresh child process, so its peak RSS (ru_maxrss) is its own. The
child first builds the input table (rows x width float32 features, an int label), then
measures collect_metrics with ClassificationCollector (10 classes, top-2) and an
EmbeddingsCollector of the features. Prints one JSON line per repetition and the medians:
rows/s, peak RSS before and during collection (it counts the input's file pages the mapping
brings in), the peak growth of anonymous memory (RssAnon, sampled every 2 ms: what the
collection itself holds), and the input's and the output's size, so the growth can be read
against what holding the table would cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, threading, time
import numpy as np
import runstore

def rss_anon_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0

class AnonPeak(threading.Thread):
    # Samples RssAnon (heap, not the file pages the mapping brings in) every 2 ms.
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = rss_anon_kib(), False
    def run(self):
        while not self.done:
            self.peak = max(self.peak, rss_anon_kib())
            time.sleep(0.002)
rows, width, batch = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
with runstore.open(sys.argv[1]) as store:
    data = store.create_table("bench", "inputs", {
        "features": rng.normal(size=(rows, width)).astype(np.float32),
        "label": rng.integers(0, 10, rows).astype(np.int32),
    })
    del rng
    weights = np.random.default_rng(1).normal(size=(width, 10)).astype(np.float32)
    run = store.init(project_name="bench")
    def model(b):
        return {"logits": b["features"] @ weights, "embedding": b["features"]}
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    anon_before = rss_anon_kib()
    sampler = AnonPeak()
    sampler.start()
    t0 = time.perf_counter()
    table = runstore.collect_metrics(
        data,
        [runstore.ClassificationCollector(logits_key="logits", top_k=[2]),
         runstore.EmbeddingsCollector(key="embedding")],
        predictor=model, batch_size=batch, run=run, progress=False)
    seconds = time.perf_counter() - t0
    sampler.done = True
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert table.num_rows == rows
    ids = table.to_numpy("example_id")
    assert (ids == np.arange(rows)).all()
    out_bytes = table.info()["file_size"]
print(json.dumps({"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
                  "peak_rss_before_mib": before / 1024, "peak_rss_after_mib": after / 1024,
                  "anon_growth_mib": (sampler.peak - anon_before) / 1024,
                  "input_mib": rows * (width * 4 + 4) / 2**20,
                  "output_mib": out_bytes / 2**20}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.reps):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, os.path.join(tmp, "c.runs"), str(args.rows),
                 str(args.width), str(args.batch)],
                check=True, capture_output=True, text=True,
            ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(json.dumps(result))
        results.append(result)
    median = {key: statistics.median(r[key] for r in results) for key in results[0]}
    median["growth_mib"] = median["peak_rss_after_mib"] - median["peak_rss_before_mib"]
    print(json.dumps({"median": median}))


if __name__ == "__main__":
    main()
