"use strict";
// The links as a tile map (SVG): one tile per state, coloured by the state of
// its control terminal's link; DC, Canada, Mexico, AX (ICE LESC, DHS LEIS) and
// NL (the switch) as tiles of their own; other links (agencies, services) as
// chips below. Every tile and chip has data-ori and data-state for the tests.
// Directory facts (role, simulated) come from /dashboard/directory.json.
(function () {
  const TILES = [
    ["AK", 0, 0], ["ME", 11, 0],
    ["WI", 6, 1], ["VT", 10, 1], ["NH", 11, 1],
    ["WA", 1, 2], ["ID", 2, 2], ["MT", 3, 2], ["ND", 4, 2], ["MN", 5, 2], ["IL", 6, 2],
    ["MI", 7, 2], ["NY", 9, 2], ["MA", 10, 2],
    ["OR", 1, 3], ["NV", 2, 3], ["WY", 3, 3], ["SD", 4, 3], ["IA", 5, 3], ["IN", 6, 3],
    ["OH", 7, 3], ["PA", 8, 3], ["NJ", 9, 3], ["CT", 10, 3], ["RI", 11, 3],
    ["CA", 1, 4], ["UT", 2, 4], ["CO", 3, 4], ["NB", 4, 4], ["MO", 5, 4], ["KY", 6, 4],
    ["WV", 7, 4], ["VA", 8, 4], ["MD", 9, 4], ["DE", 10, 4],
    ["AZ", 2, 5], ["NM", 3, 5], ["KS", 4, 5], ["AR", 5, 5], ["TN", 6, 5], ["NC", 7, 5],
    ["SC", 8, 5], ["DC", 9, 5],
    ["OK", 4, 6], ["LA", 5, 6], ["MS", 6, 6], ["AL", 7, 6], ["GA", 8, 6],
    ["HI", 0, 7], ["TX", 4, 7], ["FL", 9, 7],
    // Not states: Canada, Mexico, the switch's services.
    ["CN", 0, 9, "Canada"], ["MX", 1, 9, "Mexico"], ["AX", 3, 9, "ICE LESC / DHS LEIS"],
    ["NL", 4, 9, "NL0000000 (the switch)"],
  ];
  const SIZE = 46, GAP = 4, NS = "http://www.w3.org/2000/svg";
  let directory = [];          // [{ori, state, role, simulated, name}]
  const tileOri = new Map();   // tile code -> the ORI whose link colours it

  function svg(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  function build(root) {
    const w = 12 * (SIZE + GAP), h = 10 * (SIZE + GAP);
    const map = svg("svg", {id: "map", viewBox: `0 0 ${w} ${h}`, role: "img",
                            "aria-label": "links by state"});
    for (const [code, x, y, title] of TILES) {
      const g = svg("g", {class: "tile", "data-tile": code, transform:
                          `translate(${x * (SIZE + GAP)},${y * (SIZE + GAP)})`});
      g.append(svg("rect", {width: SIZE, height: SIZE, rx: 6}));
      g.append(svg("text", {x: SIZE / 2, y: SIZE / 2 + 1, "text-anchor": "middle",
                            "dominant-baseline": "middle"}, code));
      g.append(svg("title", {}, title || code));
      map.append(g);
    }
    root.insertBefore(map, document.getElementById("other-links"));
  }

  function tileFor(entry) {
    if (entry.ori === "NL0000000") return "NL";
    if (entry.role === "service" || entry.ori.startsWith("VTICE")) return "AX";
    if (entry.role === "control_terminal") return entry.state;
    return null;
  }

  async function load() {
    try {
      const r = await fetch("dashboard/directory.json");
      directory = (await r.json()).entries;
    } catch (e) { directory = []; }
    tileOri.clear();
    for (const e of directory) {
      const t = tileFor(e);
      if (t && !tileOri.has(t)) tileOri.set(t, e.ori);
    }
    tileOri.set("NL", "NL0000000");
  }

  // links: Map ORI -> {ori, state, kind}
  function render(links) {
    const byOri = new Map(directory.map((e) => [e.ori, e]));
    for (const g of document.querySelectorAll("#map g.tile")) {
      const code = g.getAttribute("data-tile");
      const ori = tileOri.get(code);
      const l = ori ? links.get(ori) : null;
      const entry = ori ? byOri.get(ori) : null;
      const state = code === "NL" ? "online" : l ? l.state : ori ? "offline" : "none";
      g.setAttribute("data-state", state);
      if (ori) g.setAttribute("data-ori", ori); else g.removeAttribute("data-ori");
      g.setAttribute("data-simulated", entry && entry.simulated ? "true" : "false");
      g.querySelector("title").textContent = (ori ? `${ori} ` : `${code} `) + state +
        (entry && entry.simulated ? " (simulated by the switch)" : "");
    }
    // Links without a tile of their own: agencies, other services.
    const chips = document.getElementById("other-links");
    chips.replaceChildren();
    const tiled = new Set(tileOri.values());
    const rest = [...links.values()].filter((l) => !tiled.has(l.ori))
      .sort((a, b) => a.ori.localeCompare(b.ori));
    for (const l of rest) {
      const c = document.createElement("span");
      c.className = "chip " + l.state;
      c.setAttribute("data-ori", l.ori);
      c.setAttribute("data-state", l.state);
      c.title = `${l.ori} ${l.state}${l.kind ? " (" + l.kind + ")" : ""}`;
      c.textContent = l.ori;
      chips.append(c);
    }
    const online = [...links.values()].filter((l) => l.state === "online").length;
    document.getElementById("map-summary").textContent =
      `${online} of ${links.size} links online`;
  }

  window.linkMap = {build, load, render};
})();
