/* One chart of one key: uPlot, with the selected runs overlaid, exponential smoothing
 * (the raw line faint behind), log y, x as step / wall time / relative time, drag to
 * zoom (the caller fetches full resolution for the zoomed range), double-click to reset,
 * and the run's anomalies marked where they happened. */
"use strict";
(function () {
  /* TensorBoard's debiased exponential moving average; gaps stay gaps. */
  function ema(ys, w) {
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y === null || y === undefined || !Number.isFinite(y)) { out[i] = y === undefined ? undefined : null; continue; }
      last = last * w + (1 - w) * y; n++;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }

  /* [xs, ys] sorted by x (stable), one point per x (the last logged, as W&B keeps). */
  function table(run, axis, logY) {
    const xs0 = axis === "step" ? run.x : run.t;
    const shift = axis === "relative" ? run.t0 : 0;
    const idx = xs0.map((_, i) => i).filter((i) => xs0[i] !== null && Number.isFinite(xs0[i]));
    idx.sort((a, b) => xs0[a] - xs0[b] || a - b);
    const xs = [], ys = [];
    for (const i of idx) {
      const x = xs0[i] - shift;
      let y = run.y[i];
      if (y === null || !Number.isFinite(y) || (logY && y <= 0)) y = null;
      if (xs.length && xs[xs.length - 1] === x) { ys[ys.length - 1] = y; continue; }
      xs.push(x); ys.push(y);
    }
    return [xs, ys];
  }

  function fade(color, alpha) {
    const n = parseInt(color.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  /* A y tick as short as it can be without losing what tells it from its neighbours:
   * uPlot's default keeps three decimals, so learning rates (1e-4) all read "0". */
  function tick(v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "";
    if (v === 0) return "0";
    const a = Math.abs(v);
    const s = +v.toPrecision(6);
    return a >= 1e6 || a < 1e-4 ? s.toExponential().replace("e+", "e") : String(s);
  }

  const legend = (u, v) => (v === null || v === undefined ? "--" : tick(v));

  SR.plotData = function (spec) {
    const tables = [], series = [{ label: spec.axis === "step" ? spec.stepLabel : spec.axis === "time" ? "time" : "seconds" }];
    for (const run of spec.runs) {
      const [xs, ys] = table(run, spec.axis, spec.logY);
      if (run.faint) { // a baseline run: one thin dashed line behind the runs' own
        tables.push([xs, spec.smooth > 0 ? ema(ys, spec.smooth) : ys]);
        series.push({ label: run.label, stroke: fade(run.color, 0.7), width: 1, dash: [5, 4], spanGaps: false, value: legend });
        continue;
      }
      if (spec.smooth > 0) {
        tables.push([xs, ys, ema(ys, spec.smooth)]);
        series.push({ label: run.label + " (raw)", stroke: fade(run.color, 0.25), width: 1, spanGaps: false, value: legend });
        series.push({ label: run.label, stroke: run.color, width: 1.5, spanGaps: false, value: legend });
      } else {
        tables.push([xs, ys]);
        series.push({ label: run.label, stroke: run.color, width: 1.5, spanGaps: false, value: legend });
      }
    }
    const data = tables.length === 1 ? tables[0] : tables.length ? uPlot.join(tables) : [[]];
    return { data, series };
  };

  SR.makePlot = function (box, spec) {
    const { data, series } = SR.plotData(spec);
    let internal = false;
    const markers = spec.markers || [];
    const opts = {
      width: Math.max(300, box.clientWidth - 12), height: 220,
      series,
      scales: { x: { time: spec.axis === "time" }, y: { distr: spec.logY ? 3 : 1 } },
      axes: [{ stroke: "#888", grid: { stroke: "rgba(128,128,128,.15)" } },
             { stroke: "#888", grid: { stroke: "rgba(128,128,128,.15)" }, size: 60,
               values: (u, splits) => splits.map(tick) }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      hooks: {
        setScale: [(u, key) => {
          if (key !== "x" || internal || !spec.onZoom) return;
          const lo = u.scales.x.min, hi = u.scales.x.max;
          if (lo === null || hi === null) return;
          // uPlot also sets the x scale to the data's extent when it first draws (in a
          // microtask, after `new uPlot` returns) and on its own double-click reset:
          // neither is a zoom, and taking one for a zoom froze the chart (live updates
          // skip a zoomed chart) and fetched the whole range again for nothing.
          const xs = u.data[0] || [];
          if (!xs.length || (lo <= xs[0] && hi >= xs[xs.length - 1])) return;
          spec.onZoom(lo, hi);
        }],
        draw: [(u) => {
          if (!markers.length) return;
          const ctx = u.ctx, top = u.bbox.top, h = u.bbox.height;
          ctx.save();
          ctx.strokeStyle = "#dc2626"; ctx.fillStyle = "#dc2626"; ctx.setLineDash([4, 3]); ctx.lineWidth = 1;
          for (const m of markers) {
            const v = spec.axis === "step" ? m.x : m.t - (spec.axis === "relative" ? m.t0 : 0);
            if (v === null || v === undefined || !Number.isFinite(v)) continue;
            if (v < u.scales.x.min || v > u.scales.x.max) continue;
            const px = Math.round(u.valToPos(v, "x", true));
            ctx.beginPath(); ctx.moveTo(px, top); ctx.lineTo(px, top + h); ctx.stroke();
            ctx.beginPath(); ctx.moveTo(px - 5, top); ctx.lineTo(px + 5, top); ctx.lineTo(px, top + 8); ctx.fill();
          }
          ctx.restore();
        }],
      },
    };
    const u = new uPlot(opts, data, box);
    u.over.addEventListener("dblclick", () => { if (spec.onReset) spec.onReset(); });
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(300, box.clientWidth - 12), height: 220 }));
    ro.observe(box);
    return {
      u,
      setData(newSpec, keepZoom) {
        Object.assign(spec, { runs: newSpec.runs });
        const built = SR.plotData(spec);
        if (built.series.length !== u.series.length) return false; // the caller rebuilds
        internal = true;
        try { u.setData(built.data, !keepZoom); } finally { internal = false; }
        return true;
      },
      setMarkers(ms) { markers.splice(0, markers.length, ...ms); u.redraw(false, false); },
      destroy() { ro.disconnect(); u.destroy(); },
    };
  };
})();
