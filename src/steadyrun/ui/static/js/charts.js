/* Charts: one chart per key, grouped by namespace, each on its namespace's own step axis
 * (a stage that restarts at step 0 draws from 0), the selected runs overlaid. */
"use strict";
(function () {
  const opt = { smooth: 0, logY: false, axis: "step", filter: "", baseline: true };
  const plots = {};      // key -> {plot, box, zoom: [lo, hi] | null, timer}
  SR.series = {};        // run id -> {key: {x, t, y, n, nf}} at full range
  SR.anomalies = {};     // run id -> [anomaly]
  let grid = null;

  /* What the x axis is: the namespace's step metric, or the time chosen instead. */
  function xName(step) {
    return opt.axis === "step" ? step : opt.axis === "time" ? "wall time" : "seconds since start";
  }

  function t0(id) {
    const p = SR.payloads[id] || {};
    if (p.created_at) return p.created_at;
    let lo = Infinity;
    for (const s of Object.values(SR.series[id] || {})) if (s.t.length && s.t[0] < lo) lo = s.t[0];
    return Number.isFinite(lo) ? lo : 0;
  }

  /* The baseline runs of the selected runs (init(baseline=...)), not selected themselves. */
  function baselineIds(all) {
    const out = [];
    for (const id of SR.selected) {
      for (const b of ((SR.payloads[id] || {}).baseline || {}).runs || []) {
        if (!SR.selected.includes(b) && !out.includes(b)) out.push(b);
      }
    }
    return opt.baseline || all ? out : [];
  }

  function runsFor(key, override) {
    const out = [];
    for (const id of SR.selected) {
      const s = (override && override[id]) || (SR.series[id] || {})[key];
      if (!s) continue;
      out.push({ id, label: SR.runName(id), color: SR.color(id), x: s.x, t: s.t, y: s.y, t0: t0(id) });
    }
    for (const b of baselineIds()) {  // drawn faint behind, full range (a few thousand points)
      const s = (SR.series[b] || {})[key];
      if (s) out.push({ id: b, label: "baseline " + SR.runName(b), color: "#6b7280", faint: true,
                        x: s.x, t: s.t, y: s.y, t0: t0(b) });
    }
    return out;
  }

  function markersFor(key, step) {
    const out = [];
    for (const id of SR.selected) for (const a of SR.anomalies[id] || []) {
      if (a.key === key || (a.type === "step_regression" && a.step_metric === step)) {
        if (a.x !== undefined || a.t !== undefined) out.push({ x: a.x ?? null, t: a.t ?? null, t0: t0(id), message: a.message });
      }
    }
    return out;
  }

  function describe(box, plot) {
    const xs = plot.u.data[0] || [];
    box.dataset.xmin = xs.length ? xs[0] : "";
    box.dataset.xmax = xs.length ? xs[xs.length - 1] : "";
    box.dataset.series = plot.u.series.length - 1;
    box.dataset.baselines = plot.u.series.filter((s) => s.dash).length;
    box.dataset.points = xs.length;
  }

  async function fetchRange(key, lo, hi) {
    const axis = opt.axis === "step" ? "step" : "time";
    const out = {};
    for (const id of SR.selected) {
      const shift = opt.axis === "relative" ? t0(id) : 0;
      const q = "?key=" + encodeURIComponent(key) + "&axis=" + axis + "&lo=" + (lo + shift) + "&hi=" + (hi + shift);
      try {
        const body = await SR.api("/api/run/" + encodeURIComponent(id) + "/series" + q);
        if (body[key]) out[id] = body[key];
      } catch (e) { SR.notice("zoom: " + e.message); }
    }
    return out;
  }

  function chart(key, step) {
    const markers = markersFor(key, step);
    const box = SR.el("div", { class: "plot" });
    const flag = markers.length ? SR.el("span", { class: "flag", title: markers.map((m) => m.message).join("\n") },
      "⚠ " + markers.length + " anomal" + (markers.length === 1 ? "y" : "ies")) : null;
    const card = SR.el("div", { class: "chart", dataset: { key } },
      SR.el("div", { class: "title" }, SR.el("span", { class: "key" }, key),
        SR.el("span", { class: "axis" }, "x: " + xName(step)), flag), box);
    const entry = { box: card, zoom: null, timer: null, plot: null, step };
    plots[key] = entry;
    const spec = {
      key, axis: opt.axis, logY: opt.logY, smooth: opt.smooth, stepLabel: step, markers,
      runs: runsFor(key),
      onZoom(lo, hi) {
        entry.zoom = [lo, hi];
        clearTimeout(entry.timer);
        if (SR.embed) return; // a report holds its thinned points only
        entry.timer = setTimeout(async () => {
          const part = await fetchRange(key, lo, hi);
          if (!entry.zoom || entry.zoom[0] !== lo) return; // reset or zoomed again meanwhile
          entry.plot.setData({ runs: runsFor(key, part) }, true);
          describe(card, entry.plot);
        }, 120);
      },
      onReset() {
        clearTimeout(entry.timer);
        entry.zoom = null;
        entry.plot.setData({ runs: runsFor(key) }, false);
        describe(card, entry.plot);
      },
    };
    requestAnimationFrame(() => {
      if (!card.isConnected) return;
      entry.plot = SR.makePlot(box, spec);
      describe(card, entry.plot);
    });
    return card;
  }

  function summaryTable(payloads) {
    const keys = [...new Set(payloads.flatMap((p) => Object.keys(p.summary || {})))].sort();
    const bestKeys = [...new Set(payloads.flatMap((p) => Object.keys(p.best || {})))].filter((k) => !keys.includes(k));
    if (!keys.length && !bestKeys.length) return null;
    const rows = [...keys, ...bestKeys].map((k) => SR.el("tr", {}, SR.el("td", { class: "mono" }, k), payloads.map((p) => {
      const b = (p.best || {})[k];
      const v = (p.summary || {})[k];
      return SR.el("td", { class: "num" }, v === undefined ? "" : SR.fmt(v),
        b ? SR.el("div", { class: "best", title: "best value (goal: " + b.goal + ")" },
          "best " + SR.fmt(b.value) + (b.step !== null ? " @ " + SR.fmt(b.step) : "")) : null);
    })));
    return SR.el("details", { open: true, id: "summary" }, SR.el("summary", {}, "Summary"),
      SR.el("table", { class: "grid" }, SR.el("thead", {}, SR.el("tr", {}, SR.el("th", {}, "key"),
        payloads.map((p) => SR.el("th", {}, SR.runName(p.id))))), SR.el("tbody", {}, rows)));
  }

  function applyFilter() {
    let re = null;
    try { re = opt.filter ? new RegExp(opt.filter) : null; } catch (e) { re = null; }
    for (const [key, e] of Object.entries(plots)) e.box.style.display = !re || re.test(key) ? "" : "none";
    if (grid) for (const sec of grid.querySelectorAll(".ns")) {
      sec.style.display = [...sec.querySelectorAll(".chart")].some((c) => c.style.display !== "none") ? "" : "none";
    }
  }

  async function loadSeries(id) {
    try { SR.series[id] = await SR.api("/api/run/" + encodeURIComponent(id) + "/series"); }
    catch (e) { SR.notice("run " + id + ": " + e.message); SR.series[id] = {}; }
    try { SR.anomalies[id] = await SR.api("/api/run/" + encodeURIComponent(id) + "/anomalies"); }
    catch (e) { SR.anomalies[id] = []; }
  }

  function draw() {
    for (const e of Object.values(plots)) if (e.plot) e.plot.destroy();
    for (const k of Object.keys(plots)) delete plots[k];
    const payloads = SR.selected.map((id) => SR.payloads[id]).filter(Boolean);
    const byNs = new Map();
    for (const p of payloads) for (const ns of p.namespaces || []) {
      const entry = byNs.get(ns.ns) || { step: ns.step, keys: new Set() };
      for (const k of ns.keys) if (!((p.metrics || {})[k] || {}).hidden) entry.keys.add(k);
      byNs.set(ns.ns, entry);
    }
    grid.replaceChildren();
    const summary = summaryTable(payloads);
    if (summary) grid.append(summary);
    for (const [ns, e] of byNs) {
      if (!e.keys.size) continue;
      grid.append(SR.el("section", { class: "ns", dataset: { ns } },
        SR.el("h2", {}, ns || "(root)", SR.el("span", { class: "muted" }, "  x: " + xName(e.step))),
        SR.el("div", { class: "charts" }, [...e.keys].map((k) => chart(k, e.step)))));
    }
    if (!byNs.size) grid.append(SR.el("p", { class: "muted" }, "No rows logged yet."));
    applyFilter();
  }

  function controls() {
    const rerender = () => draw();
    return SR.el("div", { class: "controls" },
      SR.el("label", {}, "smoothing ", SR.el("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: opt.smooth, id: "smooth",
        on: { change: (ev) => { opt.smooth = +ev.target.value; rerender(); } } })),
      baselineIds(true).length ? SR.el("label", { title: "the baseline runs (init(baseline=...)) drawn faint and dashed" },
        SR.el("input", { type: "checkbox", id: "showbaseline", checked: opt.baseline,
          on: { change: (ev) => { opt.baseline = ev.target.checked; rerender(); } } }), " baseline") : null,
      SR.el("label", {}, SR.el("input", { type: "checkbox", id: "logy", checked: opt.logY,
        on: { change: (ev) => { opt.logY = ev.target.checked; rerender(); } } }), " log y"),
      SR.el("label", {}, "x ", SR.el("select", { id: "xaxis", on: { change: (ev) => { opt.axis = ev.target.value; rerender(); } } },
        [["step", "step"], ["time", "wall time"], ["relative", "relative time"]].map(([v, t]) =>
          SR.el("option", { value: v, selected: opt.axis === v }, t)))),
      SR.el("input", { type: "search", id: "keyfilter", placeholder: "filter keys (regex)", value: opt.filter,
        on: { input: (ev) => { opt.filter = ev.target.value; applyFilter(); } } }),
      SR.el("span", { class: "muted" }, SR.embed ? "drag to zoom, double-click to reset (a report holds about 2,000 points per series)"
        : "drag to zoom (full resolution), double-click to reset"));
  }

  SR.views.charts = {
    async render(main) {
      await SR.ensureSelection();
      const payloads = await SR.loadSelected(false);
      for (const p of payloads) if (!SR.series[p.id]) await loadSeries(p.id);
      for (const b of baselineIds(true)) {
        if (SR.series[b]) continue;
        try {
          SR.payloads[b] = SR.payloads[b] || await SR.api("/api/run/" + encodeURIComponent(b));
          SR.series[b] = await SR.api("/api/run/" + encodeURIComponent(b) + "/series");
        } catch (e) { SR.notice("baseline run " + b + ": " + e.message); SR.series[b] = {}; }
      }
      grid = SR.el("div", { id: "chart-grid" });
      main.replaceChildren(controls(), grid);
      draw();
    },
    /* A selected run changed on disk: new points go into the charts without a reload. */
    async update(ids) {
      let rebuild = false;
      for (const id of ids) {
        const before = JSON.stringify((SR.payloads[id] || {}).namespaces || []);
        await SR.loadSelected(true);
        await loadSeries(id);
        if (JSON.stringify((SR.payloads[id] || {}).namespaces || []) !== before) rebuild = true;
      }
      if (rebuild) { draw(); return; }
      const old = grid.querySelector("#summary");
      const fresh = summaryTable(SR.selected.map((i) => SR.payloads[i]).filter(Boolean));
      if (old && fresh) old.replaceWith(fresh);
      for (const [key, e] of Object.entries(plots)) {
        if (!e.plot || e.zoom) continue;
        if (!e.plot.setData({ runs: runsFor(key) }, false)) { draw(); return; }
        e.plot.setMarkers(markersFor(key, e.step));
        describe(e.box, e.plot);
      }
    },
  };
})();
