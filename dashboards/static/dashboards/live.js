// Live progress on job pages: poll the job's API resource and update the page in place.
// No inline scripts anywhere, so the Content-Security-Policy can forbid them.
"use strict";
(function () {
  const DONE = ["succeeded", "failed", "cancelled"];
  const FORMAT = {
    fixed4: (v) => (v === null || v === undefined ? "" : Number(v).toFixed(4)),
    round: (v) => (v === null || v === undefined ? "" : String(Math.round(v))),
    text: (v) => (v === null || v === undefined ? "" : String(v)),
  };

  async function getJSON(url) {
    const r = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  }

  // <section data-live="/api/v1/...-runs/7/" data-state="running"> with [data-field] inside:
  // a <progress> takes the number, anything else the (formatted) text; reload once done.
  function job(el) {
    async function tick() {
      let data;
      try { data = await getJSON(el.dataset.live); } catch (e) { return; }
      for (const f of el.querySelectorAll("[data-field]")) {
        const value = data[f.dataset.field];
        if (f.tagName === "PROGRESS") f.value = value;
        else f.textContent = (FORMAT[f.dataset.format] || FORMAT.text)(value);
        if (f.dataset.field === "state") f.className = "state-" + value;
      }
      if (DONE.includes(data.state)) { location.reload(); return; }
      setTimeout(tick, 1000);
    }
    if (!DONE.includes(el.dataset.state)) setTimeout(tick, 1000);
  }

  // A takedown's remediation runs and verification: bars per run; reload when the request or
  // its verification moves on, or when the last run ends.
  function takedown(el) {
    const base = el.dataset.liveTakedown;
    const started = el.dataset.started;
    async function tick() {
      let runs, request;
      try { [runs, request] = await Promise.all([getJSON(base + "runs/"), getJSON(base)]); }
      catch (e) { return; }
      let active = false;
      for (const run of runs) {
        const bar = document.getElementById("run-" + run.id);
        if (bar) bar.value = run.percent;
        const state = document.getElementById("run-" + run.id + "-state");
        if (state) state.textContent = run.state;
        if (run.state === "queued" || run.state === "running") active = true;
      }
      const v = request.verification || {};
      const bar = document.getElementById("verification");
      if (bar && v.total) { bar.max = v.total; bar.value = v.position; }
      if (request.state + "|" + (v.state || "") !== started || (!active && !v.state)) {
        location.reload();
        return;
      }
      setTimeout(tick, 1500);
    }
    setTimeout(tick, 1500);
  }

  // <section data-live-part="/staff/?part=jobs">: the server renders the section again; poll it
  // every 2 s while its first element says jobs are active, every 15 s otherwise.
  function part(el) {
    async function tick() {
      try {
        const r = await fetch(el.dataset.livePart, {credentials: "same-origin"});
        if (r.ok) el.innerHTML = await r.text();
      } catch (e) { /* the next tick tries again */ }
      const first = el.firstElementChild;
      const active = first && Number(first.dataset.active || 0) > 0;
      setTimeout(tick, active ? 2000 : 15000);
    }
    const first = el.firstElementChild;
    setTimeout(tick, first && Number(first.dataset.active || 0) > 0 ? 2000 : 15000);
  }

  document.querySelectorAll("[data-live]").forEach(job);
  document.querySelectorAll("[data-live-part]").forEach(part);
  document.querySelectorAll("[data-live-takedown]").forEach(takedown);
})();
