/* Media and files: tables (sortable), images with captions and steps, histograms (a
 * slider over the steps), alerts, saved files and checkpoints (the best one marked). */
"use strict";
(function () {
  function histogram(key, recs) {
    const box = SR.el("div", { class: "plot" });
    const label = SR.el("span", { class: "muted" });
    let plot = null;
    const show = (i) => {
      const h = recs[i];
      label.textContent = "step " + SR.fmt(h.x) + " (" + (i + 1) + " of " + recs.length + ")" +
        (h.nonfinite ? ", non-finite: " + JSON.stringify(h.nonfinite) : "");
      const edges = h.edges || [], counts = h.counts || [];
      const mids = counts.map((_, j) => (edges[j] + edges[j + 1]) / 2);
      const data = [mids, counts];
      if (plot) { plot.setData(data); return; }
      plot = new uPlot({
        width: 420, height: 180, legend: { show: false },
        series: [{}, { label: key, stroke: "#2563eb", fill: "rgba(37,99,235,.3)", paths: uPlot.paths.bars({ size: [1, 100] }) }],
        scales: { x: { time: false } },
        axes: [{ stroke: "#888" }, { stroke: "#888", size: 50 }],
      }, data, box);
    };
    const slider = SR.el("input", { type: "range", min: 0, max: recs.length - 1, value: recs.length - 1, "aria-label": key + " step",
      on: { input: (ev) => show(+ev.target.value) } });
    requestAnimationFrame(() => show(recs.length - 1));
    return SR.el("div", { class: "chart", dataset: { histogram: key } }, SR.el("div", { class: "title" }, key), slider, label, box);
  }

  function runMedia(id, m) {
    const parts = [SR.el("h2", {}, SR.runName(id))];
    if (m.alerts.length) parts.push(SR.el("h3", {}, "Alerts"), SR.sortableTable(["level", "title", "text", "time"],
      m.alerts.map((a) => [a.level, a.title, a.text, a.t ? new Date(a.t * 1000).toISOString() : ""])));
    for (const t of m.tables) parts.push(SR.el("h3", {}, t.key, SR.el("span", { class: "muted" }, "  step " + SR.fmt(t.x))),
      SR.sortableTable(t.columns || [], t.rows || [], { cls: "media-table" }));
    if (m.images.length) parts.push(SR.el("h3", {}, "Images"), SR.el("div", { class: "images" }, m.images.map((im) =>
      SR.el("figure", {}, im.url ? SR.el("img", { src: im.url, alt: im.caption || im.key, loading: "lazy" }) :
        SR.el("div", { class: "muted" }, "(not embedded: " + im.path + ")"),
        SR.el("figcaption", {}, SR.el("b", {}, im.key), " · step " + SR.fmt(im.x), im.caption ? SR.el("div", {}, im.caption) : null)))));
    const hk = Object.keys(m.histograms);
    if (hk.length) parts.push(SR.el("h3", {}, "Histograms"), SR.el("div", { class: "charts" }, hk.map((k) => histogram(k, m.histograms[k]))));
    if (m.files.length) parts.push(SR.el("h3", {}, "Files"), SR.el("ul", {}, m.files.map((f) =>
      SR.el("li", {}, f.url ? SR.el("a", { href: f.url }, f.path) : SR.el("span", { class: "mono" }, f.path)))));
    if (m.artifacts.length) parts.push(SR.el("h3", {}, "Checkpoints and artifacts"),
      SR.el("table", { class: "grid", id: "artifacts" }, SR.el("thead", {}, SR.el("tr", {}, ["name", "type", "aliases", "step", "size", "path", ""].map((h) => SR.el("th", {}, h)))),
        SR.el("tbody", {}, m.artifacts.map((a) => SR.el("tr", { dataset: { best: a.best ? "1" : "" } },
          SR.el("td", {}, a.name), SR.el("td", {}, a.type), SR.el("td", {}, (a.aliases || []).map((x) => SR.el("span", { class: "tag" }, x))),
          SR.el("td", { class: "num" }, SR.fmt(a.x)), SR.el("td", { class: "num" }, a.size ? (a.size / 1e6).toFixed(2) + " MB" : ""),
          SR.el("td", { class: "mono" }, a.path), SR.el("td", {}, a.best ? SR.el("span", { class: "best" }, "★ best") : null))))));
    if (parts.length === 1) parts.push(SR.el("p", { class: "muted" }, "No tables, images, histograms, alerts, files or checkpoints."));
    return SR.el("section", { dataset: { run: id } }, parts);
  }

  SR.views.media = {
    async render(main) {
      await SR.ensureSelection();
      await SR.loadSelected(false); // the runs' names for the headings
      const sections = [];
      for (const id of SR.selected) {
        try { sections.push(runMedia(id, await SR.api("/api/run/" + encodeURIComponent(id) + "/media"))); }
        catch (e) { SR.notice("run " + id + ": " + e.message); }
      }
      main.replaceChildren(...sections);
    },
  };
})();
