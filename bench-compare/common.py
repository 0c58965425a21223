"""Shared helpers for the bench-compare scripts: arguments, data loading, timing, checks, output.

Only the standard library, numpy and pyarrow are imported here, so a fresh child process that
imports this module measures the tool's own import separately (see `child_main`).
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Telemetry and background tracking off for every tool (the machine has no general internet and
# 2 shared cores). Set before any tool is imported, and inherited by child processes.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("AIM_UI_TELEMETRY_ENABLED", "0")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

# Sizes: (default, quick). Default sizes follow docs peers.md; where a tool is very slow the
# tool script uses a smaller n and says so in the record's `n` and `note`.
QUICK = False


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_args(description, extra=None):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("data_dir", help="directory holding w1_steps.arrow ... expected.json")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--work", help="scratch directory for stores (default DATA_DIR/compare-work)")
    ap.add_argument("--only", default="W1,W2,W3,W4", help="comma-separated workloads to run")
    ap.add_argument("--keep", action="store_true", help="keep the stores written")
    if extra:
        extra(ap)
    a = ap.parse_args()
    global QUICK
    QUICK = a.quick
    a.only = {w.strip().upper() for w in a.only.split(",") if w.strip()}
    if not a.work:
        a.work = os.path.join(a.data_dir, "compare-work")
    os.makedirs(a.work, exist_ok=True)
    return a


def size(default, quick):
    return quick if QUICK else default


# ---------------------------------------------------------------- data


class Data:
    """The shared data set, read with pyarrow from DATA_DIR (loaded lazily)."""

    def __init__(self, data_dir):
        self.dir = data_dir
        self._cache = {}
        with open(os.path.join(data_dir, "expected.json")) as f:
            self.expected = json.load(f)

    def _table(self, name):
        if name not in self._cache:
            import pyarrow as pa

            with pa.memory_map(os.path.join(self.dir, name), "r") as src:
                self._cache[name] = pa.ipc.open_file(src).read_all()
        return self._cache[name]

    def w1(self, n):
        """Dict of numpy arrays (first n steps)."""
        t = self._table("w1_steps.arrow").slice(0, n)
        return {c: t.column(c).to_numpy() for c in ("step", "loss", "acc", "lr", "grad_norm")}

    def w1_loss_sum(self, n):
        want = float(self.w1(n)["loss"].sum())
        if n == len(self._table("w1_steps.arrow")):
            assert close(want, self.expected["w1_loss_sum"], 1e-9), "w1_steps.arrow disagrees with expected.json"
        return want

    def w3(self, n):
        """(params table, outputs table) for the first n runs."""
        p = self._table("w3_params_1000.arrow").slice(0, n)
        o = self._table("w3_outputs_1000.arrow")
        import pyarrow.compute as pc

        o = o.filter(pc.is_in(o.column("run"), value_set=p.column("run")))
        return p, o

    def w3_expected(self, n):
        p, o = self.w3(n)
        top10, matches = w3_expected(p, o, n)
        if n == 1000:
            assert top10 == self.expected["w3_top10_1000"], "W3 data disagrees with expected.json"
            assert matches == self.expected["w3_matches_1000"]
        return top10, matches

    def w4(self, n):
        return self._table("w4_samples.arrow").slice(0, n)

    def w4_loss_sum(self, n):
        import numpy as np

        want = float(np.sum(self.w4(n).column("loss").to_numpy(), dtype=np.float64))
        if n == len(self._table("w4_samples.arrow")):
            assert close(want, self.expected["w4_loss_sum"], 1e-9), "w4_samples.arrow disagrees with expected.json"
        return want


def last_acc(outputs):
    """run -> acc at the run's highest epoch (MLflow's 'latest metric')."""
    best = {}
    for r, e, a in zip(outputs.column("run").to_pylist(), outputs.column("epoch").to_pylist(),
                       outputs.column("acc").to_pylist()):
        if r not in best or e >= best[r][0]:
            best[r] = (e, a)
    return {r: a for r, (e, a) in best.items()}


def w3_expected(params, outputs, n):
    """Top 10 run names and match count for `lr < 0.01 AND last acc > 0.5 ORDER BY acc DESC`."""
    acc = last_acc(outputs)
    hits = [(acc[r], r) for r, lr in zip(params.column("run").to_pylist()[:n], params.column("lr").to_pylist()[:n])
            if lr < 0.01 and r in acc and acc[r] > 0.5]
    hits.sort(key=lambda x: (-x[0], x[1]))
    return [r for _, r in hits[:10]], len(hits)


def w3_param_dicts(params):
    """One {name: python value} dict per run, 20 params (the run name column excluded)."""
    cols = [c for c in params.column_names if c != "run"]
    data = {c: params.column(c).to_pylist() for c in cols}
    names = params.column("run").to_pylist()
    return names, [{c: data[c][i] for c in cols} for i in range(len(names))]


def w3_output_rows(outputs):
    """run -> list of (epoch, acc, loss) in epoch order."""
    out = {}
    for r, e, a, l in zip(outputs.column("run").to_pylist(), outputs.column("epoch").to_pylist(),
                          outputs.column("acc").to_pylist(), outputs.column("loss").to_pylist()):
        out.setdefault(r, []).append((e, a, l))
    for v in out.values():
        v.sort()
    return out


# ---------------------------------------------------------------- timing


def close(a, b, rel):
    if a is None or b is None:
        return False
    return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12)


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    r = fn(*args, **kw)
    return time.perf_counter() - t0, r


def median_reps(fn, reps, setup=None):
    """Call setup() (untimed) then time fn(setup_result) `reps` times.

    Returns (median seconds, all times, last result)."""
    times, res = [], None
    for _ in range(reps):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        res = fn(arg) if setup else fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, res


def path_bytes(path):
    """Apparent size: sum of st_size of every file under path (or of the file)."""
    if os.path.isfile(path):
        return os.stat(path).st_size
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


def path_files(path):
    return sum(len(files) for _, _, files in os.walk(path))


def fresh_dir(*parts):
    p = os.path.join(*parts)
    shutil.rmtree(p, ignore_errors=True)
    os.makedirs(p)
    return p


def remove(path, keep=False):
    if keep:
        return
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def fresh(script, *args, reps=1):
    """Run `python script --child ARGS...` in fresh processes; return the median-wall child report.

    The child prints one JSON object as its last stdout line ({import_s, open_query_s, ...});
    `wall_s` (process start to exit, interpreter start-up included) is added here."""
    runs = []
    for _ in range(reps):
        cmd = [sys.executable, os.path.join(HERE, script), "--child", *[str(a) for a in args]]
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"child {cmd} failed: {p.stderr[-2000:]}")
        lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        rep = json.loads(lines[-1])
        rep["wall_s"] = wall
        runs.append(rep)
    runs.sort(key=lambda r: r["wall_s"])
    out = dict(runs[len(runs) // 2])
    out["walls"] = [r["wall_s"] for r in runs]
    return out


class ChildClock:
    """Used inside a child: marks phases since process-level start of measurement."""

    def __init__(self):
        self.t = time.perf_counter()
        self.marks = {}

    def mark(self, name):
        now = time.perf_counter()
        self.marks[name] = now - self.t
        self.t = now

    def report(self, **extra):
        d = dict(self.marks)
        d.update(extra)
        print(json.dumps(d), flush=True)


# ---------------------------------------------------------------- output


def version(pkg):
    try:
        import importlib.metadata as m

        return m.version(pkg)
    except Exception:
        return None


def _clean(v):
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return None
        if v == 0:
            return 0.0
        return float(f"{v:.4g}") if abs(v) < 1e4 else round(v, 1)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


ORDER = ("system", "workload", "variant", "n", "reps", "median_s", "values_per_s", "rows_per_s", "bytes",
         "correct", "version", "reference", "reference_median_s", "ratio", "reference2", "reference2_median_s",
         "ratio2")


def emit(rec):
    """Print one JSON line (fields with None dropped; floats to 4 significant digits)."""
    rec = {k: v for k, v in rec.items() if v is not None}
    out = {k: rec[k] for k in ORDER if k in rec}
    out.update({k: v for k, v in rec.items() if k not in out})
    print(json.dumps(_clean(out)), flush=True)


def with_refs(rec, ref1=None, ref2=None):
    """Attach same-run reference timings (sqlite3-wal first, pyarrow-ipc second) and ratios."""
    m = rec.get("median_s")
    if ref1 is not None:
        rec["reference"] = ref1[0]
        rec["reference_median_s"] = ref1[1]
        if m is not None and ref1[1]:
            rec["ratio"] = m / ref1[1]
    if ref2 is not None:
        rec["reference2"] = ref2[0]
        rec["reference2_median_s"] = ref2[1]
        if m is not None and ref2[1]:
            rec["ratio2"] = m / ref2[1]
    return rec


def emit_fresh(system, n, reps, fr, correct, ver, note, sref, aref):
    """Emit the W2 fresh-process record of `fresh()`'s result `fr`, with the same-run sqlite3
    and pyarrow references' fresh-process times."""
    rec = {"system": system, "workload": "W2", "variant": "fresh-process", "n": n, "reps": reps,
           "median_s": fr["wall_s"], "import_s": fr.get("import_s"), "base_import_s": fr.get("base_import_s"),
           "open_query_s": fr.get("open_query_s"), "correct": correct, "version": ver, "note": note}
    emit(with_refs(rec, ("sqlite3-wal", sref["fresh"]["wall_s"]), ("pyarrow-ipc", aref["fresh"]["wall_s"])))


def load_note():
    """1-minute load average, for the record (the machine is shared)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def unsupported(system, workload, variant, reason, ver=None):
    emit({"system": system, "workload": workload, "variant": variant, "supported": False,
          "version": ver, "note": reason})


def run_guarded(system, workload, fn):
    """Run one workload; a failure becomes an error record instead of killing the script."""
    try:
        fn()
    except Exception as e:  # a tool failing is a result, reported as such
        import traceback

        traceback.print_exc()
        emit({"system": system, "workload": workload, "error": f"{type(e).__name__}: {e}"[:500]})
