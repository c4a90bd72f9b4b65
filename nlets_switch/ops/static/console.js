"use strict";
// The operator console parts of the dashboard: charts (uPlot, vendored), the
// message browser and the queues with their actions. dashboard.html feeds it
// the stats and events it gets over Server-Sent Events (window.consoleFeed).
// API calls carry the token typed in the header (kept for this tab only).
(function () {
  const HOUR = 3600;
  const $ = (id) => document.getElementById(id);
  const t0 = () => Date.now() / 1000;

  // -- the API ----------------------------------------------------------------
  function token() { return sessionStorage.getItem("nlets-token") || ""; }
  async function api(method, path, body) {
    const headers = {"Accept": "application/json"};
    if (token()) headers["Authorization"] = "Bearer " + token();
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
    let data = {};
    try { data = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) throw new Error(data.error || `HTTP ${r.status}`);
    return data;
  }
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }
  const when = (iso) => iso ? new Date(iso).toLocaleTimeString() : "";

  // -- charts -------------------------------------------------------------------
  // One point per stats message (every second), kept for an hour in the page.
  const series = {t: [], keys: new Map(), p50: [], p99: [], er: [], sm: []};
  let lastStats = null, latencies = [];
  const charts = {};
  const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf",
                  "#ff7b72", "#e3b341"];

  function opts(title, names, width) {
    return {
      title, width, height: 170, legend: {show: true},
      // At least the last five minutes across, however few points there are yet.
      scales: {x: {time: true, range: (u, min, max) => [Math.min(min, max - 300), max]},
               y: {range: (u, min, max) => [0, Math.max(1, max * 1.15)]}},
      axes: [{stroke: "#7b8794", grid: {stroke: "#2d333b"}},
             {stroke: "#7b8794", grid: {stroke: "#2d333b"}, size: 50}],
      series: [{}, ...names.map((n, i) => ({label: n, stroke: COLORS[i % COLORS.length],
                                             width: 1.5, spanGaps: true,
                                             points: {show: (u) => u.data[0].length < 30}}))],
    };
  }

  function draw(id, title, names, data) {
    const box = $(id);
    const width = Math.max(280, box.clientWidth - 8);
    const sig = names.join(",");
    if (!charts[id] || charts[id].sig !== sig) {
      if (charts[id]) charts[id].plot.destroy();
      charts[id] = {sig, plot: new uPlot(opts(title, names, width), data, box)};
    } else {
      charts[id].plot.setData(data);
    }
    // For tests and a quick look: the largest value shown.
    let max = 0;
    for (const s of data.slice(1)) for (const v of s) if (v != null && v > max) max = v;
    box.setAttribute("data-max", String(max));
    box.setAttribute("data-points", String(data[0].length));
  }

  function pct(sorted, p) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  }

  let reviewed = 0;
  function onStats(st) {
    // A message held for review counts as outcome "review": read the queue when it moves.
    const r = Object.values(st.messages || {}).reduce((a, o) => a + (o.review || 0), 0);
    if (r !== reviewed) { reviewed = r; soon(); }
    if (lastStats && st.ts > lastStats.ts) {
      const dt = st.ts - lastStats.ts;
      series.t.push(st.ts);
      const tot = (s) => {
        const out = {};
        for (const [k, o] of Object.entries(s.messages || {})) {
          out[k] = Object.values(o).reduce((a, b) => a + b, 0);
        }
        return out;
      };
      const now = tot(st), before = tot(lastStats);
      for (const k of Object.keys(now)) {
        if (!series.keys.has(k)) series.keys.set(k, series.t.slice(0, -1).map(() => 0));
      }
      for (const [k, arr] of series.keys) arr.push(Math.max(0, ((now[k] || 0) - (before[k] || 0)) / dt));
      const sorted = latencies.sort((a, b) => a - b);
      series.p50.push(pct(sorted, 0.5));
      series.p99.push(pct(sorted, 0.99));
      latencies = [];
      series.er.push(Math.max(0, (st.er - lastStats.er) / dt));
      series.sm.push(Math.max(0, (st.sm - lastStats.sm) / dt));
      while (series.t.length && series.t[0] < st.ts - HOUR) {
        series.t.shift(); series.p50.shift(); series.p99.shift();
        series.er.shift(); series.sm.shift();
        for (const arr of series.keys.values()) arr.shift();
      }
      redraw();
    }
    lastStats = st;
  }

  function redraw() {
      const keys = [...series.keys.keys()].sort();
      draw("chart-rate", "messages/s by key", keys.length ? keys : ["-"],
           [series.t, ...(keys.length ? keys.map((k) => series.keys.get(k))
                                      : [series.t.map(() => 0)])]);
      draw("chart-latency", "round trip (ms): p50, p99", ["p50", "p99"], [series.t,
           series.p50.map((v) => v == null ? null : v * 1000),
           series.p99.map((v) => v == null ? null : v * 1000)]);
      draw("chart-ersm", "ER and SM per second", ["ER/s", "SM/s"], [series.t, series.er, series.sm]);
  }

  function onEvent(ev) {
    if (ev.event === "delivered" && ev.latency_s != null) latencies.push(ev.latency_s);
    // The event comes as the message is accepted, a moment before its rows are
    // durable and readable: the queue is read a little later.
    if (ev.event === "review" || ev.event === "operator") soon();
    // Another operator's remove status shows here too.
    if (ev.event === "operator" && /remove_status$/.test(ev.action)) loadRemoved();
  }

  let timer = null;
  function soon() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => { timer = null; loadQueue(); }, 300);
  }

  // -- the message browser ----------------------------------------------------------
  async function search(e) {
    if (e) e.preventDefault();
    const q = new URLSearchParams();
    for (const name of ["ori", "key", "since", "text"]) {
      const v = $("s-" + name).value.trim();
      if (v) q.set(name, v);
    }
    q.set("limit", "50");
    const out = $("results").tBodies[0];
    out.replaceChildren();
    try {
      const r = await api("GET", "api/messages?" + q);
      for (const m of r.messages) {
        out.append(el("tr", {"data-msg-id": String(m.id), class: "clickable",
                             onclick: () => openMessage(m.id)},
          el("td", {}, String(m.id)), el("td", {}, when(m.received_at)), el("td", {}, m.key || ""),
          el("td", {}, m.origin || m.link), el("td", {}, (m.destinations || []).join(",")),
          el("td", {}, m.status)));
      }
      if (!r.messages.length) out.append(el("tr", {}, el("td", {colspan: "6", class: "empty"}, "nothing found")));
    } catch (err) {
      out.append(el("tr", {}, el("td", {colspan: "6", class: "error"}, err.message)));
    }
  }

  async function openMessage(id) {
    const box = $("message");
    box.replaceChildren(el("p", {class: "empty"}, "loading"));
    let m;
    try { m = await api("GET", "api/messages/" + id); }
    catch (err) { box.replaceChildren(el("p", {class: "error"}, err.message)); return; }
    const life = el("ol", {id: "life"});
    life.append(el("li", {"data-step": "received"},
      `${when(m.received_at)} received ${m.key || ""} from ${m.origin || m.link} (input ${m.input_no})` +
      (m.status !== "accepted" ? ` — ${m.status}${m.reason ? ": " + m.reason : ""}` : "")));
    for (const d of m.deliveries) {
      // A delivery an operator released or edited was held for review (rules).
      const [step, first] = ["review", "released", "edited"].includes(d.state)
        ? ["review", "held for review"] : d.held ? ["held", "held"] : ["routed", "routed"];
      life.append(el("li", {"data-step": step},
        `${when(d.created_at)} ${first} to ${d.addressed} (${d.receiver}, output ${d.output_no})`));
      if (d.sent_at) life.append(el("li", {"data-step": "sent"}, `${when(d.sent_at)} sent to ${d.link}`));
      const done = {acked: "acknowledged by", refused: "refused by", expired: "expired for"};
      if (d.done_at) life.append(el("li", {"data-step": d.state}, `${when(d.done_at)} ` +
        (done[d.state] ? `${done[d.state]} ${d.receiver}` : `${d.state} by an operator (${d.receiver})`)));
    }
    for (const c of m.caused) {
      life.append(el("li", {"data-step": c.key}, `${when(c.received_at)} ${c.key} to ${c.receiver}: ${c.code}`));
    }
    const text = "text" in m ? el("pre", {id: "message-text"}, m.text)
                             : el("p", {id: "message-text", class: "empty"}, "text withheld: this token may not see message text");
    box.replaceChildren(el("h3", {}, `message ${m.id}`), life, text,
      el("button", {onclick: () => act("POST", `api/messages/${m.id}/resend`, {}), "data-action": "resend"}, "resend"));
  }

  // -- the queues ---------------------------------------------------------------------
  function inputs() {
    return {reason: $("q-reason").value.trim(), to: $("q-to").value.trim(), text: $("q-text").value};
  }

  async function act(method, path, body) {
    const res = $("q-result");
    res.textContent = "";
    let text, cls;
    try {
      const r = await api(method, path, Object.assign({reason: inputs().reason}, body));
      cls = "ok";
      text = `${r.action} done` + (r.edited_msg_id ? `: message ${r.edited_msg_id} waits for review` : "");
      // A held queue's release: what went now, what stays owed until the destination signs on.
      if (r.released) text += `: ${r.delivered.length} sent now, ${r.released.length - r.delivered.length} owed until it signs on`;
    } catch (err) {
      cls = "error";
      text = err.message;
    }
    // The queue is shown as it is after the action before the outcome is.
    await loadQueue();
    if (heldOpen) await loadHeld(heldOpen);
    res.className = cls;
    res.textContent = text;
  }

  async function loadQueue() {
    const body = $("queue").tBodies[0];
    let r;
    try { r = await api("GET", "api/queue"); }
    catch (err) { body.replaceChildren(el("tr", {}, el("td", {colspan: "6", class: "error"}, err.message))); return; }
    body.replaceChildren();
    const links = new Map();
    for (const it of r.queue) links.set(it.link, (links.get(it.link) || 0) + 1);
    reviewLinks = links;
    for (const it of r.queue) {
      const btn = (name, extra) => el("button", {"data-action": name, onclick: () => {
        const b = extra ? extra() : {};
        if (b) act("POST", `api/queue/${it.id}/${name}`, b);
      }}, name);
      body.append(el("tr", {"data-id": String(it.id), "data-msg-id": String(it.msg_id)},
        el("td", {}, String(it.id)), el("td", {}, it.key), el("td", {}, it.origin),
        el("td", {}, it.to), el("td", {class: "clickable", onclick: () => openMessage(it.msg_id)}, "open"),
        el("td", {}, btn("release"), btn("edit", () => ({text: inputs().text})),
           btn("reroute", () => ({to: inputs().to})), btn("purge"))));
    }
    if (!r.queue.length) body.append(el("tr", {}, el("td", {colspan: "6", class: "empty"}, "nothing waits for review")));
  }

  // Items of the intervention queue per destination link, as last read (the held table).
  let reviewLinks = new Map();
  function reviewByLink() { return reviewLinks; }

  // One destination's held queue, delivery by delivery (opened from its name).
  let heldOpen = null;
  function heldName(dest) {
    return el("span", {class: "clickable", title: "its deliveries, one by one",
                       onclick: () => loadHeld(dest)}, dest);
  }

  async function loadHeld(dest) {
    heldOpen = dest;
    const box = $("held-items");
    let r;
    try { r = await api("GET", `api/held/${dest}`); }
    catch (err) { box.replaceChildren(el("p", {class: "error"}, err.message)); return; }
    const body = el("tbody", {});
    for (const it of r.held) {
      const btn = (name, extra) => el("button", {"data-action": name, onclick: () =>
        act("POST", `api/deliveries/${it.id}/${name}`, extra ? extra() : {})}, name);
      body.append(el("tr", {"data-id": String(it.id), "data-state": it.state},
        el("td", {}, String(it.id)), el("td", {}, it.key), el("td", {}, it.origin),
        el("td", {}, it.state),
        el("td", {}, btn("release"), btn("reroute", () => ({to: inputs().to})), btn("purge"))));
    }
    if (!r.held.length) body.append(el("tr", {}, el("td", {colspan: "5", class: "empty"}, `nothing waits for ${dest}`)));
    box.replaceChildren(el("h3", {}, `Held for ${dest}`),
      el("table", {id: "held-list", "data-dest": dest},
         el("thead", {}, el("tr", {}, ...["ID", "Key", "From", "State", ""].map((h) => el("th", {}, h)))),
         body));
  }

  function heldActions(dest) {
    return el("span", {},
      el("button", {"data-action": "release", onclick: () => act("POST", `api/held/${dest}/release`, {})}, "release"),
      el("button", {"data-action": "reroute", onclick: () => act("POST", `api/held/${dest}/reroute`, {to: inputs().to})}, "reroute"),
      el("button", {"data-action": "purge", onclick: () => act("POST", `api/held/${dest}/purge`, {})}, "purge"));
  }

  // -- remove status and broadcasts -----------------------------------------------
  async function control(path, body) {
    const res = $("c-result");
    res.textContent = "";
    let text, cls;
    try {
      const r = await api("POST", path, Object.assign({reason: $("c-reason").value}, body));
      cls = "ok";
      text = r.action === "broadcast" ? `broadcast sent to ${r.to.length} terminal(s)`
                                      : `${r.action} done: ${r.ori}`;
    } catch (err) {
      cls = "error";
      text = err.message;
    }
    await loadRemoved();
    res.className = cls;
    res.textContent = text;
  }

  async function loadRemoved() {
    const body = $("removed").tBodies[0];
    let r;
    try { r = await api("GET", "api/remove-status"); }
    catch (err) { body.replaceChildren(el("tr", {}, el("td", {colspan: "5", class: "error"}, err.message))); return; }
    body.replaceChildren();
    for (const x of r.remove_status) {
      body.append(el("tr", {"data-ori": x.ori}, el("td", {}, x.ori),
        el("td", {}, x.keys ? x.keys.join(", ") : "every key"), el("td", {}, x.operator),
        el("td", {}, x.reason),
        el("td", {}, el("button", {"data-action": "lift", onclick: () =>
          control("api/remove-status", {ori: x.ori, lift: true})}, "lift"))));
    }
    if (!r.remove_status.length) body.append(el("tr", {}, el("td", {colspan: "5", class: "empty"}, "no ORI is on remove status")));
  }

  function initControls() {
    $("c-remove").addEventListener("click", () => {
      const keys = $("c-keys").value.toUpperCase().split(/[\s,]+/).filter(Boolean);
      control("api/remove-status", {ori: $("c-ori").value, keys: keys.length ? keys : null});
    });
    $("c-out").addEventListener("click", () =>
      control("api/broadcast", {kind: "out-of-service", until: $("c-until").value}));
    $("c-in").addEventListener("click", () => control("api/broadcast", {kind: "in-service"}));
  }

  // The hour before the page was opened, as the switch kept it.
  async function loadHistory() {
    try {
      const h = await (await fetch("dashboard/history.json")).json();
      if (!h.t.length || series.t.length) return;
      series.t.push(...h.t);
      for (const [k, v] of Object.entries(h.keys)) series.keys.set(k, v.slice());
      series.p50.push(...h.p50); series.p99.push(...h.p99);
      series.er.push(...h.er); series.sm.push(...h.sm);
      redraw();
    } catch (e) { /* the charts start empty */ }
  }

  function init() {
    loadHistory();
    $("token").value = token();
    $("token").addEventListener("change", () => {
      sessionStorage.setItem("nlets-token", $("token").value.trim());
      loadQueue();
      loadRemoved();
    });
    $("search").addEventListener("submit", search);
    initControls();
    loadQueue();
    loadRemoved();
  }

  window.consoleFeed = {init, onStats, onEvent, heldActions, heldName, reviewByLink, openMessage, loadQueue};
})();
