/* Runs: every run under the root, filtered; tick runs to compare them in the other views. */
"use strict";
(function () {
  const filters = { project: "", group: "", tag: "", state: "", q: "" };
  let tbody = null;
  let counter = null;

  function matches(r) {
    if (filters.project && r.project !== filters.project) return false;
    if (filters.group && r.group !== filters.group) return false;
    if (filters.tag && !(r.tags || []).includes(filters.tag)) return false;
    if (filters.state && r.state !== filters.state) return false;
    if (filters.q) {
      const q = filters.q.toLowerCase();
      const hay = [r.name, r.id, r.notes].filter(Boolean).join(" ").toLowerCase();
      if (!hay.includes(q)) return false;
    }
    return true;
  }

  function select(id, on) {
    SR.selected = SR.selected.filter((x) => x !== id);
    if (on) SR.selected.push(id);
    SR.saveHash();
    fill();
  }

  function copyButton(id) {
    return SR.el("button", {
      class: "small", title: "copy the id", on: {
        click: async (ev) => {
          ev.stopPropagation();
          try { await navigator.clipboard.writeText(id); ev.target.textContent = "copied"; }
          catch (e) { window.getSelection().selectAllChildren(ev.target.previousSibling); }
        },
      },
    }, "copy");
  }

  function fill() {
    if (!tbody) return;
    const shown = SR.runs.filter(matches);
    counter.textContent = shown.length + " of " + SR.runs.length + " runs";
    tbody.replaceChildren(...shown.map((r) => {
      const on = SR.selected.includes(r.id);
      return SR.el("tr", { class: on ? "selected" : null, dataset: { run: r.id } },
        SR.el("td", {}, SR.el("input", { type: "checkbox", checked: on, "aria-label": "select " + r.id,
          on: { change: (ev) => select(r.id, ev.target.checked) } })),
        SR.el("td", {}, SR.el("code", { class: "id" }, r.id), " ", copyButton(r.id)),
        SR.el("td", {}, SR.el("a", { href: "#charts?runs=" + encodeURIComponent(r.id) }, r.name || r.id),
          r.notice ? SR.el("div", { class: "flag" }, r.notice) : null),
        SR.el("td", {}, r.project || ""),
        SR.el("td", {}, r.group || ""),
        SR.el("td", {}, (r.tags || []).map((t) => SR.el("span", { class: "tag" }, t))),
        SR.el("td", { class: "state-" + r.state }, r.state,
          r.dropped_rows ? SR.el("div", { class: "flag" }, r.dropped_rows + " rows dropped") : null),
        SR.el("td", { class: "num" }, SR.fmt(r.rows)),
        SR.el("td", { class: "num" }, SR.fmt(r.last_step)),
        SR.el("td", { class: "num", title: r.created_at ? new Date(r.created_at * 1000).toISOString() : "" },
          SR.age(r.created_at)));
    }));
  }

  function choice(name, label, values) {
    const sel = SR.el("select", { "aria-label": label, on: { change: (ev) => { filters[name] = ev.target.value; fill(); } } },
      SR.el("option", { value: "" }, "any " + label),
      [...new Set(values.filter(Boolean))].sort().map((v) => SR.el("option", { value: v, selected: filters[name] === v }, v)));
    return sel;
  }

  SR.views.runs = {
    async render(main) {
      const body = await SR.api("/api/runs");
      SR.runs = body.runs || [];
      counter = SR.el("span", { class: "muted" });
      tbody = SR.el("tbody");
      const compare = SR.el("button", { on: { click: () => { location.hash = "#charts?runs=" + SR.selected.map(encodeURIComponent).join(","); } } },
        "Compare selected");
      main.replaceChildren(
        SR.el("div", { class: "filters" },
          SR.el("input", { type: "search", placeholder: "search names, ids, notes", value: filters.q, "aria-label": "search",
            on: { input: (ev) => { filters.q = ev.target.value; fill(); } } }),
          choice("project", "project", SR.runs.map((r) => r.project)),
          choice("group", "group", SR.runs.map((r) => r.group)),
          choice("tag", "tag", SR.runs.flatMap((r) => r.tags || [])),
          choice("state", "state", SR.runs.map((r) => r.state)),
          compare, counter),
        SR.el("table", { class: "grid", id: "runs-table" },
          SR.el("thead", {}, SR.el("tr", {}, ["", "id", "name", "project", "group", "tags", "state", "rows", "last step", "age"]
            .map((h) => SR.el("th", {}, h)))), tbody));
      if (body.root) main.append(SR.el("p", { class: "muted" }, "runs under " + body.root));
      fill();
    },
    async update() {
      const body = await SR.api("/api/runs");
      SR.runs = body.runs || [];
      fill();
    },
  };
})();
