/* Config: each selected run's config and metadata (git, command line, host, versions);
 * with several runs, the keys that differ first, and a switch to show only those. */
"use strict";
(function () {
  let onlyDiff = true;

  function section(title, payloads, pick, id) {
    const flat = payloads.map((p) => SR.flatten(pick(p)));
    const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
    const differs = (k) => new Set(flat.map((f) => JSON.stringify(f[k] === undefined ? null : f[k]))).size > 1;
    const many = payloads.length > 1;
    const shown = many && onlyDiff ? keys.filter(differs) : keys;
    const rows = shown.map((k) => SR.el("tr", { dataset: { key: k } }, SR.el("td", { class: "mono" }, k),
      flat.map((f) => SR.el("td", { class: many && differs(k) ? "changed mono" : "mono" }, SR.fmt(f[k])))));
    return SR.el("section", { id },
      SR.el("h2", {}, title, many ? SR.el("span", { class: "muted" }, "  " + shown.length + " of " + keys.length + " keys" +
        (onlyDiff ? " (only those that differ)" : "")) : null),
      shown.length ? SR.el("table", { class: "grid diff" },
        SR.el("thead", {}, SR.el("tr", {}, SR.el("th", {}, "key"), payloads.map((p) => SR.el("th", {}, SR.runName(p.id))))),
        SR.el("tbody", {}, rows)) : SR.el("p", { class: "muted" }, many && onlyDiff ? "No differences." : "Nothing recorded."));
  }

  function run(p) {
    return { name: p.name, project: p.project, group: p.group, job_type: p.job_type, tags: (p.tags || []).join(", "),
             state: p.state, notes: p.notes, created: p.created_at ? new Date(p.created_at * 1000).toISOString() : null,
             folder: p.dir };
  }

  SR.views.config = {
    async render(main) {
      await SR.ensureSelection();
      const payloads = await SR.loadSelected(false);
      const draw = () => main.replaceChildren(
        payloads.length > 1 ? SR.el("div", { class: "controls" }, SR.el("label", {}, SR.el("input", {
          type: "checkbox", id: "onlydiff", checked: onlyDiff,
          on: { change: (ev) => { onlyDiff = ev.target.checked; draw(); } } }), " only keys that differ")) : null,
        section("Config", payloads, (p) => p.config, "config"),
        section("Metadata", payloads, (p) => p.metadata, "metadata"),
        section("Run", payloads, run, "runinfo"));
      draw();
    },
  };
})();
