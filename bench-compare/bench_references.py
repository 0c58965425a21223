#!/usr/bin/env python3
"""Same-run references: Python sqlite3 (WAL, synchronous=NORMAL) and pyarrow IPC on every job.

Run alone it prints records for systems "sqlite3" and "pyarrow-ipc". The tool scripts import
`Refs` to measure the same jobs at the same n inside their own process run, so each tool record
carries a ratio against a reference measured minutes apart on the same (noisy) machine.
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SQLITE = "sqlite3-wal"
ARROW = "pyarrow-ipc"
W1_KEYS = ("loss", "acc", "lr", "grad_norm")


def sqlite_connect(path):
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


# ---------------------------------------------------------------- W1


def w1_sqlite(data, work, n, batched, reps):
    cols = data.w1(n)
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in W1_KEYS}
    path = os.path.join(work, f"ref_w1_{'b' if batched else 's'}_{n}.db")

    def setup():
        common.remove(path)
        for s in ("-wal", "-shm"):
            common.remove(path + s)
        con = sqlite_connect(path)
        con.execute("CREATE TABLE metrics(run_id TEXT, key TEXT, step INTEGER, value REAL, "
                    "PRIMARY KEY(run_id, key, step)) WITHOUT ROWID")
        con.commit()
        return con

    def job(con):
        ins = "INSERT INTO metrics VALUES (?,?,?,?)"
        if batched:
            for lo in range(0, n, 1000):
                rows = [("r1", k, steps[i], vals[k][i]) for i in range(lo, min(n, lo + 1000)) for k in W1_KEYS]
                con.executemany(ins, rows)
                con.commit()
        else:
            for i in range(n):
                con.executemany(ins, [("r1", k, steps[i], vals[k][i]) for k in W1_KEYS])
                con.commit()
        con.close()

    med, times, _ = common.median_reps(job, reps, setup)
    return {"median_s": med, "times": times, "bytes": common.path_bytes(path), "store": path}


def w1_arrow(data, work, n, batched, reps):
    import pyarrow as pa

    cols = data.w1(n)
    schema = pa.schema([("step", pa.int64())] + [(k, pa.float64()) for k in W1_KEYS])
    steps = cols["step"].tolist()
    vals = {k: cols[k].tolist() for k in W1_KEYS}
    path = os.path.join(work, f"ref_w1_{'b' if batched else 's'}_{n}.arrow")

    def job():
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as w:
            if batched:
                for lo in range(0, n, 1000):
                    hi = min(n, lo + 1000)
                    w.write_batch(pa.record_batch([pa.array(steps[lo:hi], pa.int64())] +
                                                  [pa.array(vals[k][lo:hi], pa.float64()) for k in W1_KEYS],
                                                  schema=schema))
            else:
                for i in range(n):
                    w.write_batch(pa.record_batch([pa.array([steps[i]], pa.int64())] +
                                                  [pa.array([vals[k][i]], pa.float64()) for k in W1_KEYS],
                                                  schema=schema))

    med, times, _ = common.median_reps(job, reps)
    return {"median_s": med, "times": times, "bytes": common.path_bytes(path), "store": path}


# ---------------------------------------------------------------- W2


def read_sqlite_loss(path):
    import numpy as np

    con = sqlite3.connect(path)
    rows = con.execute("SELECT step, value FROM metrics WHERE run_id='r1' AND key='loss' ORDER BY step").fetchall()
    con.close()
    return np.array([r[1] for r in rows], dtype=np.float64)


def read_arrow_loss(path):
    import numpy as np
    import pyarrow as pa

    with pa.memory_map(path, "r") as src:
        t = pa.ipc.open_file(src).read_all()
        # Zero-copy view of the value buffer (no nulls here). pyarrow 25's to_numpy() imports pandas,
        # which costs ~0.3 s in a fresh process and is not part of reading the file.
        arr = t.column("loss").combine_chunks()
        return np.frombuffer(arr.buffers()[1], dtype=np.float64, count=len(arr), offset=arr.offset * 8)


def w2(data, work, n, reps, which):
    """Warm read (median of reps) and fresh-process read of the full loss series (n points)."""
    want = data.w1_loss_sum(n)
    if which == SQLITE:
        store = w1_sqlite(data, work, n, True, 1)["store"]
        fn = read_sqlite_loss
    else:
        store = w1_arrow(data, work, n, True, 1)["store"]
        fn = read_arrow_loss
    med, times, arr = common.median_reps(lambda: fn(store), reps)
    ok = len(arr) == n and common.close(float(arr.sum()), want, 1e-9)
    fr = common.fresh("bench_references.py", "w2", which, store, reps=reps)
    ok_f = fr["n"] == n and common.close(fr["sum"], want, 1e-9)
    return {"median_s": med, "times": times, "correct": ok, "fresh": fr, "fresh_correct": ok_f}


def child(args):
    clock = common.ChildClock()
    import numpy  # noqa: F401

    clock.mark("base_import_s")
    which, store = args[1], args[2]
    clock.mark("import_s")  # sqlite3 is built in; pyarrow came with common's data helpers lazily
    if which == SQLITE:
        arr = read_sqlite_loss(store)
    else:
        import pyarrow  # noqa: F401
        import pyarrow.ipc  # noqa: F401

        clock.mark("import_s")
        arr = read_arrow_loss(store)
    clock.mark("open_query_s")
    clock.report(n=len(arr), sum=float(arr.sum()))


# ---------------------------------------------------------------- W3

W3_SQL = ("SELECT r.name, m.value FROM runs r "
          "JOIN params p ON p.run_id = r.id AND p.key = 'lr' "
          "JOIN outputs m ON m.run_id = r.id AND m.key = 'acc' "
          "AND m.step = (SELECT MAX(step) FROM outputs WHERE run_id = r.id AND key = 'acc') "
          "WHERE p.value < 0.01 AND m.value > 0.5 ORDER BY m.value DESC, r.name LIMIT 10")


def w3_sqlite(data, work, n, reps):
    params, outputs = data.w3(n)
    names, pdicts = common.w3_param_dicts(params)
    outs = common.w3_output_rows(outputs)
    path = os.path.join(work, f"ref_w3_{n}.db")

    def setup():
        for s in ("", "-wal", "-shm"):
            common.remove(path + s)
        con = sqlite_connect(path)
        # `value` has no declared type, so each value keeps its own type and lr compares numerically.
        con.executescript(
            "CREATE TABLE runs(id INTEGER PRIMARY KEY, name TEXT UNIQUE);"
            "CREATE TABLE params(run_id INTEGER, key TEXT, value, PRIMARY KEY(run_id, key)) WITHOUT ROWID;"
            "CREATE TABLE outputs(run_id INTEGER, key TEXT, step INTEGER, value REAL, "
            "PRIMARY KEY(run_id, key, step)) WITHOUT ROWID;")
        con.commit()
        return con

    def job(con):
        for i, name in enumerate(names):
            con.execute("INSERT INTO runs VALUES (?,?)", (i, name))
            con.executemany("INSERT INTO params VALUES (?,?,?)", [(i, k, v) for k, v in pdicts[i].items()])
            rows = []
            for e, a, l in outs[name]:
                rows.append((i, "acc", e, a))
                rows.append((i, "loss", e, l))
            con.executemany("INSERT INTO outputs VALUES (?,?,?,?)", rows)
            con.commit()
        con.close()

    wmed, wtimes, _ = common.median_reps(job, reps, setup)
    con = sqlite3.connect(path)
    qmed, qtimes, res = common.median_reps(lambda: con.execute(W3_SQL).fetchall(), reps)
    con.close()
    top10, _ = data.w3_expected(n)
    return {"write_s": wmed, "query_s": qmed, "bytes": common.path_bytes(path),
            "correct": [r[0] for r in res] == top10}


def w3_arrow(data, work, n, reps):
    import pyarrow as pa
    import pyarrow.compute as pc

    params, outputs = data.w3(n)
    path = os.path.join(work, f"ref_w3_{n}.arrow")

    def job():
        acc = common.last_acc(outputs)  # the wide table: params + each run's last acc
        t = params.append_column("acc", pa.array([acc[r] for r in params.column("run").to_pylist()], pa.float64()))
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, t.schema) as w:
            w.write_table(t)

    def query():
        with pa.memory_map(path, "r") as src:
            t = pa.ipc.open_file(src).read_all()
            t = t.filter(pc.and_(pc.less(t.column("lr"), 0.01), pc.greater(t.column("acc"), 0.5)))
            t = t.sort_by([("acc", "descending"), ("run", "ascending")]).slice(0, 10)
            return t.column("run").to_pylist()

    wmed, _, _ = common.median_reps(job, reps)
    qmed, _, res = common.median_reps(query, reps)
    top10, _ = data.w3_expected(n)
    return {"write_s": wmed, "query_s": qmed, "bytes": common.path_bytes(path), "correct": res == top10}


# ---------------------------------------------------------------- W4


def w4_sqlite(data, work, n, reps):
    import numpy as np

    t = data.w4(n)
    path = os.path.join(work, f"ref_w4_{n}.db")
    want = data.w4_loss_sum(n)

    def setup():
        for s in ("", "-wal", "-shm"):
            common.remove(path + s)
        con = sqlite_connect(path)
        con.execute("CREATE TABLE samples(example_id INTEGER, epoch INTEGER, predicted INTEGER, "
                    "loss REAL, confidence REAL, embedding BLOB)")
        con.commit()
        return con

    def write(con):
        emb = t.column("embedding").combine_chunks().flatten().to_numpy().reshape(n, 64)
        rows = zip(t.column("example_id").to_pylist(), t.column("epoch").to_pylist(),
                   t.column("predicted").to_pylist(), t.column("loss").to_pylist(),
                   t.column("confidence").to_pylist(), (r.tobytes() for r in emb))
        con.executemany("INSERT INTO samples VALUES (?,?,?,?,?,?)", rows)
        con.commit()
        con.close()

    def read():
        con = sqlite3.connect(path)
        rows = con.execute("SELECT example_id, epoch, predicted, loss, confidence, embedding FROM samples").fetchall()
        con.close()
        cols = list(zip(*rows))
        ids = np.array(cols[0], np.int32)
        loss = np.array(cols[3], np.float64)
        emb = np.frombuffer(b"".join(cols[5]), np.float32).reshape(-1, 64)
        return len(ids), float(loss.sum()), emb.shape

    wmed, _, _ = common.median_reps(write, max(1, reps if n < 1_000_000 else min(reps, 2)), setup)
    rmed, _, res = common.median_reps(read, reps)
    return {"write_s": wmed, "read_s": rmed, "bytes": common.path_bytes(path),
            "correct": res[0] == n and common.close(res[1], want, 1e-6)}


def w4_arrow(data, work, n, reps):
    import pyarrow as pa
    import pyarrow.compute as pc

    t = data.w4(n)
    path = os.path.join(work, f"ref_w4_{n}.arrow")
    want = data.w4_loss_sum(n)

    def write():
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, t.schema) as w:
            w.write_table(t)

    def read():
        with pa.memory_map(path, "r") as src:
            r = pa.ipc.open_file(src).read_all()
            return r.num_rows, pc.sum(pc.cast(r.column("loss"), pa.float64())).as_py()

    wmed, _, _ = common.median_reps(write, reps)
    rmed, _, res = common.median_reps(read, reps)
    return {"write_s": wmed, "read_s": rmed, "bytes": common.path_bytes(path),
            "correct": res[0] == n and common.close(res[1], want, 1e-6)}


# ---------------------------------------------------------------- cache used by the tool scripts


class Refs:
    """Measures each reference job once per (job, n) and hands back (name, seconds) pairs."""

    def __init__(self, data, work, reps=3):
        self.data, self.reps = data, reps
        self.work = common.fresh_dir(work, "refs")
        self._c = {}

    def _get(self, key, fn):
        if key not in self._c:
            common.log(f"  reference {key} ...")
            self._c[key] = fn()
        return self._c[key]

    def w1(self, n, batched):
        s = self._get(("w1s", n, batched), lambda: w1_sqlite(self.data, self.work, n, batched, self.reps))
        a = self._get(("w1a", n, batched), lambda: w1_arrow(self.data, self.work, n, batched, self.reps))
        return (SQLITE, s["median_s"]), (ARROW, a["median_s"])

    def w2(self, n):
        s = self._get(("w2s", n), lambda: w2(self.data, self.work, n, self.reps, SQLITE))
        a = self._get(("w2a", n), lambda: w2(self.data, self.work, n, self.reps, ARROW))
        return s, a

    def w3(self, n):
        s = self._get(("w3s", n), lambda: w3_sqlite(self.data, self.work, n, self.reps))
        a = self._get(("w3a", n), lambda: w3_arrow(self.data, self.work, n, self.reps))
        return s, a

    def w4(self, n):
        s = self._get(("w4s", n), lambda: w4_sqlite(self.data, self.work, n, self.reps))
        a = self._get(("w4a", n), lambda: w4_arrow(self.data, self.work, n, self.reps))
        return s, a

    def close(self, keep=False):
        common.remove(self.work, keep)


# ---------------------------------------------------------------- standalone


def main():
    a = common.parse_args(__doc__)
    data = common.Data(a.data_dir)
    reps = 3
    work = common.fresh_dir(a.work, "references")
    import pyarrow
    ver = {"sqlite3": sqlite3.sqlite_version, "pyarrow-ipc": pyarrow.__version__}
    name = {SQLITE: "sqlite3", ARROW: "pyarrow-ipc"}
    load = common.load_note()
    if "W1" in a.only:
        n = common.size(100_000, 10_000)
        for batched in (False, True):
            for fn, sysname in ((w1_sqlite, SQLITE), (w1_arrow, ARROW)):
                r = fn(data, work, n, batched, reps)
                note = ("WAL, synchronous=NORMAL; " if sysname == SQLITE else "") + (
                    "4,000 values (1,000 steps) per call" if batched else "one call (4 values) per step")
                if sysname == SQLITE:
                    note += ", commit per call"
                common.emit({"system": name[sysname], "workload": "W1", "variant": "batched" if batched else "per-step",
                             "n": n, "reps": reps, "median_s": r["median_s"], "values_per_s": 4 * n / r["median_s"],
                             "bytes": r["bytes"], "correct": True, "version": ver[name[sysname]], "note": note,
                             "load1": load})
    if "W2" in a.only:
        n = common.size(100_000, 10_000)
        for sysname in (SQLITE, ARROW):
            r = w2(data, work, n, reps, sysname)
            common.emit({"system": name[sysname], "workload": "W2", "variant": "warm-read", "n": n, "reps": reps,
                         "median_s": r["median_s"], "values_per_s": n / r["median_s"], "correct": r["correct"],
                         "version": ver[name[sysname]]})
            f = r["fresh"]
            common.emit({"system": name[sysname], "workload": "W2", "variant": "fresh-process", "n": n, "reps": reps,
                         "median_s": f["wall_s"], "import_s": f.get("import_s"),
                         "base_import_s": f.get("base_import_s"), "open_query_s": f.get("open_query_s"),
                         "correct": r["fresh_correct"], "version": ver[name[sysname]],
                         "note": "median_s = child process wall time (interpreter start included)"})
    if "W3" in a.only:
        n = common.size(1000, 200)
        for sysname, fn, note in ((SQLITE, w3_sqlite, "runs/params/outputs tables, one transaction per run; "
                                   "query: SQL join, ORDER BY, LIMIT"),
                                  (ARROW, w3_arrow, "one wide table (params + last acc) written at once; "
                                   "query: pyarrow.compute filter + sort_by")):
            r = fn(data, work, n, reps)
            common.emit({"system": name[sysname], "workload": "W3", "variant": "write", "n": n, "reps": reps,
                         "median_s": r["write_s"], "bytes": r["bytes"], "version": ver[name[sysname]], "note": note})
            common.emit({"system": name[sysname], "workload": "W3", "variant": "query", "n": n, "reps": reps,
                         "median_s": r["query_s"], "correct": r["correct"], "version": ver[name[sysname]]})
    if "W4" in a.only:
        n = common.size(1_000_000, 50_000)
        for sysname, fn, note in ((SQLITE, w4_sqlite, "one table, embedding as a 256-byte BLOB, one transaction"),
                                  (ARROW, w4_arrow, "FixedSizeList<float32>[64], uncompressed, memory-mapped read")):
            r = fn(data, work, n, reps)
            common.emit({"system": name[sysname], "workload": "W4", "variant": "write", "n": n, "reps": reps,
                         "median_s": r["write_s"], "rows_per_s": n / r["write_s"], "bytes": r["bytes"],
                         "version": ver[name[sysname]], "note": note})
            common.emit({"system": name[sysname], "workload": "W4", "variant": "read-sum", "n": n, "reps": reps,
                         "median_s": r["read_s"], "rows_per_s": n / r["read_s"], "correct": r["correct"],
                         "version": ver[name[sysname]], "note": "read all columns, sum loss"})
    common.remove(work, a.keep)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
