"""`runstore ui` in headless Chromium: every page on the demo store, charts drawn, the filter
box, an XSS payload shown as text, no console errors.

Needs Debian's Chromium (`apt-get install chromium`, at /usr/bin/chromium or $RUNSTORE_CHROMIUM)
and the Python package playwright (`pip install playwright`; its own browser download is not
used). Without them the tests skip and say so. The binary is $RUNSTORE_BIN or the repository's
target/release/runstore (`cargo build --release`). Screenshots go to target/ui-screenshots/;
with RUNSTORE_UI_UPDATE_DOCS=1, test_docs_screenshots remakes docs/ui-project.png and docs/ui-run.png.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RUNSTORE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SHOTS = REPO / "target" / "ui-screenshots"
PROJECT = "cifar10-sweep"
DEMO_RUNS = ["resnet18-lr0.1", "resnet18-lr0.01", "resnet18-lr0.3", "resnet34-lr0.05"]
XSS = "<img src=x onerror=alert(1)>"
XSS_URL = f"{PROJECT}/runs/{XSS}"
BEST = f"{PROJECT}/runs/resnet18-lr0.01"


def _binary() -> Path | None:
    candidates = [os.environ.get("RUNSTORE_BIN")]
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(str(Path(os.environ["CARGO_TARGET_DIR"]) / "release" / "runstore"))
    candidates.append(str(REPO / "target" / "release" / "runstore"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def _skip_reason() -> str | None:
    if sync_playwright is None:
        return ("the Python package playwright is missing: `pip install playwright` (its browser "
                "download is not needed; the tests use Debian's chromium)")
    if not Path(CHROMIUM).is_file():
        return (f"no Chromium at {CHROMIUM}: `apt-get install chromium` "
                "(or set RUNSTORE_CHROMIUM to a Chromium binary)")
    if _binary() is None:
        return "no runstore binary: `cargo build --release`, or set RUNSTORE_BIN"
    return None


SKIP = _skip_reason()


def _need_browser():
    if SKIP is not None:
        pytest.skip(f"browser tests skipped: {SKIP}")


def _cli(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([str(_binary()), *args], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert done.returncode == 0, f"runstore {' '.join(args)} failed: {done.stderr}"
    return done.stdout


class Server:
    """`runstore ui STORE --port 0`; the URL is the first line of its stdout."""

    def __init__(self, store: Path, log: Path):
        self.log = open(log, "w")
        self.proc = subprocess.Popen([str(_binary()), "ui", str(store), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        lines: queue.Queue[str] = queue.Queue()

        def drain():  # keeps reading, so a chatty server never blocks on a full pipe
            for line in self.proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=drain, daemon=True).start()
        try:
            first = lines.get(timeout=30)
        except queue.Empty:
            first = ""
        if not first.startswith("http"):
            self.stop()
            err = Path(log).read_text()
            if "unrecognized subcommand" in err:
                pytest.skip(f"{_binary()} has no `ui` command (built without the `ui` feature?)")
            raise AssertionError(f"runstore ui printed {first!r} first; stderr: {err}")
        self.url = first.strip().rstrip("/") + "/"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The demo store, plus a run named and described with an XSS payload, plus a reduced
    (PCA) embedding table for the scatter."""
    _need_browser()
    d = tmp_path_factory.mktemp("ui")
    path = d / "demo.runs"
    _cli("demo", str(path), cwd=d)
    _cli("init", str(path), "--project", PROJECT, "--name", XSS, "--description", XSS,
         "--param", f"note={XSS}", "--param", "lr=0.02", "--param", "batch_size=64")
    for i, acc in enumerate([0.31, 0.52, 0.64]):
        _cli("log", str(path), XSS_URL, "--output",
             json.dumps({"epoch": i, "val_accuracy": acc, XSS: i}))
    _cli("set-status", str(path), XSS_URL, "completed")
    for i in range(120):  # a project of more than two pages
        _cli("init", str(path), "--project", "paging", "--name", f"r{i:03d}", "--param", f"i={i}")
    tables = _cli("tables", str(path), BEST, "--json")
    if "_pca" not in tables and "_umap" not in tables:
        _cli("reduce", str(path), BEST, "--method", "pca", "--components", "2")
    return path


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    s = Server(store, tmp_path_factory.mktemp("log") / "ui.stderr")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A page that records console errors, page errors and dialogs (none may happen)."""

    def __init__(self, browser, base: str):
        self.base = base
        self.ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.ctx.new_page()
        self.errors: list[str] = []
        self.allowed: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

        def dialog(d):
            self.errors.append(f"dialog fired: {d.type} {d.message!r}")
            d.dismiss()

        self.page.on("dialog", dialog)

    def open(self, path: str, params=None):
        url = self.base + path.lstrip("/")
        if params:
            url += "?" + urlencode(params, doseq=True, quote_via=quote)
        self.page.goto(url)
        self.ready()

    def ready(self):
        self.page.wait_for_selector("body[data-ready]", timeout=20_000)
        state = self.page.evaluate("document.body.dataset.ready")
        assert state == "1", f"page failed: {self.page.inner_text('#app')}"

    def shot(self, name: str):
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.wait_for_timeout(300)
        out = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(out), full_page=True)
        return out

    def check_clean(self):
        bad = [e for e in self.errors if not any(re.search(a, e) for a in self.allowed)]
        assert not bad, f"console errors or dialogs: {bad}"
        # The payload never became an element.
        assert self.page.locator('img[src="x"]').count() == 0

    def close(self):
        self.ctx.close()


@pytest.fixture
def page(browser, server):
    p = Page(browser, server.url)
    yield p
    try:
        p.check_clean()
    finally:
        p.close()


# Colored (non-gray) pixels in the canvases under a selector: series lines, bands and points
# are colored, axes and grid lines are gray, so a chart with no data counts 0.
COLORED_PIXELS = """(sel) => [...document.querySelectorAll(sel + ' canvas')].map((c) => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    const mx = Math.max(d[i], d[i + 1], d[i + 2]), mn = Math.min(d[i], d[i + 1], d[i + 2]);
    if (d[i + 3] > 80 && mx - mn > 60) n++;
  }
  return n;
})"""


def colored(page: Page, sel: str) -> list[int]:
    return page.page.evaluate(COLORED_PIXELS, sel)


def update_docs(src: Path, name: str):
    if os.environ.get("RUNSTORE_UI_UPDATE_DOCS") == "1":
        shutil.copyfile(src, REPO / "docs" / name)


# ------------------------------------------------------------------------------------------

ASSETS = REPO / "src" / "cli" / "ui" / "assets"


def test_assets_budget_and_rules():
    """No browser needed: the page's JS + CSS stay within 300 KB, nothing is loaded from
    another origin, no inline script or style (the CSP forbids them), and the viewer's script
    never writes HTML."""
    files = ["app.js", "app.css", "uPlot.iife.min.js", "uPlot.min.css"]
    total = sum((ASSETS / f).stat().st_size for f in files)
    assert total <= 300_000, f"JS + CSS is {total} bytes"
    html = (ASSETS / "index.html").read_text()
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == [
        "data:,", "/assets/uPlot.min.css", "/assets/app.css", "/assets/uPlot.iife.min.js", "/assets/app.js", "/"]
    assert "<style" not in html and " style=" not in html and " on" not in html.replace(" only", "")
    assert re.findall(r"<script[^>]*>\s*[^<\s]", html) == []
    own = (ASSETS / "app.js").read_text() + (ASSETS / "app.css").read_text()
    assert "http:" not in own and "https:" not in own and "@import" not in own
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]:
        assert sink not in own, sink
    assert "1.6.32" in (ASSETS / "uPlot.iife.min.js").read_text()[:100]
    assert "sha512-" in (ASSETS / "VENDORED.md").read_text()


def test_projects_page(page):
    page.open("/")
    link = page.page.locator("#projects a", has_text=PROJECT)
    assert link.count() == 1
    assert link.get_attribute("href") == f"/project?name={PROJECT}"
    assert "5" in page.page.locator("#projects tbody tr", has_text=PROJECT).inner_text()
    page.shot("projects")


def test_project_page_runs_table(page):
    page.open("/project", {"name": PROJECT})
    names = page.page.locator("#runs td.name a").all_inner_texts()
    assert sorted(names) == sorted(DEMO_RUNS + [XSS])
    # The payload is text: in a link's text, a description cell and a parameter header.
    assert page.page.locator("#runs td.name a", has_text=XSS).count() == 1
    assert page.page.locator("#runs td.desc", has_text=XSS).count() == 1
    assert page.page.locator("#runs td.param", has_text=XSS).count() == 1
    assert page.page.locator("#runs th.output", has_text=XSS).count() == 1
    heads = page.page.locator("#runs thead th").all_inner_texts()
    for h in ["name", "status", "created", "duration", "description", "lr", "optimizer.name", "val_accuracy"]:
        assert any(t.strip().startswith(h) for t in heads), (h, heads)
    # The demo's RUNNING run was left by a process that is gone: stale (told from /proc, so
    # the badge follows what the API says at the time).
    row = page.page.locator("#runs tbody tr", has_text="resnet34-lr0.05")
    api = json.loads(page.page.request.get(page.base + f"api/runs?project={PROJECT}").text())
    stale = next(r["stale"] for r in api["runs"] if r["name"] == "resnet34-lr0.05")
    assert row.locator(".st-stale").count() == (1 if stale else 0)
    assert all(not r["stale"] for r in api["runs"] if r["status"] != "RUNNING")
    assert row.locator(".st-running").count() == 1
    # Latest output value in the cell, min/max on hover.
    cell = page.page.locator("#runs tbody tr", has_text="resnet18-lr0.01").locator("td.output").last
    assert "min" in cell.get_attribute("title") and "max" in cell.get_attribute("title")
    assert page.page.locator(".pager .range").inner_text().replace("\u2013", "-") == "runs 1-5 of 5"
    page.shot("project")


def test_project_sort_by_header(page):
    page.open("/project", {"name": PROJECT})
    page.page.locator("#runs thead th.param a", has_text=re.compile(r"^lr")).click()
    page.ready()
    assert "order_by=params.lr" in page.page.url
    names = page.page.locator("#runs td.name a").all_inner_texts()
    assert names[0] == "resnet18-lr0.01" and names[-1] == "resnet18-lr0.3", names
    page.page.locator("#runs thead th.param a", has_text=re.compile(r"^lr")).click()
    page.ready()
    assert "DESC" in page.page.url
    assert page.page.locator("#runs td.name a").first.inner_text() == "resnet18-lr0.3"


def test_filter_box_filters_and_bad_filter_shows_error(page):
    page.allowed = [r"status of 400"]  # the bad filter's 400, which the page shows inline
    page.open("/project", {"name": PROJECT})
    box = page.page.get_by_role("textbox", name="filter")
    box.fill("params.lr >= 0.1")
    with page.page.expect_navigation():
        box.press("Enter")
    page.ready()
    assert "filter=params.lr" in page.page.url
    names = page.page.locator("#runs td.name a").all_inner_texts()
    assert sorted(names) == ["resnet18-lr0.1", "resnet18-lr0.3"]

    url = page.page.url
    box = page.page.get_by_role("textbox", name="filter")
    box.fill("params.lr <<< 1")
    box.press("Enter")
    err = page.page.locator(".filterbar + .error")
    err.wait_for(state="visible")
    assert err.inner_text().strip()
    assert page.page.url == url  # no navigation
    assert page.page.locator("#runs td.name a").count() == 2  # the table stays
    page.shot("project-bad-filter")

    # A bookmarked URL with a bad filter shows the error and the unfiltered table.
    page.open("/project", {"name": PROJECT, "filter": "nonsense ((("})
    assert page.page.locator(".filterbar + .error").is_visible()
    assert page.page.locator("#runs td.name a").count() == 5


def test_project_paging(page):
    page.open("/project", {"name": "paging", "order_by": "params.i"})
    rng = page.page.locator(".pager .range")
    assert rng.inner_text().replace("\u2013", "-") == "runs 1-50 of 120"
    assert page.page.locator("#runs td.name a").first.inner_text() == "r000"
    assert page.page.locator(".pager .prev").count() == 0
    with page.page.expect_navigation():
        page.page.locator(".pager .next").click()
    page.ready()
    assert "offset=50" in page.page.url and "order_by=params.i" in page.page.url
    assert rng.inner_text().replace("\u2013", "-") == "runs 51-100 of 120"
    assert page.page.locator("#runs td.name a").first.inner_text() == "r050"
    with page.page.expect_navigation():
        page.page.locator(".pager .next").click()
    page.ready()
    assert rng.inner_text().replace("\u2013", "-") == "runs 101-120 of 120"
    assert page.page.locator("#runs td.name a").count() == 20
    assert page.page.locator(".pager .next").count() == 0
    with page.page.expect_navigation():
        page.page.locator(".pager .prev").click()
    page.ready()
    assert page.page.locator("#runs td.name a").first.inner_text() == "r050"


def test_compare_link_from_selection(page):
    page.open("/project", {"name": PROJECT})
    for name in ["resnet18-lr0.1", "resnet18-lr0.01"]:
        page.page.locator("#runs tbody tr", has_text=name).locator("input[type=checkbox]").check()
    compare = page.page.locator("#compare")
    assert compare.inner_text() == "Compare (2)"
    with page.page.expect_navigation():
        compare.click()
    page.ready()
    assert page.page.url.count("run=") == 2
    assert sorted(page.page.locator("#compare-legend a").all_inner_texts()) == ["resnet18-lr0.01", "resnet18-lr0.1"]


def test_run_page(page):
    page.open("/run", {"url": BEST})
    attrs = page.page.locator("#attributes").inner_text()
    assert "resnet18-lr0.01" in attrs and "COMPLETED" in attrs
    assert "optimizer" in page.page.locator("#params").inner_text()
    assert page.page.locator("#outputs-table tbody tr").count() == 10
    # One chart per numeric output key (epoch, lr, train_loss, val_accuracy), each drawn.
    out = colored(page, "#outputs")
    assert len(out) >= 4 and all(n > 50 for n in out), out
    # The training steps stream: charts from /api/series, drawn.
    page.page.wait_for_function("() => document.querySelectorAll('#metrics .chart-note').length >= 2 && "
                                "[...document.querySelectorAll('#metrics .chart-note')].every(n => n.textContent)")
    steps = colored(page, "#metrics")
    assert len(steps) >= 2 and all(n > 50 for n in steps), steps
    assert page.page.locator("#metrics-tables a", has_text="steps_0000").get_attribute("href").startswith("/table?url=")
    bulk = page.page.locator("#bulk a", has_text="download").first.get_attribute("href")
    assert bulk.startswith("/api/bulk?url=") and "name=checkpoint.pt" in bulk
    page.shot("run")

    # The x selector redraws the output charts against epoch.
    page.page.select_option("#output-x", "epoch")
    assert "x=epoch" in page.page.url
    out = colored(page, "#outputs")
    assert len(out) >= 3 and all(n > 50 for n in out), out


def test_run_page_zoom_refetches(page):
    page.open("/run", {"url": BEST})
    note = page.page.locator("#metrics .chart-note").last
    page.page.wait_for_function("() => [...document.querySelectorAll('#metrics .chart-note')].every(n => n.textContent)")
    over = page.page.locator("#metrics .u-over").last
    over.scroll_into_view_if_needed()
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    page.page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=5)
    page.page.mouse.up()
    page.page.wait_for_function("(n) => n.textContent.includes('zoomed')", arg=note.element_handle())
    assert all(n > 20 for n in colored(page, "#metrics"))
    over.dblclick()
    page.page.wait_for_function("(n) => !n.textContent.includes('zoomed')", arg=note.element_handle())


def test_run_page_xss_as_text(page):
    page.open("/run", {"url": XSS_URL})
    assert page.page.locator("h2", has_text=XSS).count() == 1
    attrs = page.page.locator("#attributes").inner_text()
    assert attrs.count(XSS) >= 2  # name and description
    assert XSS in page.page.locator("#params").inner_text()
    assert XSS in page.page.locator("#outputs-table").inner_text()
    out = colored(page, "#outputs")
    assert out and all(n > 20 for n in out), out


def test_table_page_rows_where_and_scatter(page):
    page.allowed = [r"status of 400"]
    tables = json.loads(page.page.request.get(page.base + "api/run?url=" + quote(BEST, safe="")).text())["metrics"]
    reduced = next(t["url"] for t in tables if re.search(r"_(pca|umap)", t["url"]))
    page.open("/table", {"url": reduced})
    assert page.page.locator("#rows tbody tr").count() == 50
    assert "1–50 of 10000" in page.page.locator(".pager .range").inner_text()
    page.page.wait_for_function("() => document.querySelector('.scatter-box .chart-note')?.textContent.includes('points')")
    dots = page.page.evaluate(COLORED_PIXELS, ".scatter-box")
    assert dots and dots[0] > 500, dots
    # Hover: the row's values.
    canvas = page.page.locator("canvas.scatter")
    hit = page.page.evaluate("""() => { const c = document.querySelector('canvas.scatter');
      const x = c.getContext('2d'), d = x.getImageData(0, 0, c.width, c.height).data;
      const r = window.devicePixelRatio || 1;
      for (let i = 0; i < d.length; i += 4) { const mx = Math.max(d[i], d[i+1], d[i+2]), mn = Math.min(d[i], d[i+1], d[i+2]);
        if (mx - mn > 60) { const p = i / 4; return [(p % c.width) / r, Math.floor(p / c.width) / r]; } } return null; }""")
    assert hit
    canvas.hover(position={"x": hit[0] + 1, "y": hit[1] + 1})
    tip = page.page.locator(".tip")
    tip.wait_for(state="visible")
    page.page.wait_for_function("() => document.querySelector('.tip').textContent.includes('loss')")
    # The demo's rows join its input table by example id: coloured by the input's label by
    # default, and the hover shows the input row too.
    assert page.page.locator(".scatter-box select").input_value().endswith("label")
    page.page.wait_for_function("() => document.querySelector('.tip').textContent.includes('label (input)')")
    page.shot("table")
    # The colour select redraws.
    page.page.select_option(".scatter-box select", "loss")
    page.page.wait_for_timeout(500)
    assert page.page.evaluate(COLORED_PIXELS, ".scatter-box")[0] > 500

    # Sort by a column header: ascending, then descending.
    with page.page.expect_navigation():
        page.page.locator("#rows thead th a", has_text=re.compile(r"^loss")).click()
    page.ready()
    assert "order_by=loss" in page.page.url
    col = [float(t) for t in page.page.locator("#rows tbody tr td:nth-child(3)").all_inner_texts()]
    assert col == sorted(col)
    with page.page.expect_navigation():
        page.page.locator("#rows thead th a", has_text=re.compile(r"^loss")).click()
    page.ready()
    assert "DESC" in page.page.url
    col = [float(t) for t in page.page.locator("#rows tbody tr td:nth-child(3)").all_inner_texts()]
    assert col == sorted(col, reverse=True) and col[0] > 2

    box = page.page.get_by_role("textbox", name="where")
    box.fill("loss > 2")
    with page.page.expect_navigation():
        box.press("Enter")
    page.ready()
    assert "where=loss" in page.page.url
    total = int(re.search(r"of (\d+)", page.page.locator(".pager .range").inner_text()).group(1))
    assert 0 < total < 10000
    losses = [float(t) for t in page.page.locator("#rows tbody tr td:nth-child(3)").all_inner_texts()]
    assert losses and all(v > 2 for v in losses)
    box = page.page.get_by_role("textbox", name="where")
    box.fill("loss >>> 2")
    box.press("Enter")
    page.page.locator(".filterbar + .error").wait_for(state="visible")
    assert page.page.locator("#rows tbody tr").count() > 0


def test_table_page_step_series(page):
    page.open("/table", {"url": f"{BEST}/steps_0000"})
    assert page.page.locator("#rows tbody tr").count() == 50
    page.page.wait_for_function("() => [...document.querySelectorAll('.chart-note')].length >= 1 && "
                                "[...document.querySelectorAll('.chart-note')].every(n => n.textContent)")
    drawn = colored(page, ".charts")
    assert drawn and all(n > 50 for n in drawn), drawn


def test_unknown_run_and_page_show_an_error(page):
    page.allowed = [r"status of 404"]
    page.page.goto(page.base + "run?url=" + quote(f"{PROJECT}/runs/nope", safe=""))
    page.page.wait_for_selector("body[data-ready]")
    assert page.page.evaluate("document.body.dataset.ready") == "error"
    assert "nope" in page.page.locator(".error").inner_text()


def test_compare_page(page):
    runs = [f"{PROJECT}/runs/{n}" for n in DEMO_RUNS] + [XSS_URL]
    page.open("/compare", {"run": runs})
    legend = page.page.locator("#compare-legend a").all_inner_texts()
    assert sorted(legend) == sorted(DEMO_RUNS + [XSS])
    drawn = colored(page, "#compare-chart")
    assert drawn and drawn[0] > 200, drawn
    diff = page.page.locator("#param-diff").inner_text()
    assert "lr" in diff and "batch_size" in diff and XSS in diff
    page.shot("compare-outputs")
    with page.page.expect_navigation():
        page.page.select_option("#compare-x", "epoch")
    page.ready()
    assert "x=epoch" in page.page.url
    assert colored(page, "#compare-chart")[0] > 200

    page.open("/compare", {"run": runs[:3], "stream": "train", "y": "loss"})
    page.page.wait_for_function("() => document.querySelector('#compare-chart .chart-note')?.textContent")
    drawn = colored(page, "#compare-chart")
    assert drawn and drawn[0] > 200, drawn
    page.shot("compare-stream")


def test_live_run_updates(browser, tmp_path):
    runstore = pytest.importorskip("runstore", reason="the runstore Python module (maturin develop) is needed to write beside the viewer")
    path = tmp_path / "live.runs"
    with runstore.open(path) as store:
        run = store.init(project_name="live", run_name="training", parameters={"lr": 0.1})
        run.set_status_running()
        run.add_output_value({"epoch": 0, "loss": 1.0})
        for step in range(50):
            run.log({"train_loss": 2.0 / (step + 1)}, step=step)
        deadline = time.time() + 10  # run.log commits in groups: wait for the first
        while not store.run(run.url).metrics_infos and time.time() < deadline:
            time.sleep(0.1)
        server = Server(path, tmp_path / "ui.stderr")
        p = Page(browser, server.url)
        try:
            p.open("/run", {"url": run.url})
            assert p.page.locator("#live").is_visible()
            assert p.page.locator("#outputs-table tbody tr").count() == 1
            p.page.wait_for_function("() => [...document.querySelectorAll('#metrics .chart-note')].some(n => n.textContent)")
            before = p.page.locator("#metrics-tables tbody td:nth-child(3)").first.inner_text()
            for i in range(1, 4):
                run.add_output_value({"epoch": i, "loss": 1.0 / (i + 1)})
            for step in range(50, 250):
                run.log({"train_loss": 2.0 / (step + 1)}, step=step)
            p.page.wait_for_function("() => document.querySelectorAll('#outputs-table tbody tr').length == 4", timeout=15_000)
            assert all(n > 20 for n in colored(p, "#outputs"))
            # The step series grows in place: its row count and chart follow, no reload.
            p.page.wait_for_function(
                "(b) => document.querySelector('#metrics-tables tbody td:nth-child(3)').textContent != b",
                arg=before, timeout=15_000)
            assert all(n > 20 for n in colored(p, "#metrics"))
            run.set_status("COMPLETED")
            p.page.locator("#live").wait_for(state="hidden", timeout=15_000)
            assert "COMPLETED" in p.page.locator("#attributes").inner_text()
            p.check_clean()
        finally:
            p.close()
            server.stop()


@pytest.mark.skipif(os.environ.get("RUNSTORE_UI_UPDATE_DOCS") != "1",
                    reason="makes docs/ui-project.png and docs/ui-run.png; set RUNSTORE_UI_UPDATE_DOCS=1")
def test_docs_screenshots(browser, tmp_path):
    """The README's pictures, from a plain demo store (no test payloads in them)."""
    path = tmp_path / "demo.runs"
    _cli("demo", str(path), cwd=tmp_path)
    server = Server(path, tmp_path / "ui.stderr")
    p = Page(browser, server.url)
    try:
        p.page.set_viewport_size({"width": 1700, "height": 700})
        p.open("/project", {"name": PROJECT, "order_by": "outputs.val_accuracy DESC"})
        p.page.locator("#runs tbody tr", has_text="resnet18-lr0.01").locator("input").check()
        p.page.locator("#runs tbody tr", has_text="resnet18-lr0.1").locator("input").check()
        update_docs(p.shot("docs-project"), "ui-project.png")
        p.page.set_viewport_size({"width": 1280, "height": 800})
        p.open("/run", {"url": BEST})
        p.page.wait_for_function("() => [...document.querySelectorAll('#metrics .chart-note')].every(n => n.textContent)")
        update_docs(p.shot("docs-run"), "ui-run.png")
        p.check_clean()
    finally:
        p.close()
        server.stop()


def test_odd_values(browser, tmp_path):
    """NaN and infinities (sent as strings), nested and odd keys, strings among numbers: shown,
    charted where numeric, sortable, and nothing breaks."""
    runstore = pytest.importorskip("runstore", reason="the runstore Python module (maturin develop) is needed")
    path = tmp_path / "odd.runs"
    with runstore.open(path) as store:
        for name, lr in [("a", 0.1), ("b", float("nan")), ("c", 0.3)]:
            run = store.init(project_name="odd", run_name=name,
                             parameters={"lr": lr, "dotted.key": name, "deep": {"er": {"est": [1, 2]}}})
            run.add_output_values([
                {"step": 0, "loss": float("nan"), "acc": 0.1, "note": "text"},
                {"step": 1, "loss": float("inf"), "acc": float("-inf"), "flag": True},
                {"step": 2, "loss": 0.5, "acc": 0.7, "nested": {"x": 1}},
            ])
            run.set_status_completed()
    server = Server(path, tmp_path / "ui.stderr")
    p = Page(browser, server.url)
    try:
        p.open("/project", {"name": "odd"})
        assert p.page.locator("#runs td.param", has_text="NaN").count() == 1
        heads = p.page.locator("#runs thead th").all_inner_texts()
        assert any("`dotted.key`" in h for h in heads), heads
        with p.page.expect_navigation():
            p.page.locator("#runs thead th.param a", has_text="dotted.key").click()
        p.ready()
        assert "order_by=params.%60dotted.key%60" in p.page.url
        assert not p.page.locator(".filterbar + .error").is_visible()
        assert p.page.locator("#runs th.sorted").inner_text().startswith("`dotted.key`")
        p.open("/run", {"url": "odd/runs/b"})
        table = p.page.locator("#outputs-table").inner_text()
        assert "NaN" in table and "Infinity" in table and "-Infinity" in table and '{"x":1}' in table
        drawn = colored(p, "#outputs")
        assert len(drawn) >= 2 and all(n > 0 for n in drawn), drawn
        p.open("/compare", {"run": ["odd/runs/a", "odd/runs/b", "odd/runs/c"], "key": "outputs.acc"})
        assert colored(p, "#compare-chart")[0] > 50
        p.check_clean()
    finally:
        p.close()
        server.stop()


def test_spike_survives_every_zoom(browser, tmp_path):
    """One spike in 200,000 steps: the step chart's envelope reaches it at full view and in
    every zoom that holds it (each zoom refetches min/max per pixel column), and a zoom
    beside it does not show it."""
    runstore = pytest.importorskip("runstore", reason="the runstore Python module (maturin develop) is needed")
    import numpy as np
    import pyarrow as pa

    n, spike_at = 200_000, 123_457
    loss = 1.0 + 0.01 * np.sin(np.arange(n) / 50.0)
    loss[spike_at] = 100.0
    path = tmp_path / "spike.runs"
    with runstore.open(path) as store:
        run = store.init(project_name="spike", run_name="r")
        run.append_metrics("steps", pa.table({"step": np.arange(n, dtype=np.int64), "loss": loss}))
        run.set_status_completed()
    server = Server(path, tmp_path / "ui.stderr")
    p = Page(browser, server.url)
    try:
        p.open("/run", {"url": "spike/runs/r"})
        chart = p.page.locator("#metrics .chart[data-ymax]").last
        chart.wait_for()
        assert float(chart.get_attribute("data-ymax")) == 100.0
        assert int(chart.get_attribute("data-buckets")) <= 2000

        def zoom(a: float, b: float):
            """Drag over the fractions a..b of the plot's width."""
            over = chart.locator(".u-over")
            over.scroll_into_view_if_needed()
            box = over.bounding_box()
            y = box["y"] + box["height"] / 2
            before = chart.get_attribute("data-range")
            p.page.mouse.move(box["x"] + box["width"] * a, y)
            p.page.mouse.down()
            p.page.mouse.move(box["x"] + box["width"] * b, y, steps=4)
            p.page.mouse.up()
            p.page.wait_for_function("([el, b]) => el.dataset.range != b",
                                     arg=[chart.element_handle(), before], timeout=10_000)
            lo, hi = map(float, chart.get_attribute("data-range").split(".."))
            return lo, hi

        frac = spike_at / n
        lo, hi = zoom(frac - 0.2, frac + 0.2)  # around the spike
        assert lo < spike_at < hi
        assert float(chart.get_attribute("data-ymax")) == 100.0
        lo, hi = zoom(0.45, 0.55)  # the middle tenth of that: still around it
        assert lo < spike_at < hi and hi - lo < n / 20
        assert float(chart.get_attribute("data-ymax")) == 100.0
        lo, hi = zoom(0.0, 0.2)  # beside it
        assert hi < spike_at
        assert float(chart.get_attribute("data-ymax")) < 2.0
        chart.locator(".u-over").dblclick()  # back to everything
        p.page.wait_for_function("(el) => el.dataset.range == 'all'", arg=chart.element_handle(), timeout=10_000)
        assert float(chart.get_attribute("data-ymax")) == 100.0
        p.shot("spike")
        p.check_clean()
    finally:
        p.close()
        server.stop()
