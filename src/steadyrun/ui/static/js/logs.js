/* Logs: each selected run's captured stdout and stderr (log/console.py), its last
 * lines in time order; every writer's lines marked when the run has several, stderr in
 * red. Lines go in as text, never markup. Live: looked at again each second. */
"use strict";
(function () {
  SR.views.logs = {
    async render(main, again) {
      await SR.ensureSelection();
      await SR.loadSelected(false); // the runs' names for the headings
      const follow = again && window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
      const parts = [];
      for (const id of SR.selected) {
        let got = { lines: [], total: 0, writers: [] };
        try { got = await SR.api("/api/run/" + encodeURIComponent(id) + "/logs"); }
        catch (e) { SR.notice("run " + id + ": " + e.message); }
        const shown = got.total > got.lines.length ? " (the last " + got.lines.length + ")" : "";
        parts.push(SR.el("h2", {}, SR.runName(id), SR.el("span", { class: "muted" },
          "  " + got.total + " line" + (got.total === 1 ? "" : "s") + shown)));
        if (!got.lines.length) {
          parts.push(SR.el("p", { class: "muted" }, "No console captured: the run printed nothing, or ran with console off."));
          continue;
        }
        const many = got.writers.length > 1;
        parts.push(SR.el("pre", { class: "console", dataset: { run: id } }, ...got.lines.map((r) =>
          SR.el("div", { class: r.s === "err" ? "line err" : "line", dataset: { writer: r.w } },
            (many ? "[" + r.w + "] " : "") + r.l))));
      }
      main.replaceChildren(...parts);
      if (follow) window.scrollTo(0, document.body.scrollHeight);
    },
  };
})();
