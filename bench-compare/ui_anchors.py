"""`runstore ui` beside the anchors' viewers, on the README's pain points (issue 17).

Three measurements, each on the same data in the peer tool and in a runstore store:

  tb      20 runs x 1,000,000 steps of `loss` (smooth decay + noise, one spike 50+r at a known
          step per run). TensorBoard 2.21 with default settings (`tensorboard --logdir`, its
          data server keeps a 1,000-sample reservoir per scalar tag): time its scalars HTTP API
          (`/data/plugin/scalars/scalars?run=R&tag=loss`) per run, points served, runs whose
          spike is in what it serves. runstore: `/api/series?...&buckets=1000` per run, spike
          kept when the bucket holding the spike step has max == the spike value.
  mlflow  10 runs x 10,000 steps (with a spike too), MLflow 3.17.2, sqlite backend,
          `mlflow server`: the request its UI makes to draw the runs' charts
          (`ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`, all runs in one request,
          max_results=320, as in the UI bundle) and the full `get-history` per run; the
          experiment's chart view in headless Chromium (until every run's line is drawn).
          runstore: `/api/series` per run and the compare page until `runstore:first-chart`.
  aim     50 runs x 1,000 steps, Aim 3.29.1, `aim up`: time from launch until the API answers,
          `/api/runs/search/run/?limit=50` and `/api/runs/search/metric/?q=...&p=500` (the
          UI's endpoints; p is its point density). runstore: `/api/runs?project=P&limit=50`
          and `/api/series` for the 50 runs.

Every time is the median of --reps (default 5) repetitions, on a warm server (each tool has
loaded the data and answered once before timing starts). One line per measurement is printed
and written to results/ui_anchors.txt (or --out).

Run: bench-compare/.venv/bin/python bench-compare/ui_anchors.py --runstore BINARY
     [--only tb,mlflow,aim] [--work DIR] [--reps 5] [--no-browser]
The browser parts need the pip package playwright importable (--pw-site adds its
site-packages) and /usr/bin/chromium; playwright's own browser download is never used.
"""

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.join(HERE, ".venv", "bin")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LINES = []


def say(line):
    print(line, flush=True)
    LINES.append(line)


def log(msg):
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, data=None, raw=False, timeout=600):
    req = urllib.request.Request(url, data=data)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
    return body if raw else json.loads(body)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def median_time(fn, reps):
    times, out = [], None
    for _ in range(reps):
        t, out = timed(fn)
        times.append(t)
    return statistics.median(times), out


def ms(seconds):
    return f"{seconds * 1e3:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def wait_http(url, proc, limit, ok=lambda body: True):
    """Polls url until it answers and ok(body); returns seconds waited (None on timeout)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            if ok(get(url, raw=True, timeout=30)):
                return time.perf_counter() - t0
        except Exception:
            pass
        time.sleep(0.25)
    return None


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def spawn(cmd, log_path, **kw):
    return subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True, **kw)


# ---- data ---------------------------------------------------------------------------------


def series(r, steps, seed=17):
    """loss for run r: smooth decay + noise (float32), one spike 50+r at a known step."""
    rng = np.random.default_rng(seed + r)
    step = np.arange(steps, dtype=np.int64)
    loss = (2.0 * np.exp(-step / (steps / 5)) + 0.1 + 0.02 * np.abs(rng.standard_normal(steps)))
    loss = loss.astype(np.float32)
    spike_step = int(rng.integers(steps // 10, steps - steps // 10))
    loss[spike_step] = np.float32(50 + r)
    return step, loss, spike_step, float(np.float32(50 + r))


# ---- runstore -----------------------------------------------------------------------------


class Runstore:
    def __init__(self, binary, work):
        self.bin = binary
        self.work = work

    def write(self, store, project, runs, steps):
        """One run per r with a `steps` table (step int64, loss float32), via the CLI."""
        if os.path.exists(store):
            os.remove(store)
        urls, spikes = [], []
        pfile = os.path.join(self.work, "rows.parquet")
        for r in range(runs):
            step, loss, spike_step, spike = series(r, steps)
            url = subprocess.run([self.bin, "init", store, "--project", project, "--name", f"run-{r:02d}",
                                  "--param", f"seed={r}"], check=True, capture_output=True,
                                 text=True).stdout.strip().splitlines()[-1]
            pq.write_table(pa.table({"step": pa.array(step, pa.int64()), "loss": pa.array(loss, pa.float32())}),
                           pfile)
            subprocess.run([self.bin, "append", store, url, "--table", "steps", "--from", pfile], check=True,
                           capture_output=True)
            urls.append(url)
            spikes.append((spike_step, spike))
        os.remove(pfile)
        return urls, spikes

    def serve(self, store):
        proc = subprocess.Popen([self.bin, "ui", store, "--port", "0"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        base = proc.stdout.readline().strip()
        if not base.startswith("http"):
            stop(proc)
            raise RuntimeError(f"runstore ui printed {base!r}")
        return proc, base

    @staticmethod
    def fetch_series(base, table, buckets):
        q = urllib.parse.urlencode({"table": table, "y": "loss", "x": "step", "buckets": buckets})
        return get(f"{base}api/series?{q}")

    @staticmethod
    def spike_kept(s, spike_step, spike):
        for x0, x1, mx in zip(s["x"], s["x_last"], s["max"]):
            if x0 <= spike_step <= x1:
                return mx == spike
        return False

    def series_task(self, base, urls, spikes, buckets, reps):
        tables = [f"{u}/steps" for u in urls]
        for t in tables:  # warm: the first read of each run
            self.fetch_series(base, t, buckets)
        per_run = []
        got = []
        for t in tables:
            dt, s = median_time(lambda: self.fetch_series(base, t, buckets), reps)
            per_run.append(dt)
            got.append(s)
        points = [len(s["x"]) for s in got]
        kept = sum(self.spike_kept(s, st, sp) for s, (st, sp) in zip(got, spikes))
        return per_run, points, kept


# ---- browser ------------------------------------------------------------------------------


def browser():
    from playwright.sync_api import sync_playwright
    p = sync_playwright().start()
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
    return p, b


def runstore_compare_page(b, base, urls, reps):
    run = get(f"{base}api/run?" + urllib.parse.urlencode({"url": urls[0]}))
    stream = next(m["stream_name"] for m in run["metrics"] if m["url"].endswith("/steps"))
    q = urllib.parse.urlencode({"run": urls, "stream": stream, "y": "loss"}, doseq=True)
    url = f"{base}compare?{q}"
    firsts, readies = [], []
    for i in range(reps + 1):
        page = b.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)
        page.wait_for_selector("body[data-ready]", timeout=120_000)
        page.wait_for_function("() => performance.getEntriesByName('runstore:first-chart').length > 0",
                               timeout=120_000)
        m = page.evaluate("""() => Object.fromEntries(['runstore:ready', 'runstore:first-chart'].map(n =>
            [n, (performance.getEntriesByName(n)[0] || {}).startTime ?? null]))""")
        if i == 0 and os.environ.get("UI_ANCHORS_SHOT"):
            page.screenshot(path=os.environ["UI_ANCHORS_SHOT"] + ".runstore.png")
        page.close()
        if i == 0:
            continue  # warm-up load, as for MLflow
        firsts.append(m["runstore:first-chart"] / 1e3)
        readies.append(m["runstore:ready"] / 1e3)
    return statistics.median(firsts), statistics.median(readies)


# ---- TensorBoard --------------------------------------------------------------------------


def tb_write(logdir, runs, steps):
    """Event files as tensorboardX's SummaryWriter.add_scalar writes them (its EventsWriter,
    record framing and Event/Summary protos, simple_value), one reused message per run:
    add_scalar's own per-call overhead (~55 us, 18 min for 20 M scalars here) is skipped."""
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto import event_pb2, summary_pb2
    from tensorboardX import crc32c as tbx_crc
    if tbx_crc._crc32c_native is None:
        log("tb: the C `crc32c` package is not installed; tensorboardX's pure-Python CRC makes "
            "writing several times slower (.venv/bin/pip install crc32c)")
    shutil.rmtree(logdir, ignore_errors=True)
    spikes = []
    t0 = 1.7e9
    for r in range(runs):
        step, loss, spike_step, spike = series(r, steps)
        d = os.path.join(logdir, f"run-{r:02d}")
        os.makedirs(d)
        w = EventsWriter(os.path.join(d, "events"))
        rec = w._py_recordio_writer
        ev = event_pb2.Event(wall_time=t0, step=0, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag="loss", simple_value=0.0)]))
        val = ev.summary.value[0]
        for s, v in zip(step.tolist(), loss.tolist()):
            ev.step = s
            ev.wall_time = t0 + s * 1e-3
            val.simple_value = v
            rec.write(ev.SerializeToString())
        w.close()
        spikes.append((spike_step, spike))
    return spikes


def tb_fetch(base, run):
    q = urllib.parse.urlencode({"run": run, "tag": "loss"})
    return get(f"{base}data/plugin/scalars/scalars?{q}")  # [[wall_time, step, value], ...]


def task_tb(args, rs):
    runs, steps = args.tb_runs, args.tb_steps
    work = os.path.join(args.work, "tb")
    os.makedirs(work, exist_ok=True)
    logdir = os.path.join(work, "logs")
    log(f"tb: writing {runs} x {steps:,} event files")
    dt, spikes = timed(lambda: tb_write(logdir, runs, steps))
    log(f"tb: event files written in {dt:.0f} s")
    names = [f"run-{r:02d}" for r in range(runs)]
    port = free_port()
    t_launch = time.perf_counter()
    proc = spawn([os.path.join(VENV_BIN, "tensorboard"), "--logdir", logdir, "--port", str(port),
                  "--host", "127.0.0.1"], os.path.join(work, "tensorboard.log"))
    base = f"http://127.0.0.1:{port}/"
    try:
        if wait_http(base + "data/plugin/scalars/tags", proc, 600) is None:
            raise RuntimeError("tensorboard did not answer in 10 min")

        def loaded(_b=None):
            try:
                tags = get(base + "data/plugin/scalars/tags")
                if not all(n in tags for n in names):
                    return False
                return all(tb_fetch(base, n)[-1][1] == steps - 1 for n in names)
            except Exception:
                return False
        while not loaded():
            if time.perf_counter() - t_launch > 1200:
                raise RuntimeError("tensorboard had not loaded every run in 20 min")
            if proc.poll() is not None:
                raise RuntimeError("tensorboard exited")
            time.sleep(0.5)
        t_loaded = time.perf_counter() - t_launch
        per_run, got = [], []
        for n in names:
            dt, s = median_time(lambda: tb_fetch(base, n), args.reps)
            per_run.append(dt)
            got.append(s)
        points = [len(s) for s in got]
        kept = sum(max(v for _, _, v in s) == sp for s, (_, sp) in zip(got, spikes))
        at_step = sum(any(st == step for _, step, _ in s) for s, (st, _) in zip(got, spikes))
    finally:
        stop(proc)
    say(f"tensorboard | {runs} runs x {steps:,} steps | launch until every run's last step is served "
        f"(all events loaded; polled about once a second): {ms(t_loaded)}")
    say(f"tensorboard | {runs} runs x {steps:,} steps | /data/plugin/scalars/scalars per run: median "
        f"{ms(statistics.median(per_run))} (sum over runs {ms(sum(per_run))}) | points served per run "
        f"{min(points)}-{max(points)} of {steps:,} | spikes kept {kept}/{runs} (spike step served in {at_step})")

    store = os.path.join(work, "tb.runs")
    log("tb: writing the runstore store")
    dt, (urls, rs_spikes) = timed(lambda: rs.write(store, "tb", runs, steps))
    log(f"tb: store written in {dt:.0f} s")
    assert rs_spikes == spikes
    t_launch = time.perf_counter()
    proc, base = rs.serve(store)
    try:
        wait_http(base + "api/projects", proc, 60)
        t_up = time.perf_counter() - t_launch
        per_run, points, kept = rs.series_task(base, urls, spikes, 1000, args.reps)
    finally:
        stop(proc)
    say(f"runstore    | {runs} runs x {steps:,} steps | launch until the API answers: {ms(t_up)} (no load step)")
    say(f"runstore    | {runs} runs x {steps:,} steps | /api/series buckets=1000 per run: median "
        f"{ms(statistics.median(per_run))} (sum over runs {ms(sum(per_run))}) | buckets served per run "
        f"{min(points)}-{max(points)} (min/max/last each) | spikes kept {kept}/{runs}")
    if not args.keep:
        shutil.rmtree(logdir, ignore_errors=True)
        os.remove(store)


# ---- MLflow -------------------------------------------------------------------------------


def task_mlflow(args, rs):
    runs, steps = args.mlflow_runs, args.mlflow_steps
    work = os.path.join(args.work, "mlflow")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    db = f"sqlite:///{work}/mlflow.db"
    env = dict(os.environ, MLFLOW_TRACKING_URI=db, MLFLOW_ENABLE_TELEMETRY="false", DO_NOT_TRACK="1",
               MLFLOW_DISABLE_TELEMETRY="true")
    os.environ.update({k: v for k, v in env.items() if k != "MLFLOW_TRACKING_URI"})
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient
    log(f"mlflow: logging {runs} x {steps:,} (log_batch of 1,000)")
    client = MlflowClient(tracking_uri=db)
    exp = client.create_experiment("anchors", artifact_location=f"{work}/artifacts")
    run_ids, spikes = [], []
    t0 = int(time.time() * 1000)
    for r in range(runs):
        step, loss, spike_step, spike = series(r, steps)
        run = client.create_run(exp, run_name=f"run-{r:02d}")
        rid = run.info.run_id
        ms_ = [Metric("loss", float(v), t0 + s, s) for s, v in zip(step.tolist(), loss.tolist())]
        for i in range(0, len(ms_), 1000):
            client.log_batch(rid, metrics=ms_[i:i + 1000])
        client.set_terminated(rid)
        run_ids.append(rid)
        spikes.append((spike_step, spike))
    port = free_port()
    t_launch = time.perf_counter()
    proc = spawn([os.path.join(VENV_BIN, "mlflow"), "server", "--backend-store-uri", db,
                  "--default-artifact-root", f"{work}/artifacts", "--host", "127.0.0.1", "--port", str(port),
                  "--workers", "1"], os.path.join(work, "server.log"), env=env)
    base = f"http://127.0.0.1:{port}/"
    api = base + "ajax-api/2.0/mlflow/"
    try:
        if wait_http(base + "health", proc, 300) is None:
            raise RuntimeError("mlflow server did not answer in 5 min")
        t_up = time.perf_counter() - t_launch

        def bulk():
            q = urllib.parse.urlencode({"run_ids": run_ids, "metric_key": "loss", "max_results": 320}, doseq=True)
            return get(f"{api}metrics/get-history-bulk-interval?{q}")["metrics"]

        def history(rid):
            q = urllib.parse.urlencode({"run_id": rid, "metric_key": "loss", "max_results": 25000})
            return get(f"{api}metrics/get-history?{q}")["metrics"]
        bulk()
        t_bulk, got = median_time(bulk, args.reps)
        by_run = {rid: [] for rid in run_ids}
        for m in got:
            by_run[m["run_id"]].append(m)
        pts = [len(by_run[rid]) for rid in run_ids]
        kept = sum(max(m["value"] for m in by_run[rid]) == sp for rid, (_, sp) in zip(run_ids, spikes))
        per_run, hist = [], []
        for rid in run_ids:
            history(rid)
            dt, h = median_time(lambda: history(rid), args.reps)
            per_run.append(dt)
            hist.append(h)
        hpts = [len(h) for h in hist]
        hkept = sum(max(m["value"] for m in h) == sp for h, (_, sp) in zip(hist, spikes))
        page = None
        if not args.no_browser:
            try:
                page = mlflow_page(base, exp, runs, args.reps)
            except Exception as e:  # noqa: BLE001
                page = f"not measured: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
    finally:
        stop(proc)
    say(f"mlflow      | {runs} runs x {steps:,} steps | launch until /health answers: {ms(t_up)}")
    say(f"mlflow      | {runs} runs x {steps:,} steps | UI chart request get-history-bulk-interval "
        f"(all runs, max_results=320): {ms(t_bulk)} | points served per run {min(pts)}-{max(pts)} | "
        f"spikes kept {kept}/{runs}")
    say(f"mlflow      | {runs} runs x {steps:,} steps | get-history per run (full): median "
        f"{ms(statistics.median(per_run))} (sum {ms(sum(per_run))}) | points {min(hpts)}-{max(hpts)} | "
        f"spikes kept {hkept}/{runs}")
    if isinstance(page, tuple):
        say(f"mlflow      | {runs} runs x {steps:,} steps | browser: runs page chart view until all "
            f"{runs} runs' lines are drawn: {ms(page[0])} (its get-history-bulk-interval answered {ms(page[1])})")
    elif page:
        say(f"mlflow      | browser: {page}")

    store = os.path.join(work, "mlflow.runs")
    urls, rs_spikes = rs.write(store, "mlf", runs, steps)
    assert rs_spikes == spikes
    t_launch = time.perf_counter()
    proc, base = rs.serve(store)
    try:
        wait_http(base + "api/projects", proc, 60)
        t_up = time.perf_counter() - t_launch
        per_run, points, kept = rs.series_task(base, urls, spikes, 1000, args.reps)
        page = None
        if not args.no_browser:
            try:
                p, b = browser()
                try:
                    page = runstore_compare_page(b, base, urls, args.reps)
                finally:
                    b.close()
                    p.stop()
            except Exception as e:  # noqa: BLE001
                page = f"not measured: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
    finally:
        stop(proc)
    say(f"runstore    | {runs} runs x {steps:,} steps | launch until the API answers: {ms(t_up)}")
    say(f"runstore    | {runs} runs x {steps:,} steps | /api/series buckets=1000 per run: median "
        f"{ms(statistics.median(per_run))} (sum {ms(sum(per_run))}) | buckets {min(points)}-{max(points)} | "
        f"spikes kept {kept}/{runs}")
    if isinstance(page, tuple):
        say(f"runstore    | {runs} runs x {steps:,} steps | browser: compare page, {runs} runs overlaid, "
            f"until runstore:first-chart: {ms(page[0])} (page ready {ms(page[1])})")
    elif page:
        say(f"runstore    | browser: {page}")


def mlflow_page(base, exp, runs, reps):
    """The experiment's training-runs page in chart view (`#/experiments/ID/runs?
    compareRunsMode=CHART`, whose `loss` chart overlays every run): seconds from navigation
    until the page's get-history-bulk-interval response has arrived and its plotly chart holds
    a trace per run, and until that response arrived. One warm-up load first."""
    p, b = browser()
    url = f"{base}#/experiments/{exp}/runs?compareRunsMode=CHART"
    drawn, metric_done = [], []
    try:
        for i in range(reps + 1):
            ctx = b.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            done = []
            page.on("response", lambda r: done.append(time.perf_counter())
                    if "get-history-bulk-interval" in r.url else None)
            t = time.perf_counter()
            page.goto(url)
            while not done:
                page.wait_for_timeout(20)
                if time.perf_counter() - t > 300:
                    raise RuntimeError("no get-history-bulk-interval request in 5 min")
            page.wait_for_function(
                f"() => document.querySelectorAll('.js-plotly-plot .scatterlayer .trace').length >= {runs}",
                timeout=300_000, polling="raf")
            d = time.perf_counter() - t
            if i == 0 and os.environ.get("UI_ANCHORS_SHOT"):
                page.screenshot(path=os.environ["UI_ANCHORS_SHOT"])
            ctx.close()
            if i == 0:
                continue  # warm-up load
            drawn.append(d)
            metric_done.append(done[0] - t)
    finally:
        b.close()
        p.stop()
    return statistics.median(drawn), statistics.median(metric_done)


# ---- Aim ----------------------------------------------------------------------------------


def task_aim(args, rs):
    runs, steps = args.aim_runs, args.aim_steps
    work = os.path.join(args.work, "aim")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    os.environ["AIM_TELEMETRY_ENABLED"] = "0"
    from aim import Repo, Run
    log(f"aim: tracking {runs} x {steps:,}")
    Repo.from_path(work, init=True)
    spikes = []
    for r in range(runs):
        step, loss, spike_step, spike = series(r, steps)
        run = Run(repo=work, experiment="anchors", system_tracking_interval=None,
                  log_system_params=False, capture_terminal_logs=False)
        run["hparams"] = {"seed": r}
        run.name = f"run-{r:02d}"
        for s, v in zip(step.tolist(), loss.tolist()):
            run.track(v, name="loss", step=s)
        run.close()
        spikes.append((spike_step, spike))
    port = free_port()
    t_launch = time.perf_counter()
    proc = spawn([os.path.join(VENV_BIN, "aim"), "up", "--repo", work, "--host", "127.0.0.1", "--port", str(port)],
                 os.path.join(work, "aim-up.log"), env=dict(os.environ, AIM_TELEMETRY_ENABLED="0"))
    base = f"http://127.0.0.1:{port}/"
    try:
        if wait_http(base + "api/projects/", proc, 600) is None:
            raise RuntimeError("aim up did not answer in 10 min")
        t_up = time.perf_counter() - t_launch
        runs_q = base + "api/runs/search/run/?" + urllib.parse.urlencode({"q": "", "limit": runs})
        metric_q = base + "api/runs/search/metric/?" + urllib.parse.urlencode(
            {"q": 'metric.name == "loss"', "p": 500})
        get(runs_q, raw=True)
        t_runs, body_runs = median_time(lambda: get(runs_q, raw=True), args.reps)
        get(metric_q, raw=True)
        t_metric, body_metric = median_time(lambda: get(metric_q, raw=True), args.reps)
        n_runs, pts, kept = aim_decode(body_runs, body_metric, spikes)
    finally:
        stop(proc)
    say(f"aim         | {runs} runs x {steps:,} steps | `aim up` launch until the API answers: {ms(t_up)}")
    say(f"aim         | {runs} runs x {steps:,} steps | /api/runs/search/run/?limit={runs}: {ms(t_runs)} "
        f"({len(body_runs):,} bytes, {n_runs} runs)")
    say(f"aim         | {runs} runs x {steps:,} steps | /api/runs/search/metric/ p=500 (all runs' loss): "
        f"{ms(t_metric)} ({len(body_metric):,} bytes) | points per run {pts} | spikes kept {kept}")

    store = os.path.join(work, "aim.runs")
    urls, rs_spikes = rs.write(store, "aimp", runs, steps)
    assert rs_spikes == spikes
    t_launch = time.perf_counter()
    proc, base = rs.serve(store)
    try:
        wait_http(base + "api/projects", proc, 60)
        t_up = time.perf_counter() - t_launch
        q = base + "api/runs?" + urllib.parse.urlencode({"project": "aimp", "limit": runs})
        get(q)
        t_runs, got = median_time(lambda: get(q), args.reps)
        n = len(got["runs"]) if isinstance(got, dict) and "runs" in got else len(got)

        def all_series():
            return [rs.fetch_series(base, f"{u}/steps", 1000) for u in urls]
        all_series()
        t_series, ss = median_time(all_series, args.reps)
        kept = sum(rs.spike_kept(s, st, sp) for s, (st, sp) in zip(ss, spikes))
        pts = [len(s["x"]) for s in ss]
    finally:
        stop(proc)
    say(f"runstore    | {runs} runs x {steps:,} steps | launch until the API answers: {ms(t_up)}")
    say(f"runstore    | {runs} runs x {steps:,} steps | /api/runs?project&limit={runs}: {ms(t_runs)} ({n} runs)")
    say(f"runstore    | {runs} runs x {steps:,} steps | /api/series buckets=1000 for all {runs} runs, one after "
        f"another: {ms(t_series)} | buckets per run {min(pts)}-{max(pts)} | spikes kept {kept}/{runs}")


def aim_decode(body_runs, body_metric, spikes):
    """Runs in the run search; points per run and spikes kept in the metric search (decoded
    with aim's own decode_tree; values are float64 numpy blobs)."""
    try:
        tree_runs = decode_stream(body_runs)
        n_runs = sum(1 for k in tree_runs if not str(k).startswith("progress"))
        tree = decode_stream(body_metric)
        pts, kept = [], 0
        spike_values = {sp for _, sp in spikes}
        for k, run in tree.items():
            if str(k).startswith("progress") or not isinstance(run, dict):
                continue
            traces = run.get("traces", [])
            traces = traces.values() if isinstance(traces, dict) else traces
            for trace in traces:
                v = np.frombuffer(trace["values"]["blob"], dtype=np.float64)
                pts.append(len(v))
                kept += bool(len(v)) and float(np.max(v)) in spike_values
        pts_s = f"{min(pts)}-{max(pts)}" if pts else "?"
        return n_runs, pts_s, f"{kept}/{len(spikes)}"
    except Exception as e:  # noqa: BLE001
        log(f"aim: could not decode the stream: {e!r}")
        return "?", "?", "?"


def decode_stream(body):
    """Aim's search streams: (u32 key length, key, u32 value length, value) records of
    encode_tree paths (aim.web.api.runs.utils.collect_streamable_data), rebuilt with aim's
    own decode_tree."""
    import struct
    from aim.storage.treeutils import decode_tree
    items, i = [], 0
    while i < len(body):
        (kl,) = struct.unpack_from("<I", body, i)
        i += 4
        k = body[i:i + kl]
        i += kl
        (vl,) = struct.unpack_from("<I", body, i)
        i += 4
        v = body[i:i + vl]
        i += vl
        items.append((k, v))
    return decode_tree(iter(items))


# ---- main ---------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runstore", default=shutil.which("runstore") or "runstore")
    ap.add_argument("--only", default="tb,mlflow,aim")
    ap.add_argument("--work", default="/tmp/ui-anchors")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "results", "ui_anchors.txt"))
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--pw-site", default=None, help="site-packages holding playwright")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--tb-runs", type=int, default=20)
    ap.add_argument("--tb-steps", type=int, default=1_000_000)
    ap.add_argument("--mlflow-runs", type=int, default=10)
    ap.add_argument("--mlflow-steps", type=int, default=10_000)
    ap.add_argument("--aim-runs", type=int, default=50)
    ap.add_argument("--aim-steps", type=int, default=1_000)
    args = ap.parse_args()
    if args.pw_site:
        sys.path.append(args.pw_site)
    os.makedirs(args.work, exist_ok=True)
    rs = Runstore(args.runstore, args.work)
    ver = subprocess.run([args.runstore, "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    say(f"# ui_anchors {time.strftime('%Y-%m-%d %H:%M:%S')} | {ver} | {platform.node()} | "
        f"{os.cpu_count()} cores, load {load[0]:.1f} at start | median of {args.reps} | HTTP times are "
        f"request + full body + JSON parse in Python (urllib), warm server")
    tasks = {"tb": task_tb, "mlflow": task_mlflow, "aim": task_aim}
    for name in args.only.split(","):
        try:
            tasks[name](args, rs)
        except Exception as e:  # noqa: BLE001
            say(f"{name:<11} | not measured: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "a") as f:
        f.write("\n".join(LINES) + "\n\n")


if __name__ == "__main__":
    main()
