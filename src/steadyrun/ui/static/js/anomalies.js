/* Anomalies: step regressions, refused values, NaN/inf, replaced values, dropped rows and
 * torn lines, each with where it happened (step, time) and the line that caused it. */
"use strict";
(function () {
  SR.views.anomalies = {
    async render(main) {
      await SR.ensureSelection();
      await SR.loadSelected(false); // the runs' names for the headings
      const parts = [];
      for (const id of SR.selected) {
        let list = [];
        try { list = SR.anomalies[id] = await SR.api("/api/run/" + encodeURIComponent(id) + "/anomalies"); }
        catch (e) { SR.notice("run " + id + ": " + e.message); }
        parts.push(SR.el("h2", {}, SR.runName(id), SR.el("span", { class: "muted" }, "  " + list.length + " anomal" + (list.length === 1 ? "y" : "ies"))));
        if (!list.length) { parts.push(SR.el("p", { class: "muted" }, "None: every value was kept, every step went forward.")); continue; }
        parts.push(SR.el("table", { class: "grid anomalies", dataset: { run: id } },
          SR.el("thead", {}, SR.el("tr", {}, ["type", "key / namespace", "step", "time", "what", "call site"].map((h) => SR.el("th", {}, h)))),
          SR.el("tbody", {}, list.map((a) => SR.el("tr", { dataset: { type: a.type } },
            SR.el("td", {}, a.type), SR.el("td", { class: "mono" }, a.key ?? a.namespace ?? ""),
            SR.el("td", { class: "num" }, SR.fmt(a.x)), SR.el("td", {}, a.t ? new Date(a.t * 1000).toISOString() : ""),
            SR.el("td", {}, a.message || ""), SR.el("td", { class: "anomaly-site mono" }, a.site || ""))))));
      }
      main.replaceChildren(...parts);
    },
  };
})();
