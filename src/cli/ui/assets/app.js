// runstore ui: the browser side of the read-only viewer (issue 17).
//
// One shell page (index.html) for every view; this script reads location.pathname and
// location.search, fetches the JSON API and builds the page. Every string from the store goes
// into the DOM as text (textContent, text nodes, setAttribute), never as HTML.
"use strict";
(() => {
  const PAGE = 50; // runs per page, rows per page
  const MAX_COMPARE = 50;
  const LIVE_MS = 2000;
  const LIVE_STATUSES = new Set(["RUNNING", "COLLECTING", "POST_PROCESSING"]);
  const app = document.getElementById("app");
  const charts = new Set(); // uPlot instances, resized with the window

  // ---------------------------------------------------------------------------------------
  // DOM and URL helpers

  /** Creates an element; attrs are set as attributes/properties, kids appended as text or nodes. */
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
        else if (k === "checked" || k === "selected" || k === "value") e[k] = v;
        else e.setAttribute(k, v === true ? "" : String(v));
      }
    }
    return add(e, kids);
  }
  function add(e, kids) {
    for (const k of Array.isArray(kids) ? kids.flat(Infinity) : [kids]) {
      if (k == null || k === false) continue;
      e.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }
  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
    return e;
  }
  /** A same-origin href: path plus query parameters (arrays repeat the key; empty values skipped). */
  function link(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v == null || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else q.append(k, String(v));
    }
    const s = q.toString();
    return s ? `${path}?${s}` : path;
  }
  function section(title, ...kids) {
    return h("section", { class: "card" }, h("h2", null, title), ...kids);
  }
  function crumbs(items) {
    const nav = clear(document.getElementById("crumbs"));
    for (const [text, href] of items) {
      nav.appendChild(h("span", { class: "sep" }, "/"));
      nav.appendChild(href ? h("a", { href }, text) : h("span", { class: "here" }, text));
    }
    document.title = items.length ? `${items[items.length - 1][0]} · runstore` : "runstore";
  }
  function errorBox(msg) {
    return h("div", { class: "error", role: "alert" }, msg);
  }
  function setLive(on) {
    document.getElementById("live").classList.toggle("hidden", !on);
  }

  // ---------------------------------------------------------------------------------------
  // The API

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }
  async function api(path, params) {
    const r = await fetch(link(path, params), { headers: { Accept: "application/json" } });
    let body;
    try {
      body = await r.json();
    } catch (e) {
      throw new ApiError(`${path}: HTTP ${r.status}, not JSON`, r.status);
    }
    if (!r.ok) throw new ApiError(body && body.error ? String(body.error) : `HTTP ${r.status}`, r.status);
    return body;
  }

  // ---------------------------------------------------------------------------------------
  // Values

  /** A number from a JSON value (NaN and infinities arrive as strings), else null. */
  function num(v) {
    if (typeof v === "number") return v;
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    return null;
  }
  /** A finite number for a chart, else null (a gap). */
  function fin(v) {
    const x = num(v);
    return x != null && Number.isFinite(x) ? x : null;
  }
  function fmtNum(x) {
    if (Number.isInteger(x) || !Number.isFinite(x)) return String(x);
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e7)) return x.toExponential(3);
    return String(+x.toPrecision(5));
  }
  function fmtList(a, n = 4) {
    const parts = a.slice(0, n).map(fmt);
    return `[${parts.join(", ")}${a.length > n ? `, … ${a.length} items` : ""}]`;
  }
  /** A value as short text. */
  function fmt(v) {
    if (v == null) return "";
    if (typeof v === "number") return fmtNum(v);
    if (typeof v === "string" || typeof v === "boolean") return String(v);
    if (Array.isArray(v)) return fmtList(v);
    return JSON.stringify(v);
  }
  function parseTime(s) {
    return typeof s === "string" ? Date.parse(s.replace(/(\.\d{3})\d+/, "$1")) : NaN;
  }
  function fmtTime(s) {
    return typeof s === "string" ? s.replace("T", " ").replace(/\.\d+/, "").replace(/Z$/, "") : "";
  }
  function fmtDuration(ms) {
    if (!Number.isFinite(ms) || ms < 0) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
    const hr = Math.floor(m / 60);
    if (hr < 48) return `${hr}h ${m % 60}m`;
    return `${Math.floor(hr / 24)}d ${hr % 24}h`;
  }
  function fmtBytes(n) {
    if (typeof n !== "number") return "";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
  }
  /** A key segment of the filter language, quoted with backticks unless a plain identifier. */
  function seg(k) {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? k : `\`${k}\``;
  }
  /** Flattens nested objects to dotted keys (lists and empty objects stay leaves). */
  function flatten(obj, prefix = "", out = {}) {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? `${prefix}.${seg(k)}` : seg(k);
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) flatten(v, key, out);
      else out[key] = v;
    }
    return out;
  }
  /** Keys of output objects in first-seen order. */
  function outputKeys(outputs) {
    const keys = new Set();
    for (const o of outputs || []) for (const k of Object.keys(o)) keys.add(k);
    return [...keys];
  }
  /** Latest value of an output key, with min/max and count of its numeric values. */
  function outputStat(outputs, key) {
    let last, min = Infinity, max = -Infinity, n = 0, seen = false;
    for (const o of outputs || []) {
      if (!(key in o)) continue;
      last = o[key];
      seen = true;
      const x = fin(o[key]);
      if (x != null) {
        n++;
        if (x < min) min = x;
        if (x > max) max = x;
      }
    }
    return { seen, last, min, max, n };
  }
  function statusBadge(run) {
    const st = String(run.status || "");
    const cls = st.toLowerCase().replace(/[^a-z_]/g, "");
    return h("span", { class: "status" },
      h("span", { class: `badge st-${cls}`, title: `status code ${run.status_code}` }, st),
      run.stale ? h("span", { class: "badge st-stale", title: "its writer process is gone" }, "stale") : null);
  }
  function isLive(run) {
    return LIVE_STATUSES.has(run.status) && !run.stale;
  }
  function runLink(run) {
    return h("a", { href: link("/run", { url: run.url }) }, run.name);
  }
  const isNumericType = (t) => /^(Int|UInt|Float)\d+$|^Decimal/.test(t || "");
  const isListType = (t) => /^(FixedSizeList|List|LargeList)\b/.test(t || "");
  function listWidth(t) {
    const m = /^FixedSizeList\((\d+)/.exec(t || "");
    return m ? +m[1] : null;
  }
  const isReduced = (c) => /_(umap|pca)$/.test(c.name) && isListType(c.type) && [2, 3, null].includes(listWidth(c.type));
  /** Whether a table looks like a step series (a `step` column, or a streaming writer's table). */
  function isStepSeries(meta) {
    return meta.columns.some((c) => c.name === "step") || /\/steps_\d+$/.test(meta.url || "");
  }
  function stepX(meta) {
    const c = meta.columns.find((c) => c.name === "step" && isNumericType(c.type));
    return c ? c.name : null;
  }
  function seriesColumns(meta) {
    const x = stepX(meta);
    return meta.columns.filter((c) => isNumericType(c.type) && c.name !== x && c.role !== "example_id");
  }

  // ---------------------------------------------------------------------------------------
  // Charts (uPlot)

  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];
  function colorOf(i, a = 1) {
    if (i < PALETTE.length) {
      const c = PALETTE[i];
      const [r, g, b] = [1, 3, 5].map((j) => parseInt(c.slice(j, j + 2), 16));
      return `rgba(${r},${g},${b},${a})`;
    }
    return `hsla(${Math.round((i * 137.508) % 360)},65%,42%,${a})`;
  }
  function widthOf(el) {
    return Math.max(280, Math.floor(el.clientWidth || 600));
  }
  /** Keeps a chart for resizing; the first chart with data drawn marks "runstore:first-chart"
   * (performance.getEntriesByName, for measuring time to first chart). */
  function keep(u) {
    charts.add(u);
    const mark = () => {
      if (!performance.getEntriesByName("runstore:first-chart").length && u.data && u.data[0] && u.data[0].length) {
        performance.mark("runstore:first-chart");
      }
    };
    u.hooks.draw = [...(u.hooks.draw || []), mark];
    mark();
    return u;
  }
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const u of charts) {
        if (!u.root.isConnected) {
          charts.delete(u);
          continue;
        }
        u.setSize({ width: widthOf(u.root.parentElement), height: u.height });
      }
    }, 150);
  });
  /** Sorts aligned columns by the first (uPlot needs ascending x), dropping rows without x. */
  function sortByX(cols) {
    const idx = [];
    for (let i = 0; i < cols[0].length; i++) if (cols[0][i] != null) idx.push(i);
    let sorted = true;
    for (let i = 1; i < idx.length; i++) if (cols[0][idx[i]] < cols[0][idx[i - 1]]) { sorted = false; break; }
    if (!sorted) idx.sort((a, b) => cols[0][a] - cols[0][b]);
    if (sorted && idx.length === cols[0].length) return cols;
    return cols.map((c) => idx.map((i) => c[i]));
  }
  /** A simple line chart of (x, y) pairs. */
  function lineChart(box, { title, xLabel, xs, series, height = 220 }) {
    const many = xs.length < 80;
    const opts = {
      title, width: widthOf(box), height,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [{ label: xLabel }, ...series.map((s, i) => ({
        label: s.label, stroke: colorOf(s.color ?? i), width: 1.5, spanGaps: true,
        points: { show: many, size: 4 },
      }))],
    };
    return keep(new uPlot(opts, sortByX([xs, ...series.map((s) => s.ys)]), box));
  }

  /**
   * Charts of downsampled step series: per line, the min/max envelope of each bucket as a band
   * plus the bucket's last value; select-to-zoom refetches the range from the server (so every
   * spike stays visible at every zoom), double-click goes back to the whole series.
   * lines: [{label, table, y, x, xInt, color}].
   */
  function envelopeChart(box, { title, xLabel, lines, height = 240, legend = true }) {
    const state = { from: null, to: null, u: null, seq: 0 };
    const note = h("div", { class: "chart-note muted" });
    const holder = h("div", { class: "chart" });
    add(box, [holder, note]);
    async function fetchAll() {
      const buckets = Math.min(2000, Math.max(100, widthOf(holder)));
      const got = await Promise.all(lines.map(async (l) => {
        const params = { table: l.table, y: l.y, x: l.x, buckets };
        if (state.from != null) {
          params.from = l.xInt ? Math.floor(state.from) : state.from;
          params.to = l.xInt ? Math.ceil(state.to) : state.to;
        }
        try {
          const s = await api("/api/series", params);
          const xs = s.x.map(fin);
          return sortByX([xs, s.min.map(fin), s.max.map(fin), s.last.map(fin)]);
        } catch (e) {
          return { error: e.message };
        }
      }));
      return got;
    }
    function build(data) {
      const series = [{ label: xLabel }];
      const bands = [];
      lines.forEach((l, i) => {
        const c = l.color ?? i;
        const base = series.length;
        series.push({ label: lines.length > 1 ? `${l.label} min` : "min", stroke: colorOf(c, 0.35), width: 1, points: { show: false } });
        series.push({ label: lines.length > 1 ? `${l.label} max` : "max", stroke: colorOf(c, 0.35), width: 1, points: { show: false } });
        series.push({ label: lines.length > 1 ? l.label : "last", stroke: colorOf(c), width: 1.5, points: { show: false } });
        bands.push({ series: [base + 1, base], fill: colorOf(c, lines.length > 1 ? 0.1 : 0.18) });
      });
      const opts = {
        title, width: widthOf(holder), height,
        scales: { x: { time: false } },
        axes: [{ label: xLabel }, {}],
        series, bands,
        legend: { show: legend },
        cursor: { drag: { x: true, y: false, setScale: false } },
        hooks: {
          setSelect: [(u) => {
            if (u.select.width < 3) return;
            const a = u.posToVal(u.select.left, "x");
            const b = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            state.from = a;
            state.to = b;
            refresh();
          }],
        },
      };
      state.u = keep(new uPlot(opts, data, holder));
      state.u.over.addEventListener("dblclick", () => {
        if (state.from == null) return;
        state.from = state.to = null;
        refresh();
      });
    }
    async function refresh() {
      const seq = ++state.seq;
      const got = await fetchAll();
      if (seq !== state.seq) return; // a newer refresh won
      const errors = got.filter((g) => g.error).map((g) => g.error);
      const ok = got.map((g) => (g.error ? [[], [], [], []] : g));
      const data = ok.length === 1 ? ok[0] : uPlot.join(ok);
      if (!state.u) build(data);
      else state.u.setData(data, true);
      const n = data[0].length;
      // The extremes drawn (every bucket's min and max), for tests and scripts.
      let lo = Infinity, hi = -Infinity;
      for (let i = 1; i < data.length; i++) {
        if (i % 3 === 0) continue; // last lines lie within the envelope
        for (const v of data[i]) if (v != null) { if (v < lo) lo = v; if (v > hi) hi = v; }
      }
      holder.dataset.ymin = lo;
      holder.dataset.ymax = hi;
      holder.dataset.buckets = n;
      holder.dataset.range = state.from == null ? "all" : `${state.from}..${state.to}`;
      note.textContent = `${n} buckets (min/max band, last line)` +
        (state.from != null ? ` · zoomed to ${fmtNum(+state.from.toPrecision(6))} – ${fmtNum(+state.to.toPrecision(6))}, double-click to reset` : " · drag to zoom") +
        (errors.length ? ` · ${errors.join("; ")}` : "");
    }
    return { refresh, state };
  }

  /** A whole column of an input table, in pages of the row API (cached per page load). */
  const inputColumns = new Map();
  function inputColumn(tableUrl, col) {
    const key = `${tableUrl}\u0000${col}`;
    if (!inputColumns.has(key)) {
      inputColumns.set(key, (async () => {
        const out = [];
        for (let offset = 0; offset < 1_000_000; offset += 1000) {
          const got = await api("/api/rows", { table: tableUrl, columns: col, offset, limit: 1000 });
          for (const r of got.rows) out.push(r[0]);
          if (got.rows.length < 1000) break;
        }
        return out;
      })());
    }
    return inputColumns.get(key);
  }

  /** A canvas scatter of a reduced embedding column, coloured by a chosen column. */
  function scatterPlot(box, { table, column, colorColumns, defaultColor, input }) {
    // input: {table, idColumn, columns} when the rows join an input table by example id: its
    // columns (label, ...) colour the points too, looked up by each point's example id.
    const ctl = h("select", { "aria-label": "colour by" },
      h("option", { value: "" }, "(none)"),
      colorColumns.map((c) => h("option", { value: c, selected: c === defaultColor }, c)),
      input ? h("optgroup", { label: `input table ${input.table}` },
        input.columns.map((c) => h("option", { value: `\u0000${c}`, selected: `\u0000${c}` === defaultColor }, `${c} (input)`))) : null);
    const canvas = h("canvas", { class: "scatter" });
    const tip = h("div", { class: "tip hidden" });
    const legend = h("div", { class: "legend-cats" });
    const note = h("div", { class: "muted chart-note" });
    add(box, [h("label", { class: "ctl" }, "colour by ", ctl), h("div", { class: "scatter-wrap" }, canvas, tip), legend, note]);
    let pts = null, px = null, py = null;
    const rowCache = new Map();
    async function load() {
      const color = ctl.value;
      clear(legend);
      try {
        if (input && color.startsWith("\u0000")) {
          pts = await api("/api/points", { table, column, color: input.idColumn, limit: 20000 });
          const values = await inputColumn(input.table, color.slice(1));
          pts.color = pts.color.map((id) => (typeof id === "number" && id >= 0 && id < values.length ? values[id] : null));
        } else {
          pts = await api("/api/points", { table, column, color: color || null, limit: 20000 });
        }
      } catch (e) {
        note.textContent = e.message;
        return;
      }
      note.textContent = `${pts.x.length} of ${pts.total} points · hover for a row's values`;
      draw();
    }
    function colorScale(vals) {
      const present = vals.filter((v) => v != null);
      if (!present.length) return { fn: () => colorOf(0, 0.7), cats: null };
      const numeric = present.every((v) => num(v) != null);
      const distinct = [...new Set(present.map(String))];
      if (distinct.length <= 20 && (!numeric || present.every((v) => Number.isInteger(v)))) {
        distinct.sort((a, b) => (numeric ? a - b : a < b ? -1 : 1));
        const idx = new Map(distinct.map((d, i) => [d, i]));
        return { fn: (v) => (v == null ? "rgba(128,128,128,0.5)" : colorOf(idx.get(String(v)), 0.75)), cats: distinct };
      }
      if (numeric) {
        const xs = present.map(num).filter(Number.isFinite);
        const lo = Math.min(...xs), hi = Math.max(...xs);
        const fn = (v) => {
          const x = fin(v);
          if (x == null) return "rgba(128,128,128,0.5)";
          const t = hi > lo ? (x - lo) / (hi - lo) : 0.5;
          return `hsla(${Math.round(250 - 200 * t)},80%,${Math.round(35 + 20 * t)}%,0.75)`;
        };
        return { fn, cats: null, lo, hi };
      }
      return { fn: () => colorOf(0, 0.7), cats: null };
    }
    function draw() {
      const w = widthOf(box), hgt = Math.min(520, Math.round(w * 0.6));
      const dpr = window.devicePixelRatio || 1;
      canvas.width = w * dpr;
      canvas.height = hgt * dpr;
      canvas.style.width = `${w}px`;
      canvas.style.height = `${hgt}px`;
      const ctx = canvas.getContext("2d");
      ctx.scale(dpr, dpr);
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, w, hgt);
      const xs = pts.x.map(fin), ys = pts.y.map(fin);
      const fx = xs.filter((v) => v != null), fy = ys.filter((v) => v != null);
      if (!fx.length) return;
      const pad = 12;
      const [x0, x1] = [Math.min(...fx), Math.max(...fx)];
      const [y0, y1] = [Math.min(...fy), Math.max(...fy)];
      const sx = (w - 2 * pad) / (x1 - x0 || 1), sy = (hgt - 2 * pad) / (y1 - y0 || 1);
      px = xs.map((v) => (v == null ? null : pad + (v - x0) * sx));
      py = ys.map((v) => (v == null ? null : hgt - pad - (v - y0) * sy));
      const scale = colorScale(pts.color || []);
      for (let i = 0; i < px.length; i++) {
        if (px[i] == null || py[i] == null) continue;
        ctx.fillStyle = scale.fn(pts.color ? pts.color[i] : null);
        ctx.fillRect(px[i] - 1.5, py[i] - 1.5, 3, 3);
      }
      clear(legend);
      if (scale.cats) {
        scale.cats.forEach((c, i) => add(legend, h("span", { class: "cat" }, swatch(colorOf(i)), c)));
      } else if (scale.lo != null) {
        add(legend, h("span", { class: "cat" }, swatch(scale.fn(scale.lo)), fmt(scale.lo), " … ", swatch(scale.fn(scale.hi)), fmt(scale.hi)));
      }
    }
    function nearest(mx, my) {
      let best = -1, bd = 64;
      for (let i = 0; i < px.length; i++) {
        if (px[i] == null || py[i] == null) continue;
        const d = (px[i] - mx) ** 2 + (py[i] - my) ** 2;
        if (d < bd) {
          bd = d;
          best = i;
        }
      }
      return best;
    }
    let hoverSeq = 0;
    canvas.addEventListener("mousemove", async (ev) => {
      if (!px) return;
      const r = canvas.getBoundingClientRect();
      const i = nearest(ev.clientX - r.left, ev.clientY - r.top);
      if (i < 0) {
        tip.classList.add("hidden");
        return;
      }
      const row = pts.row ? pts.row[i] : i;
      tip.style.left = `${Math.min(px[i] + 12, canvas.clientWidth - 220)}px`;
      tip.style.top = `${py[i] + 12}px`;
      tip.classList.remove("hidden");
      const seq = ++hoverSeq;
      let vals = rowCache.get(row);
      if (!vals) {
        clear(tip).appendChild(h("div", null, `row ${row}`));
        try {
          const got = await api("/api/rows", { table, offset: row, limit: 1 });
          vals = (got.rows[0] || []).map((v, j) => [got.columns[j], v]);
          const id = input ? vals.find(([c]) => c === input.idColumn) : null;
          if (id && typeof id[1] === "number") {
            const more = await api("/api/rows", { table: input.table, offset: id[1], limit: 1 });
            more.columns.forEach((c, j) => { if (input.columns.includes(c)) vals.push([`${c} (input)`, (more.rows[0] || [])[j]]); });
          }
          rowCache.set(row, vals);
        } catch (e) {
          vals = null;
          if (seq === hoverSeq) add(tip, h("div", { class: "err" }, e.message));
          return;
        }
      }
      if (seq !== hoverSeq) return;
      clear(tip).appendChild(h("div", { class: "tip-head" }, `row ${row}`));
      vals.forEach(([c, v]) => add(tip, h("div", null, h("b", null, `${c}: `), fmt(v))));
    });
    canvas.addEventListener("mouseleave", () => tip.classList.add("hidden"));
    ctl.addEventListener("change", load);
    return load();
  }
  function swatch(color) {
    const s = h("span", { class: "swatch" });
    s.style.background = color;
    return s;
  }

  // ---------------------------------------------------------------------------------------
  // A filter box: checks the expression with the API first (a bad one shows the server's
  // error inline and the page stays), then navigates to the URL carrying it.

  function filterForm({ label, value, placeholder, check, go, clearHref }) {
    const input = h("input", { type: "text", class: "filter-input", value, placeholder, "aria-label": label, spellcheck: "false", autocomplete: "off" });
    const err = h("div", { class: "error inline hidden", role: "alert" });
    const form = h("form", { class: "filterbar", role: "search" },
      h("label", null, label, " "), input, h("button", { type: "submit" }, "Apply"),
      clearHref ? h("a", { href: clearHref, class: "clear" }, "clear") : null);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = input.value.trim();
      err.classList.add("hidden");
      try {
        if (f) await check(f);
        location.assign(go(f));
      } catch (e) {
        err.textContent = e.message;
        err.classList.remove("hidden");
      }
    });
    return { form, err, show(msg) { err.textContent = msg; err.classList.remove("hidden"); } };
  }
  function pager(offset, shown, total, noun, hrefAt) {
    const a = total ? offset + 1 : 0, b = offset + shown;
    return h("div", { class: "pager" },
      offset > 0 ? h("a", { href: hrefAt(Math.max(0, offset - PAGE)), class: "prev" }, "‹ prev") : h("span", { class: "muted" }, "‹ prev"),
      h("span", { class: "range" }, `${noun} ${a}–${b} of ${total}`),
      b < total ? h("a", { href: hrefAt(offset + PAGE), class: "next" }, "next ›") : h("span", { class: "muted" }, "next ›"));
  }
  function parseOrder(o) {
    const m = /^\s*(.+?)(\s+(ASC|DESC))?\s*$/i.exec(o || "");
    return m ? { key: m[1], desc: !!m[3] && m[3].toUpperCase() === "DESC" } : { key: "", desc: false };
  }
  function sortHeader(text, key, order, hrefFor, title) {
    if (!key) return h("th", { title }, text);
    const active = order.key === key;
    const next = active && !order.desc ? `${key} DESC` : key;
    return h("th", { class: active ? "sorted" : null, title: title || `sort by ${key}` },
      h("a", { href: hrefFor(next) }, text, active ? (order.desc ? " ▼" : " ▲") : ""));
  }

  // ---------------------------------------------------------------------------------------
  // Pages

  async function pageProjects() {
    crumbs([]);
    document.title = "Projects · runstore";
    const projects = await api("/api/projects");
    const body = projects.length
      ? h("table", { class: "grid", id: "projects" },
        h("thead", null, h("tr", null, h("th", null, "project"), h("th", { class: "num" }, "runs"))),
        h("tbody", null, projects.map((p) => h("tr", null,
          h("td", null, h("a", { href: link("/project", { name: p.name }) }, p.name)),
          h("td", { class: "num" }, fmt(p.run_count ?? p.runs))))))
      : h("p", { class: "muted" }, "This store has no projects yet.");
    clear(app).appendChild(section("Projects", body));
  }

  async function pageProject(q) {
    const name = q.get("name") || "";
    const filter = q.get("filter") || "";
    const orderBy = q.get("order_by") || "";
    const offset = Math.max(0, parseInt(q.get("offset") || "0", 10) || 0);
    crumbs([["Projects", "/"], [name, null]]);
    const here = (over) => link("/project", { name, filter, order_by: orderBy, offset, ...over });
    let res, badFilter = null;
    try {
      res = await api("/api/runs", { project: name, filter, order_by: orderBy, limit: PAGE, offset });
    } catch (e) {
      if (e.status !== 400 || !(filter || orderBy)) throw e;
      badFilter = e.message;
      res = await api("/api/runs", { project: name, limit: PAGE, offset });
    }
    const runs = res.runs;
    const paramKeys = [], outKeys = [];
    const seenP = new Set(), seenO = new Set();
    const flat = runs.map((r) => flatten(r.params));
    for (const f of flat) for (const k of Object.keys(f)) if (!seenP.has(k)) { seenP.add(k); paramKeys.push(k); }
    for (const r of runs) for (const k of outputKeys(r.outputs)) if (!seenO.has(k)) { seenO.add(k); outKeys.push(k); }
    const order = parseOrder(badFilter ? "" : orderBy);
    const sortHref = (o) => here({ order_by: o, offset: 0 });

    const ff = filterForm({
      label: "filter", value: filter, placeholder: "params.lr < 0.01 AND outputs.acc > 0.5",
      check: (f) => api("/api/runs", { project: name, filter: f, limit: 1 }),
      go: (f) => link("/project", { name, filter: f, order_by: orderBy }),
      clearHref: filter ? link("/project", { name, order_by: orderBy }) : null,
    });
    if (badFilter) ff.show(badFilter);

    const compare = h("a", { class: "button disabled", id: "compare", "aria-disabled": "true" }, "Compare (0)");
    const boxes = [];
    const updateCompare = () => {
      const sel = boxes.filter((b) => b.checked).map((b) => b.value);
      compare.textContent = `Compare (${sel.length})`;
      if (sel.length) {
        compare.setAttribute("href", link("/compare", { run: sel.slice(0, MAX_COMPARE) }));
        compare.classList.remove("disabled");
        compare.removeAttribute("aria-disabled");
      } else {
        compare.removeAttribute("href");
        compare.classList.add("disabled");
        compare.setAttribute("aria-disabled", "true");
      }
    };
    const all = h("input", { type: "checkbox", "aria-label": "select all runs on this page" });
    all.addEventListener("change", () => {
      boxes.forEach((b) => (b.checked = all.checked));
      updateCompare();
    });

    const head = h("tr", null,
      h("th", { class: "sel" }, all),
      sortHeader("name", "name", order, sortHref),
      sortHeader("status", "status", order, sortHref),
      sortHeader("created", "created", order, sortHref, "created (UTC); click to sort"),
      sortHeader("duration", null, order, sortHref, "last modified − created"),
      sortHeader("description", "description", order, sortHref),
      outKeys.map((k) => sortHeader(k, `outputs.${seg(k)}`, order, sortHref, `output outputs.${seg(k)} (latest value; min/max on hover)`)),
      paramKeys.map((k) => sortHeader(k, `params.${k}`, order, sortHref, `parameter params.${k}`)));
    head.querySelectorAll("th").forEach((th, i) => {
      if (i > 5 && i <= 5 + outKeys.length) th.classList.add("output", "num");
      if (i > 5 + outKeys.length) th.classList.add("param", "num");
    });
    const groups = h("tr", { class: "groups" }, h("th", { colspan: 6 }),
      outKeys.length ? h("th", { colspan: outKeys.length, class: "output" }, "outputs (latest)") : null,
      paramKeys.length ? h("th", { colspan: paramKeys.length, class: "param" }, "parameters") : null);
    const rows = runs.map((r, i) => {
      const box = h("input", { type: "checkbox", value: r.url, "aria-label": `select ${r.name}` });
      box.addEventListener("change", updateCompare);
      boxes.push(box);
      return h("tr", null,
        h("td", { class: "sel" }, box),
        h("td", { class: "name" }, runLink(r)),
        h("td", null, statusBadge(r)),
        h("td", { class: "time", title: r.created }, fmtTime(r.created)),
        h("td", { class: "num", title: `last modified ${r.last_modified}` }, fmtDuration(parseTime(r.last_modified) - parseTime(r.created))),
        h("td", { class: "desc", title: r.description || "" }, r.description || ""),
        outKeys.map((k) => {
          const s = outputStat(r.outputs, k);
          if (!s.seen) return h("td", { class: "num output" });
          const title = s.n ? `latest ${fmt(s.last)} · min ${fmt(s.min)} · max ${fmt(s.max)} · ${s.n} values` : `latest ${fmt(s.last)}`;
          return h("td", { class: "num output", title }, fmt(s.last));
        }),
        paramKeys.map((k) => h("td", { class: "num param" }, fmt(flat[i][k]))));
    });
    const table = runs.length
      ? h("div", { class: "scroll" }, h("table", { class: "grid runs", id: "runs" }, h("thead", null, groups, head), h("tbody", null, rows)))
      : h("p", { class: "muted empty" }, filter && !badFilter ? "No run matches this filter." : "No runs.");
    clear(app).appendChild(section(`Project ${name}`,
      ff.form, ff.err,
      h("div", { class: "toolbar" }, pager(offset, runs.length, res.total, "runs", (o) => here({ offset: o })), compare),
      table));
  }

  async function pageRun(q) {
    const url = q.get("url") || "";
    let run = await api("/api/run", { url });
    crumbs([["Projects", "/"], [run.project, link("/project", { name: run.project })], [run.name, null]]);

    const attrs = h("div");
    const renderAttrs = (r) => {
      const rows = [
        ["project", h("a", { href: link("/project", { name: r.project }) }, r.project)],
        ["name", r.name],
        ["url", r.url],
        ["status", statusBadge(r)],
        ["created", r.created],
        ["last modified", r.last_modified],
        ["duration", fmtDuration(parseTime(r.last_modified) - parseTime(r.created))],
        ["description", r.description || ""],
      ];
      clear(attrs).appendChild(h("table", { class: "kv", id: "attributes" },
        h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", { class: k === "description" ? "pre" : null }, v))))));
    };
    renderAttrs(run);

    const params = Object.keys(run.params || {}).length
      ? h("div", { class: "tree", id: "params" }, paramTree(run.params))
      : h("p", { class: "muted" }, "No parameters.");

    const inputs = h("div", null,
      h("h3", null, "Input tables"),
      (run.input_tables || []).length
        ? h("ul", { class: "plain" }, run.input_tables.map((t) => h("li", null, h("a", { href: link("/table", { url: t }) }, t))))
        : h("p", { class: "muted" }, "None."),
      h("h3", null, "Input values"),
      (run.input_values || []).length
        ? h("ul", { class: "plain" }, run.input_values.map((v) => h("li", null, h("code", null, JSON.stringify(v)))))
        : h("p", { class: "muted" }, "None."));

    const outBox = h("div", { id: "outputs" });
    const out = outputsView(outBox, run, q.get("x") || "");

    const metricsBox = h("div", { id: "metrics" });
    const metrics = await metricsView(metricsBox, run);

    const bulk = (run.bulk || []).length
      ? h("table", { class: "grid", id: "bulk" },
        h("thead", null, h("tr", null, h("th", null, "name"), h("th", { class: "num" }, "size"), h("th", null, ""))),
        h("tbody", null, run.bulk.map((b) => h("tr", null,
          h("td", null, b.name),
          h("td", { class: "num", title: `${b.bytes} bytes` }, fmtBytes(b.bytes)),
          h("td", null, h("a", { href: link("/api/bulk", { url: run.url, name: b.name }), download: b.name.split("/").pop() }, "download"))))))
      : h("p", { class: "muted" }, "No blobs.");

    clear(app).append(
      section(`Run ${run.name}`, attrs),
      section("Parameters", params),
      section("Inputs", inputs),
      section("Output values", outBox),
      section("Metrics tables", metricsBox),
      section("Bulk data", bulk));
    out.draw();
    metrics.draw();

    // Live: poll while the run is being written by a process that is alive.
    if (isLive(run)) {
      setLive(true);
      let busy = false;
      const timer = setInterval(async () => {
        if (busy) return;
        busy = true;
        try {
          const r = await api("/api/run", { url });
          run = r;
          renderAttrs(r);
          out.update(r);
          await metrics.update(r);
          if (!isLive(r)) {
            clearInterval(timer);
            setLive(false);
          }
        } catch (e) {
          console.warn("live update failed:", e.message);
        } finally {
          busy = false;
        }
      }, LIVE_MS);
    }
  }

  function paramTree(obj, depth = 0) {
    const ul = h("ul", null);
    for (const [k, v] of Object.entries(obj)) {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        ul.appendChild(h("li", null, h("details", { open: depth < 2 }, h("summary", null, h("span", { class: "key" }, k)), paramTree(v, depth + 1))));
      } else {
        ul.appendChild(h("li", null, h("span", { class: "key" }, k), ": ",
          h("span", { class: `val ${typeof v}` }, typeof v === "string" ? v : JSON.stringify(v))));
      }
    }
    return ul;
  }

  /** The output values of a run: a table and one chart per numeric key against a chosen x. */
  function outputsView(box, run, xWanted) {
    const self = { run, x: xWanted, charts: [], keysSig: "" };
    const numericKeys = (outputs) => outputKeys(outputs).filter((k) => outputs.some((o) => fin(o[k]) != null));
    function render() {
      const outputs = self.run.outputs || [];
      clear(box);
      self.charts = [];
      if (!outputs.length) {
        box.appendChild(h("p", { class: "muted" }, "No output values."));
        return;
      }
      const keys = outputKeys(outputs);
      const nkeys = numericKeys(outputs);
      self.keysSig = nkeys.join("\u0000");
      if (self.x && !nkeys.includes(self.x)) self.x = "";
      const shown = outputs.length > 200 ? outputs.slice(-200) : outputs;
      const first = outputs.length - shown.length;
      const table = h("div", { class: "scroll short" }, h("table", { class: "grid", id: "outputs-table" },
        h("thead", null, h("tr", null, h("th", { class: "num" }, "#"), keys.map((k) => h("th", { class: "num" }, k)))),
        h("tbody", null, shown.map((o, i) => h("tr", null, h("td", { class: "num muted" }, String(first + i)),
          keys.map((k) => h("td", { class: "num" }, k in o ? fmt(o[k]) : "")))))));
      const sel = h("select", { "aria-label": "x axis", id: "output-x" },
        h("option", { value: "", selected: !self.x }, "output index"),
        nkeys.map((k) => h("option", { value: k, selected: k === self.x }, k)));
      sel.addEventListener("change", () => {
        self.x = sel.value;
        const u = new URL(location.href);
        if (self.x) u.searchParams.set("x", self.x);
        else u.searchParams.delete("x");
        history.replaceState(null, "", u.pathname + u.search);
        render();
        self.draw();
      });
      const grid = h("div", { class: "charts" });
      self.grid = grid;
      add(box, [
        outputs.length > shown.length ? h("p", { class: "muted" }, `the last 200 of ${outputs.length} output values`) : null,
        table,
        nkeys.length ? h("label", { class: "ctl" }, "x: ", sel) : null,
        grid,
      ]);
    }
    function series(outputs) {
      const xs = outputs.map((o, i) => (self.x ? fin(o[self.x]) : i));
      return numericKeys(outputs).filter((k) => k !== self.x).map((k) => ({ key: k, xs, ys: outputs.map((o) => fin(o[k])) }));
    }
    self.draw = () => {
      if (!self.grid) return;
      series(self.run.outputs || []).forEach((s, i) => {
        const cell = h("div", { class: "chart" });
        self.grid.appendChild(cell);
        self.charts.push(lineChart(cell, { title: s.key, xLabel: self.x || "output index", xs: s.xs, series: [{ label: s.key, ys: s.ys, color: i }] }));
      });
    };
    self.update = (r) => {
      const same = numericKeys(r.outputs || []).join("\u0000") === self.keysSig && self.charts.length;
      self.run = r;
      if (!same) {
        render();
        self.draw();
        return;
      }
      // Same keys: refresh the table and feed the charts new data without rebuilding them.
      const charts = self.charts;
      render();
      clear(self.grid);
      series(r.outputs).forEach((s, i) => {
        const u = charts[i];
        if (!u) return;
        self.grid.appendChild(u.root.parentElement);
        u.setData(sortByX([s.xs, s.ys]));
      });
      self.charts = charts;
    };
    render();
    return self;
  }

  /** A run's metrics tables (url, stream, rows, columns) and charts of its step series. */
  async function metricsView(box, run) {
    const self = { sig: "", charts: [] };
    async function render(r) {
      const list = r.metrics || [];
      self.sig = list.map((m) => `${m.url}\u0000${m.row_count}`).join("\u0001");
      const metas = await Promise.all(list.map((m) => api("/api/table", { url: m.url }).catch((e) => ({ error: e.message }))));
      clear(box);
      self.charts = [];
      self.pending = [];
      if (!list.length) {
        box.appendChild(h("p", { class: "muted" }, "No metrics tables."));
        return;
      }
      box.appendChild(h("table", { class: "grid", id: "metrics-tables" },
        h("thead", null, h("tr", null, h("th", null, "table"), h("th", null, "stream"), h("th", { class: "num" }, "rows"), h("th", { class: "num" }, "size"), h("th", null, "columns"))),
        h("tbody", null, list.map((m, i) => h("tr", null,
          h("td", null, h("a", { href: link("/table", { url: m.url }) }, m.url)),
          h("td", null, m.stream_name || ""),
          h("td", { class: "num" }, fmt(m.row_count)),
          h("td", { class: "num" }, fmtBytes(m.file_size)),
          h("td", { class: "cols" }, metas[i].error ? h("span", { class: "err" }, metas[i].error)
            : metas[i].columns.map((c) => h("span", { class: "col", title: c.role ? `role ${c.role}` : null }, h("b", null, c.name), `:${c.type}`))))))));
      list.forEach((m, i) => {
        const meta = metas[i];
        if (meta.error || !isStepSeries({ ...meta, url: meta.url || m.url })) return;
        const x = stepX(meta);
        const xType = x ? meta.columns.find((c) => c.name === x).type : "Int64";
        const cols = seriesColumns(meta);
        if (!cols.length) return;
        const grid = h("div", { class: "charts" });
        box.appendChild(h("h3", null, `${m.stream_name || m.url} `, h("span", { class: "muted" }, `(${m.url})`)));
        box.appendChild(grid);
        cols.forEach((c, j) => {
          const cell = h("div", { class: "chart-box" });
          grid.appendChild(cell);
          self.pending.push(() => {
            const ch = envelopeChart(cell, { title: c.name, xLabel: x || "row", lines: [{ label: c.name, table: m.url, y: c.name, x, xInt: /Int/.test(xType), color: j }] });
            self.charts.push(ch);
            return ch.refresh();
          });
        });
      });
    }
    self.draw = () => Promise.all(self.pending.map((f) => f()));
    self.update = async (r) => {
      const sig = (r.metrics || []).map((m) => `${m.url}\u0000${m.row_count}`).join("\u0001");
      if (sig === self.sig) return;
      const urls = (r.metrics || []).map((m) => m.url).join("\u0001");
      const oldUrls = self.sig.split("\u0001").map((s) => s.split("\u0000")[0]).join("\u0001");
      if (urls === oldUrls && self.charts.length) {
        // Same tables with more rows: refetch the series (at the current zoom), update row counts.
        self.sig = sig;
        const cells = box.querySelectorAll("#metrics-tables tbody tr td:nth-child(3)");
        (r.metrics || []).forEach((m, i) => { if (cells[i]) cells[i].textContent = fmt(m.row_count); });
        await Promise.all(self.charts.map((c) => c.refresh()));
        return;
      }
      await render(r);
      await self.draw();
    };
    await render(run);
    return self;
  }

  async function pageTable(q) {
    const url = q.get("url") || "";
    const where = q.get("where") || "";
    const orderBy = q.get("order_by") || "";
    const offset = Math.max(0, parseInt(q.get("offset") || "0", 10) || 0);
    const meta = await api("/api/table", { url });
    const parts = url.split("/");
    const trail = [["Projects", "/"], [parts[0], link("/project", { name: parts[0] })]];
    if (parts[1] === "runs" && parts.length >= 4) trail.push([parts[2], link("/run", { url: parts.slice(0, 3).join("/") })]);
    trail.push([parts[parts.length - 1], null]);
    crumbs(trail);
    const here = (over) => link("/table", { url, where, order_by: orderBy, offset, ...over });
    let res, bad = null;
    try {
      res = await api("/api/rows", { table: url, where, order_by: orderBy, offset, limit: PAGE });
    } catch (e) {
      if (e.status !== 400 || !(where || orderBy)) throw e;
      bad = e.message;
      res = await api("/api/rows", { table: url, offset, limit: PAGE });
    }
    const order = parseOrder(bad ? "" : orderBy);
    const ff = filterForm({
      label: "where", value: where, placeholder: "loss > 2 AND predicted != 3",
      check: (f) => api("/api/rows", { table: url, where: f, limit: 1 }),
      go: (f) => link("/table", { url, where: f, order_by: orderBy }),
      clearHref: where ? link("/table", { url, order_by: orderBy }) : null,
    });
    if (bad) ff.show(bad);
    const types = new Map(meta.columns.map((c) => [c.name, c.type]));
    const table = h("div", { class: "scroll" }, h("table", { class: "grid rows", id: "rows" },
      h("thead", null, h("tr", null, h("th", { class: "num muted" }, "#"),
        res.columns.map((c) => sortHeader(c, c, order, (o) => here({ order_by: o, offset: 0 }), `${types.get(c) || ""}; click to sort`)))),
      h("tbody", null, res.rows.map((row, i) => h("tr", null, h("td", { class: "num muted" }, String(offset + i)),
        row.map((v, j) => {
          const list = Array.isArray(v);
          return h("td", { class: list ? "list" : typeof v === "number" ? "num" : null, title: list ? `${v.length} values` : null }, fmt(v));
        }))))));
    const info = h("p", { class: "muted" }, `${fmt(meta.row_count)} rows · `,
      meta.columns.map((c, i) => [i ? ", " : "", h("b", null, c.name), `: ${c.type}`, c.role ? ` (${c.role})` : ""]));
    clear(app).append(section(`Table ${url}`, info, ff.form, ff.err,
      h("div", { class: "toolbar" }, pager(offset, res.rows.length, res.total, "rows", (o) => here({ offset: o }))),
      res.rows.length ? table : h("p", { class: "muted empty" }, "No rows.")));

    const later = [];
    const reduced = meta.columns.filter(isReduced);
    if (reduced.length) {
      const colorCols = meta.columns.filter((c) => !isListType(c.type) && c.role !== "foreign_table").map((c) => c.name);
      const input = await inputJoin(meta, res);
      const inputLabel = input && (input.columns.find((c) => c === "label") || input.labelColumn);
      const def = colorCols.find((c) => c === "label") || (inputLabel ? `\u0000${inputLabel}` : null) ||
        ["predicted", "loss"].find((c) => colorCols.includes(c)) ||
        (meta.columns.find((c) => c.role === "label" || c.role === "prediction") || {}).name || colorCols[0];
      for (const c of reduced) {
        const box = h("div", { class: "scatter-box", id: `scatter-${c.name}` });
        app.appendChild(section(`Embedding ${c.name}`, box));
        later.push(() => scatterPlot(box, { table: url, column: c.name, colorColumns: colorCols, defaultColor: def, input }));
      }
    }
    if (isStepSeries({ ...meta, url })) {
      const x = stepX(meta);
      const grid = h("div", { class: "charts" });
      app.appendChild(section("Series", grid));
      seriesColumns(meta).forEach((c, j) => {
        const cell = h("div", { class: "chart-box" });
        grid.appendChild(cell);
        later.push(() => envelopeChart(cell, { title: c.name, xLabel: x || "row", lines: [{ label: c.name, table: url, y: c.name, x, xInt: true, color: j }] }).refresh());
      });
    }
    await Promise.all(later.map((f) => f()));
  }

  /** The input table a per-example table joins by its example id column, with the input's
   * plain columns; null when there is none or it cannot be read. */
  async function inputJoin(meta, res) {
    const id = meta.columns.find((c) => c.role === "example_id");
    const ft = meta.columns.find((c) => c.role === "foreign_table");
    if (!id || !ft) return null;
    let tableUrl = null;
    const j = res.columns.indexOf(ft.name);
    if (j >= 0 && res.rows.length) tableUrl = res.rows[0][j];
    if (typeof tableUrl !== "string") {
      try {
        const one = await api("/api/rows", { table: meta.url, columns: ft.name, limit: 1 });
        tableUrl = one.rows.length ? one.rows[0][0] : null;
      } catch (e) {
        return null;
      }
    }
    if (typeof tableUrl !== "string") return null;
    try {
      const im = await api("/api/table", { url: tableUrl });
      const cols = im.columns.filter((c) => !isListType(c.type) && c.role !== "example_id");
      const label = cols.find((c) => c.role === "label");
      return { table: tableUrl, idColumn: id.name, columns: cols.map((c) => c.name), labelColumn: label ? label.name : null };
    } catch (e) {
      return null;
    }
  }

  async function pageCompare(q) {
    const asked = q.getAll("run");
    const urls = asked.slice(0, MAX_COMPARE);
    crumbs([["Projects", "/"], ["compare", null]]);
    if (!urls.length) {
      clear(app).appendChild(section("Compare", h("p", { class: "muted" }, "No runs selected: tick runs in a project's table and press Compare.")));
      return;
    }
    const got = await Promise.all(urls.map((u) => api("/api/run", { url: u }).catch((e) => ({ url: u, error: e.message }))));
    const runs = got.filter((r) => !r.error);
    const failed = got.filter((r) => r.error);
    if (runs.length && runs.every((r) => r.project === runs[0].project)) {
      crumbs([["Projects", "/"], [runs[0].project, link("/project", { name: runs[0].project })], [`compare ${runs.length} runs`, null]]);
    }
    // What can be overlaid: numeric output keys, and numeric columns of same-named streams.
    const outKeys = [];
    for (const r of runs) for (const k of outputKeys(r.outputs)) if (!outKeys.includes(k) && r.outputs.some((o) => fin(o[k]) != null)) outKeys.push(k);
    const streams = new Map(); // stream name -> first table url of some run
    for (const r of runs) for (const m of r.metrics || []) if (m.stream_name && !streams.has(m.stream_name)) streams.set(m.stream_name, m.url);
    const streamMeta = new Map();
    await Promise.all([...streams].map(async ([s, u]) => {
      try {
        const meta = await api("/api/table", { url: u });
        if (isStepSeries({ ...meta, url: u })) streamMeta.set(s, meta);
      } catch (e) { /* not chartable */ }
    }));
    let key = q.get("key") || "";
    let stream = q.get("stream") || "";
    let y = q.get("y") || "";
    if (!key && !stream) {
      const k = outKeys.find((k) => k !== "epoch" && k !== "step") || outKeys[0];
      if (k) key = `outputs.${k}`;
      else if (streamMeta.size) {
        const [s, meta] = [...streamMeta][0];
        stream = s;
        y = (seriesColumns(meta)[0] || {}).name || "";
      }
    }
    const sel = h("select", { id: "compare-what", "aria-label": "what to compare" },
      outKeys.length ? h("optgroup", { label: "output values" }, outKeys.map((k) => h("option", { value: `key\u0000outputs.${k}`, selected: key === `outputs.${k}` }, `outputs.${k}`))) : null,
      [...streamMeta].map(([s, meta]) => h("optgroup", { label: `stream ${s}` },
        seriesColumns(meta).map((c) => h("option", { value: `stream\u0000${s}\u0000${c.name}`, selected: stream === s && y === c.name }, `${s}: ${c.name}`)))));
    sel.addEventListener("change", () => {
      const [kind, a, b] = sel.value.split("\u0000");
      location.assign(kind === "key" ? link("/compare", { run: urls, key: a }) : link("/compare", { run: urls, stream: a, y: b }));
    });

    const legend = h("div", { class: "legend", id: "compare-legend" }, runs.map((r, i) => h("span", { class: "cat" }, swatch(colorOf(i)), runLink(r))));
    const chartBox = h("div", { class: "chart-box", id: "compare-chart" });
    const title = key || (stream ? `${stream}: ${y}` : "");

    // The parameters that differ between the runs.
    const flats = runs.map((r) => flatten(r.params));
    const pkeys = [];
    for (const f of flats) for (const k of Object.keys(f)) if (!pkeys.includes(k)) pkeys.push(k);
    const differ = pkeys.filter((k) => new Set(flats.map((f) => JSON.stringify(f[k] ?? null))).size > 1);
    const diffTable = differ.length
      ? h("div", { class: "scroll" }, h("table", { class: "grid", id: "param-diff" },
        h("thead", null, h("tr", null, h("th", null, "run"), differ.map((k) => h("th", { class: "num" }, k)))),
        h("tbody", null, runs.map((r, i) => h("tr", null, h("td", null, swatch(colorOf(i)), runLink(r)), differ.map((k) => h("td", { class: "num" }, fmt(flats[i][k]))))))))
      : h("p", { class: "muted" }, runs.length > 1 ? "The runs' parameters are the same." : "One run: nothing to compare.");

    clear(app).append(section(`Compare ${runs.length} runs`,
      failed.map((f) => errorBox(`${f.url}: ${f.error}`)),
      asked.length > urls.length ? h("p", { class: "muted" }, `the first ${MAX_COMPARE} of ${asked.length} runs`) : null,
      h("label", { class: "ctl" }, "series: ", sel),
      legend, chartBox),
    section("Parameters that differ", diffTable));

    if (key) {
      const k = key.replace(/^outputs\./, "");
      const xKey = outKeys.includes(q.get("x")) && q.get("x") !== k ? q.get("x") : "";
      const xSel = h("select", { id: "compare-x", "aria-label": "x axis" },
        h("option", { value: "", selected: !xKey }, "output index"),
        outKeys.filter((o) => o !== k).map((o) => h("option", { value: o, selected: o === xKey }, o)));
      xSel.addEventListener("change", () => location.assign(link("/compare", { run: urls, key, x: xSel.value })));
      sel.parentElement.after(h("label", { class: "ctl x-ctl" }, "x: ", xSel));
      const tables = runs.map((r) => sortByX([r.outputs.map((o, i) => (xKey ? fin(o[xKey]) : i)), r.outputs.map((o) => fin(o[k]))]));
      const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
      const cell = h("div", { class: "chart" });
      chartBox.appendChild(cell);
      const xLabel = xKey || "output index";
      keep(new uPlot({
        title, width: widthOf(cell), height: 320,
        scales: { x: { time: false } },
        axes: [{ label: xLabel }, {}],
        legend: { show: false },
        series: [{ label: xLabel }, ...runs.map((r, i) => ({ label: r.name, stroke: colorOf(i), width: 1.5, spanGaps: true, points: { show: data[0].length < 60, size: 4 } }))],
      }, data, cell));
    } else if (stream && y) {
      const meta = streamMeta.get(stream);
      const x = meta ? stepX(meta) : null;
      const lines = [];
      runs.forEach((r, i) => {
        const m = (r.metrics || []).find((m) => m.stream_name === stream);
        if (m) lines.push({ label: r.name, table: m.url, y, x, xInt: true, color: i });
      });
      await envelopeChart(chartBox, { title, xLabel: x || "row", lines, height: 320, legend: false }).refresh();
    }
  }

  // ---------------------------------------------------------------------------------------
  // The router

  const pages = { "/": pageProjects, "/project": pageProject, "/run": pageRun, "/table": pageTable, "/compare": pageCompare };
  async function main() {
    const path = location.pathname.replace(/\/+$/, "") || "/";
    const page = pages[path];
    const q = new URLSearchParams(location.search);
    try {
      if (!page) throw new ApiError(`no page at ${path}`, 404);
      await page(q);
      performance.mark("runstore:ready");
      document.body.dataset.ready = "1";
    } catch (e) {
      clear(app).appendChild(section("Error", errorBox(e.message), h("p", null, h("a", { href: "/" }, "back to the projects"))));
      document.body.dataset.ready = "error";
    }
  }
  main();
})();
