// The cluster page: renders each "state" event of /events into the page. Text goes in
// through textContent only; the charts are the server's SVG, shown as images.
"use strict";

let serverSkew = 0; // server clock minus ours, ms

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function ago(ms) {
  if (ms === null || ms === undefined) return "since start";
  let s = Math.max(0, Math.round((Date.now() + serverSkew - ms) / 1000));
  if (s < 120) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 120) return m + " min";
  const h = Math.floor(m / 60);
  return h < 48 ? h + " h " + (m % 60) + " min" : Math.floor(h / 24) + " d";
}

function renderMembers(snap) {
  const bySub = new Map();
  for (const m of snap.members) {
    if (!bySub.has(m.subcluster)) bySub.set(m.subcluster, []);
    bySub.get(m.subcluster).push(m);
  }
  const root = document.getElementById("subclusters");
  const frag = document.createDocumentFragment();
  for (const [sc, members] of [...bySub.entries()].sort()) {
    const up = members.filter((m) => m.state === "up").length;
    frag.appendChild(el("h3", {}, sc + " — " + up + " of " + members.length + " up"));
    const table = el("table", { class: "members", "data-subcluster": sc });
    const head = el("tr");
    for (const h of ["Member", "Role", "Address", "State", "For", "Incarnation"]) head.appendChild(el("th", {}, h));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const m of members) {
      const tr = el("tr", { "data-member": m.name, "data-state": m.state });
      tr.appendChild(el("td", {}, m.name));
      tr.appendChild(el("td", {}, m.role));
      tr.appendChild(el("td", {}, m.address));
      tr.appendChild(el("td", { class: "state " + m.state }, m.state));
      tr.appendChild(el("td", { class: "since", "data-since": m.since === null ? "" : m.since }, ago(m.since)));
      tr.appendChild(el("td", {}, m.incarnation));
      body.appendChild(tr);
    }
    table.appendChild(body);
    frag.appendChild(table);
  }
  root.replaceChildren(frag);
  const up = snap.members.filter((m) => m.state === "up").length;
  document.getElementById("summary").textContent = up + " of " + snap.members.length + " members up";
  document.getElementById("manager").textContent = snap.manager ? "— " + snap.manager : "";
}

function renderDuravip(snap) {
  const body = document.querySelector("#duravip tbody");
  body.replaceChildren();
  if (snap.duravip.length === 0) {
    const tr = el("tr");
    tr.appendChild(el("td", { colspan: 4, class: "sub" }, "No DuraVIP bindings in the manager's configuration."));
    body.appendChild(tr);
  }
  for (const v of snap.duravip) {
    const tr = el("tr", v.owner ? { "data-vip": v.address, "data-owner": v.owner } : { "data-vip": v.address });
    tr.appendChild(el("td", {}, v.address));
    tr.appendChild(el("td", {}, v.binding));
    // Who holds it, as the nodes report to the manager: one holder, a conflict (two or
    // more hold it), a node still acquiring it, or nobody.
    const held = v.holders.filter((h) => h.state === "held").map((h) => h.name);
    const acquiring = v.holders.filter((h) => h.state === "acquiring").map((h) => h.name);
    let owner = v.owner || "none";
    if (v.conflict) owner = "conflict: " + held.join(", ");
    else if (!v.owner && acquiring.length > 0) owner = "acquiring: " + acquiring.join(", ");
    tr.appendChild(el("td", { class: v.conflict ? "error" : v.owner ? "" : "sub" }, owner));
    const cands = v.candidates.map((c) => (c === v.preferred ? c + " (preferred)" : c)).join(", ");
    tr.appendChild(el("td", {}, cands || "every node"));
    body.appendChild(tr);
  }
}

function renderOperations(snap) {
  document.getElementById("sequenced").textContent =
    snap.sequenced + " operation(s) sequenced this epoch; the latest command first.";
  const root = document.getElementById("operations");
  const frag = document.createDocumentFragment();
  if (snap.operations.length === 0) frag.appendChild(el("p", { class: "sub" }, "No operation yet."));
  for (const op of snap.operations) {
    const h = el("h3", {});
    h.appendChild(el("code", {}, op.command));
    h.appendChild(document.createTextNode("  (" + op.op + ")"));
    frag.appendChild(h);
    const table = el("table", { class: "answers" });
    const body = el("tbody");
    for (const a of op.answers) {
      const tr = el("tr", { "data-node": a.node, "data-status": a.status });
      tr.appendChild(el("td", {}, a.node));
      tr.appendChild(el("td", { class: a.status.replace(" ", "-") }, a.status + (a.op !== op.op ? " (" + a.op + ")" : "")));
      const td = el("td");
      td.appendChild(el("pre", {}, a.body));
      tr.appendChild(td);
      body.appendChild(tr);
    }
    table.appendChild(body);
    frag.appendChild(table);
  }
  root.replaceChildren(frag);
}

function renderConfigs(snap) {
  document.getElementById("revisions").textContent = snap.revisions.length
    ? "Newest revisions: " + snap.revisions.join(", ")
    : "No revision announced by the configuration repository yet.";
  const body = document.querySelector("#configs tbody");
  body.replaceChildren();
  for (const c of snap.configs) {
    const tr = el("tr");
    tr.appendChild(el("td", {}, c.node));
    tr.appendChild(el("td", {}, c.running || "—"));
    tr.appendChild(el("td", { class: c.current ? "ok" : "pending" }, c.current ? "current" : c.error || "behind"));
    body.appendChild(tr);
  }
}

function chart(id, svg) {
  if (svg) document.getElementById(id).src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
}

function render(event) {
  serverSkew = event.at - Date.now();
  const snap = event.snapshot;
  renderMembers(snap);
  renderDuravip(snap);
  renderOperations(snap);
  renderConfigs(snap);
  chart("chart-members", event.charts.members);
  chart("chart-operations", event.charts.operations);
}

function status(cls, text) {
  const live = document.getElementById("live");
  live.className = "live " + cls;
  live.textContent = text;
}

function connect() {
  const source = new EventSource("/events");
  source.addEventListener("state", (e) => {
    status("on", "live");
    render(JSON.parse(e.data));
  });
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (the session ended) or the manager is gone: ask whether we are still in.
      fetch("/data", { credentials: "same-origin" }).then((r) => {
        if (r.status === 401) {
          const live = document.getElementById("live");
          live.className = "live off";
          live.replaceChildren(el("a", { href: "/login" }, "session ended — log in"));
        } else {
          status("connecting", "reconnecting…");
          setTimeout(connect, 2000);
        }
      }, () => {
        status("off", "manager unreachable — retrying");
        setTimeout(connect, 2000);
      });
    } else {
      status("connecting", "reconnecting…");
    }
  });
}

setInterval(() => {
  for (const td of document.querySelectorAll("td.since")) {
    const v = td.getAttribute("data-since");
    td.textContent = ago(v === "" ? null : Number(v));
  }
}, 1000);

connect();
