/* The page: tabs in the URL (#charts?runs=a,b), and live updates: every second the
 * selected runs' stamps are polled and a changed run's new rows are drawn in place. */
"use strict";
(function () {
  let current = null;
  let busy = false;
  const stamps = {};

  function parse() {
    const [view, query] = location.hash.replace(/^#/, "").split("?");
    const params = new URLSearchParams(query || "");
    const runs = (params.get("runs") || "").split(",").filter(Boolean);
    return { view: SR.views[view] ? view : null, runs };
  }

  SR.saveHash = function () {
    const { view } = parse();
    const h = "#" + (view || "runs") + (SR.selected.length ? "?runs=" + SR.selected.map(encodeURIComponent).join(",") : "");
    history.replaceState(null, "", h);
  };

  /* Views other than Runs need a run: the newest one when none was chosen. */
  SR.ensureSelection = async function () {
    if (SR.selected.length) return;
    if (SR.embed) { SR.selected = SR.embed.runs.slice(); return; }
    if (!SR.runs.length) SR.runs = (await SR.api("/api/runs")).runs || [];
    if (SR.runs.length) SR.selected = [SR.runs[0].id];
    SR.saveHash();
  };

  async function render() {
    const { view, runs } = parse();
    const name = view || (SR.embed ? "charts" : "runs");
    if (runs.length) SR.selected = runs;
    current = name;
    for (const a of document.querySelectorAll("#tabs a")) {
      a.classList.toggle("active", a.dataset.view === name);
      const q = SR.selected.length ? "?runs=" + SR.selected.map(encodeURIComponent).join(",") : "";
      a.setAttribute("href", "#" + a.dataset.view + q);
    }
    const main = document.getElementById("view");
    busy = true;
    try { await SR.views[name].render(main); }
    catch (e) { main.replaceChildren(SR.el("p", { class: "notice" }, "Could not show this view: " + e.message)); }
    finally { busy = false; }
    for (const id of SR.selected) if (SR.payloads[id]) stamps[id] = SR.payloads[id].stamp;
  }

  async function poll() {
    if (busy || document.hidden) return;
    const changed = [];
    try {
      if (current === "runs") { await SR.views.runs.update(); return; }
      if (current === "logs") { // new lines come without new rows: look again each tick
        busy = true;
        try { await SR.views.logs.render(document.getElementById("view"), true); } finally { busy = false; }
        return;
      }
      for (const id of SR.selected) {
        const s = await SR.api("/api/run/" + encodeURIComponent(id) + "/stamp");
        if (stamps[id] !== undefined && s.stamp !== stamps[id]) changed.push(id);
        stamps[id] = s.stamp;
      }
      if (changed.length && current === "charts") {
        busy = true;
        try { await SR.views.charts.update(changed); } finally { busy = false; }
      }
      document.getElementById("live").textContent = "live · checked " + new Date().toLocaleTimeString();
    } catch (e) {
      document.getElementById("live").textContent = "live updates paused: " + e.message;
    }
  }

  window.addEventListener("hashchange", render);
  if (SR.embed) {
    document.getElementById("live").textContent = "report (a snapshot; open `steadyrun ui` for live runs)";
  } else {
    setInterval(poll, 1000);
  }
  render();
})();
