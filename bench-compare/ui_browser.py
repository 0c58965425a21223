"""Time to first drawn chart (and to a ready page) in headless Chromium, for `runstore ui`.

Called by `cargo run --release --example ui_bench -- --browser` with the runstore binary, the
two stores the bench wrote (20 runs x 1,000,000 steps; a 100,000-run project) and the series'
table urls. Reads the page's own performance marks (`runstore:ready`, `runstore:first-chart`,
set by assets/app.js), in ms from navigation start, median of 5 fresh page loads. Needs the pip
package playwright and Debian's chromium (/usr/bin/chromium); playwright's own browser download
is never used.
"""

import statistics
import subprocess
import sys
from urllib.parse import urlencode

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def serve(binary, store):
    child = subprocess.Popen([binary, "ui", store, "--port", "0"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    return child, child.stdout.readline().strip()


def marks(browser, url, chart):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    if chart:
        page.wait_for_function(
            "() => performance.getEntriesByName('runstore:first-chart').length > 0",
            timeout=60_000)
    got = page.evaluate("""() => Object.fromEntries(
        ['runstore:ready', 'runstore:first-chart'].map(n =>
            [n, (performance.getEntriesByName(n)[0] || {}).startTime ?? null]))""")
    page.close()
    return got


def main():
    binary, series_store, runs_store, *tables = sys.argv[1:]
    runs = ["/".join(t.split("/")[:3]) for t in tables]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for store, path, query, chart in [
            (series_store, "compare", {"run": runs, "stream": "train", "y": "loss"}, True),
            (series_store, "run", {"url": runs[0]}, True),
            (runs_store, "project", {"name": "big"}, False),
            (runs_store, "project", {"name": "big", "order_by": "outputs.acc DESC"}, False),
        ]:
            child, base = serve(binary, store)
            try:
                url = base + path + "?" + urlencode(query, doseq=True)
                samples = [marks(browser, url, chart) for _ in range(5)]
            finally:
                child.kill()
            ready = statistics.median(s["runstore:ready"] for s in samples)
            line = f"browser {path} {query.get('order_by', '')} ({len(runs)} runs)" if path == "compare" \
                else f"browser {path} {query.get('order_by', '')}"
            if chart:
                first = statistics.median(s["runstore:first-chart"] for s in samples)
                print(f"{line.strip()}: first chart drawn {first:.0f} ms, page ready {ready:.0f} ms")
            else:
                print(f"{line.strip()}: page ready {ready:.0f} ms")
        browser.close()


if __name__ == "__main__":
    main()
