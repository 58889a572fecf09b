/* steadyrun dashboard: shared state and helpers.
 * Every text from a run (keys, names, tags, cells) goes into the page through
 * textContent, never innerHTML: a key like "<img onerror=...>" renders as text. */
"use strict";
const SR = (window.SR = {
  embed: null,      // a report's embedded answers, or null when served
  runs: [],         // the runs table, as last fetched
  selected: [],     // run ids shown in Charts, Config, Media, Anomalies
  payloads: {},     // run id -> /api/run/<id>
  views: {},        // view name -> {render(main), update?()}
  colors: ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04",
           "#db2777", "#4b5563", "#65a30d"],
});

(function () {
  const node = document.getElementById("sr-embed");
  if (node) SR.embed = JSON.parse(node.textContent);
})();

/* A JSON answer of the server, or of the report's embedded data. */
SR.api = async function (path) {
  if (SR.embed) {
    const hit = SR.embed.data[path];
    if (hit === undefined) throw new Error("not in this report: " + path);
    return hit;
  }
  const res = await fetch(path, { cache: "no-store" });
  let body;
  try { body = await res.json(); } catch (e) { throw new Error(path + ": HTTP " + res.status); }
  if (body && body.error && !body.notices) throw new Error(body.error);
  return body;
};

/* el("td", {class: "num", title: t}, "text", child...) -- text children are text nodes. */
SR.el = function (tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "on") { for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn); }
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
};

SR.fmt = function (v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(4) : String(+v.toPrecision(6));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
};

SR.age = function (ts) {
  if (!ts) return "";
  const s = Math.max(0, Date.now() / 1000 - ts);
  for (const [u, n] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= n) return Math.floor(s / n) + u;
  return Math.floor(s) + "s";
};

SR.notice = function (text) {
  const box = document.getElementById("notices");
  if ([...box.children].some((c) => c.textContent === text)) return;
  box.append(SR.el("div", { class: "notice", role: "status" }, text));
};

SR.runName = function (id) {
  const p = SR.payloads[id] || SR.runs.find((r) => r.id === id) || {};
  return p.name ? p.name + " (" + id + ")" : id;
};

SR.color = function (id) {
  const i = SR.selected.indexOf(id);
  return SR.colors[(i < 0 ? 0 : i) % SR.colors.length];
};

/* The run payloads of the selected runs, fetched when missing or `fresh`. */
SR.loadSelected = async function (fresh) {
  const out = [];
  for (const id of SR.selected) {
    if (fresh || !SR.payloads[id]) {
      try {
        SR.payloads[id] = await SR.api("/api/run/" + encodeURIComponent(id));
      } catch (e) {
        SR.notice("run " + id + ": " + e.message);
        continue;
      }
      for (const n of SR.payloads[id].notices || []) SR.notice("run " + id + ": " + n);
    }
    out.push(SR.payloads[id]);
  }
  return out;
};

/* Flatten {a: {b: 1}} to {"a.b": 1} for config tables and diffs. */
SR.flatten = function (obj, prefix, out) {
  out = out || {};
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? prefix + "." + k : k;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) SR.flatten(v, key, out);
    else out[key] = v;
  }
  return out;
};

SR.sortableTable = function (columns, rows, opts) {
  opts = opts || {};
  const table = SR.el("table", { class: "grid" + (opts.cls ? " " + opts.cls : "") });
  const thead = SR.el("thead");
  const tbody = SR.el("tbody");
  let order = null;
  const draw = () => {
    tbody.replaceChildren();
    let shown = rows.slice();
    if (order) {
      const [i, dir] = order;
      shown.sort((a, b) => {
        const x = a[i], y = b[i];
        if (typeof x === "number" && typeof y === "number") return dir * (x - y);
        return dir * String(x ?? "").localeCompare(String(y ?? ""), undefined, { numeric: true });
      });
    }
    for (const r of shown) tbody.append(SR.el("tr", {}, r.map((c) =>
      SR.el("td", { class: typeof c === "number" ? "num" : null }, SR.fmt(c)))));
  };
  thead.append(SR.el("tr", {}, columns.map((c, i) => SR.el("th", {
    class: "sortable", title: "sort",
    on: { click: () => { order = order && order[0] === i ? [i, -order[1]] : [i, 1]; draw(); } },
  }, String(c)))));
  table.append(thead, tbody);
  draw();
  return table;
};
