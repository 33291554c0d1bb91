// racesim swimlane report: draws each run of the embedded data as SVG lanes.
// Everything is built with DOM calls and textContent: no markup from the data.
"use strict";
(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const NAME_W = 128, AXIS_H = 46, LANE_H = 58, LANE_SHUT = 18, STATE_H = 46, HOLDER_H = 24, BADGE_H = 19;
  const SIGN_ICON = { crash: "✖", terminate: "✖", restart: "⟳", fault: "⚡", stuck: "⊘" };
  const SIGN_TEXT = { crash: "crash", terminate: "terminated", restart: "restart", fault: "fault", stuck: "stuck" };

  function el(tag, attrs, text) {
    const n = document.createElement(tag);
    for (const k in attrs || {}) n.setAttribute(k, attrs[k]);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function sv(tag, attrs, text) {
    const n = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) n.setAttribute(k, attrs[k]);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function fit(text, px, size) {
    const room = Math.floor(px / (size * 0.58));
    if (room <= 1) return "";
    return text.length <= room ? text : text.slice(0, room - 1) + "…";
  }
  function wrap(text, px, size, lines) {
    const room = Math.max(4, Math.floor(px / (size * 0.62)));
    const out = [];
    let cur = "";
    for (const word of text.split(" ")) {
      const next = cur ? cur + " " + word : word;
      if (next.length <= room) { cur = next; continue; }
      if (cur) out.push(cur);
      cur = word;
    }
    if (cur) out.push(cur);
    if (out.length > lines) { out.length = lines; out[lines - 1] = fit(out[lines - 1] + " …", px, size); }
    return out.map(function (l) { return fit(l, px, size); });
  }
  function seconds(iso) { return iso ? Date.parse(iso) / 1000 : null; }

  function defs(svg) {
    const d = sv("defs");
    const hatch = sv("pattern", { id: "rs-hatch", width: 8, height: 8, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    hatch.appendChild(sv("rect", { width: 8, height: 8, fill: "#fff1d6" }));
    hatch.appendChild(sv("line", { x1: 0, y1: 0, x2: 0, y2: 8, stroke: "#c98a1c", "stroke-width": 3 }));
    const cross = sv("pattern", { id: "rs-cross", width: 7, height: 7, patternUnits: "userSpaceOnUse" });
    cross.appendChild(sv("rect", { width: 7, height: 7, fill: "#f6dede" }));
    cross.appendChild(sv("path", { d: "M0 0L7 7M7 0L0 7", stroke: "#b55", "stroke-width": 1 }));
    d.appendChild(hatch);
    d.appendChild(cross);
    svg.appendChild(d);
  }

  function Run(data, host) {
    this.d = data;
    this.shut = {};
    this.mode = "order";
    this.selected = null;
    this.host = host;
    const n = Math.max(1, data.events.length);
    this.colW = Math.max(30, Math.min(130, Math.floor(((host.clientWidth || 1100) - NAME_W - 30) / n)));
    this.build();
  }

  Run.prototype.build = function () {
    const d = this.d, self = this;
    const sec = el("section", { class: "run", "data-store": d.store });
    sec.appendChild(el("h2", {}, d.title));
    const meta = el("p", { class: "meta" });
    meta.appendChild(el("code", {}, d.path));
    meta.appendChild(document.createTextNode("  ·  store " + d.store + "  ·  " + d.events.length + " events, " + d.lanes.length + " lanes"));
    sec.appendChild(meta);
    const verdict = el("p", { class: "summary" });
    const tag = d.verdict.tag;
    verdict.appendChild(el("span", { class: "verdict " + tag }, tag === "ok" ? "✔ ok" : tag === "FAIL" ? "✘ FAIL" : "– skip"));
    verdict.appendChild(document.createTextNode(d.verdict.summary));
    sec.appendChild(verdict);
    const all = [];
    d.events.forEach(function (e, i) { e.violations.forEach(function (v) { all.push([i, v]); }); });
    if (all.length) {
      const ol = el("ol", { class: "violations" });
      all.forEach(function (p) {
        const e = d.events[p[0]], v = p[1];
        const li = el("li", { tabindex: 0, "data-event": p[0] });
        li.appendChild(el("span", { class: "inv" }, "⚠ " + v.invariant));
        li.appendChild(el("span", { class: "where" }, "  at " + (v.label || "event " + v.seq) + ", " + e.actor + ": " + e.call + "  "));
        li.appendChild(document.createTextNode(v.message));
        li.addEventListener("click", function () { self.select(p[0]); });
        li.addEventListener("keydown", function (ev) { if (ev.key === "Enter") self.select(p[0]); });
        ol.appendChild(li);
      });
      sec.appendChild(ol);
    }
    sec.appendChild(this.toolbar());
    const layout = el("div", { class: "layout" });
    this.chart = el("div", { class: "chart" });
    this.chart.addEventListener("scroll", function () { self.stick(); });
    layout.appendChild(this.chart);
    this.panel = el("aside", { class: "details" });
    this.panel.appendChild(el("p", { class: "hint" }, "Click a step, a sign (crash, fault, restart) or a state cell for its details. Click a lane's name to fold it."));
    layout.appendChild(this.panel);
    sec.appendChild(layout);
    sec.appendChild(this.table());
    this.host.appendChild(sec);
    this.draw();
  };

  Run.prototype.toolbar = function () {
    const self = this, bar = el("div", { class: "toolbar" });
    const axis = el("fieldset");
    axis.appendChild(el("legend", {}, "time axis"));
    [["order", "schedule order"], ["vtime", "virtual time"]].forEach(function (m) {
      const lab = el("label");
      const r = el("input", { type: "radio", name: "axis-" + self.d.path + self.d.store + self.d.title, value: m[0] });
      if (m[0] === self.mode) r.checked = true;
      r.addEventListener("change", function () { self.mode = m[0]; self.draw(); });
      lab.appendChild(r);
      lab.appendChild(document.createTextNode(" " + m[1]));
      axis.appendChild(lab);
    });
    bar.appendChild(axis);
    const zoom = el("fieldset");
    zoom.appendChild(el("legend", {}, "zoom"));
    [["−", 1 / 1.4], ["+", 1.4]].forEach(function (z) {
      const b = el("button", { type: "button", "aria-label": z[1] > 1 ? "zoom in" : "zoom out" }, z[0]);
      b.addEventListener("click", function () { self.colW = Math.max(10, Math.min(320, Math.round(self.colW * z[1]))); self.draw(); });
      zoom.appendChild(b);
    });
    bar.appendChild(zoom);
    const lanes = el("fieldset");
    lanes.appendChild(el("legend", {}, "lanes"));
    [["fold all", true], ["unfold all", false]].forEach(function (f) {
      const b = el("button", { type: "button" }, f[0]);
      b.addEventListener("click", function () { self.d.lanes.forEach(function (l) { self.shut[l] = f[1]; }); self.draw(); });
      lanes.appendChild(b);
    });
    bar.appendChild(lanes);
    bar.appendChild(this.legend());
    return bar;
  };

  Run.prototype.legend = function () {
    const box = el("div", { class: "legend" });
    function key(draw, label) {
      const s = sv("svg", { width: 26, height: 14 });
      draw(s);
      const span = el("span");
      span.appendChild(s);
      span.appendChild(document.createTextNode(" " + label));
      box.appendChild(span);
    }
    key(function (s) { s.appendChild(sv("rect", { x: 1, y: 1, width: 24, height: 12, fill: "#dce9f8", stroke: "#2f5f98" })); }, "step");
    key(function (s) { s.appendChild(sv("rect", { x: 1, y: 1, width: 24, height: 12, fill: "url(#rs-hatch)", stroke: "#b26a00", "stroke-dasharray": "5 3" })); }, "waiting on a lock");
    key(function (s) { s.appendChild(sv("rect", { x: 1, y: 1, width: 24, height: 12, fill: "url(#rs-cross)", stroke: "#7a1f1f" })); }, "✘ error");
    key(function (s) { s.appendChild(sv("rect", { x: 1, y: 1, width: 24, height: 12, fill: "#fff", stroke: "#c0182a", "stroke-width": 2, "stroke-dasharray": "4 2" })); }, "⚠ violation");
    key(function (s) { s.appendChild(sv("rect", { x: 1, y: 1, width: 24, height: 12, fill: "#fff3c4", stroke: "#a07a00" })); }, "state changed");
    key(function (s) { s.appendChild(sv("path", { d: "M13 0l7 7l-7 7l-7 -7z", fill: "#1d2430" })); }, "✖ crash  ⟳ restart  ⚡ fault  ⊘ stuck");
    key(function (s) { s.appendChild(sv("line", { x1: 13, x2: 13, y1: 0, y2: 14, stroke: "#5b6472", "stroke-width": 1.5, "stroke-dasharray": "2 3" })); }, "◷ clock move");
    return box;
  };

  // x position of every event's column, in schedule order or by virtual time.
  Run.prototype.layoutX = function () {
    const ev = this.d.events, w = this.colW, xs = [];
    let x = NAME_W + 8, prev = null;
    for (let i = 0; i < ev.length; i++) {
      const t = seconds(ev[i].vtime);
      if (this.mode === "vtime" && prev !== null && t !== null && t > prev) {
        x += Math.min(4, Math.log10(1 + (t - prev)) * 1.6) * w;
      }
      if (t !== null) prev = t;
      xs.push(x);
      x += w;
    }
    return { xs: xs, end: x + 12 };
  };

  Run.prototype.draw = function () {
    const d = this.d, self = this, w = this.colW, pos = this.layoutX(), xs = pos.xs;
    const laneY = {}, laneH = {};
    const badges = this.badges(xs, pos.end);
    const lanesTop = AXIS_H + (badges.rows ? badges.rows * BADGE_H + 6 : 0);
    let y = lanesTop;
    d.lanes.forEach(function (l) { laneY[l] = y; laneH[l] = self.shut[l] ? LANE_SHUT : LANE_H; y += laneH[l]; });
    // A run without a watched state (an isolation spec's) or without holders draws no such row.
    const hasState = d.events.some(function (e) { return e.state !== null; });
    const hasHolder = hasState && d.events.some(function (e) { return !!e.holder; });
    const stateH = hasState ? STATE_H : 0, holderH = hasHolder ? HOLDER_H : 0;
    const stateY = y, holderY = y + stateH, height = holderY + holderH + 6;
    const svg = sv("svg", { class: "lanes", width: pos.end, height: height, viewBox: "0 0 " + pos.end + " " + height, role: "img", "aria-label": "swimlanes of " + d.title });
    defs(svg);
    const back = sv("g", { class: "background" });
    d.lanes.forEach(function (l, i) {
      back.appendChild(sv("rect", { class: "lane-bg" + (i % 2 ? " odd" : ""), x: 0, y: laneY[l], width: pos.end, height: laneH[l] }));
    });
    if (hasState) back.appendChild(sv("rect", { class: "lane-bg odd", x: 0, y: stateY, width: pos.end, height: stateH + holderH }));
    svg.appendChild(back);
    if (this.selected !== null) {
      svg.appendChild(sv("rect", { class: "selected-band", x: xs[this.selected], y: 0, width: w, height: height }));
    }
    const grid = sv("g");
    d.events.forEach(function (e, i) { grid.appendChild(sv("line", { class: "grid", x1: xs[i], x2: xs[i], y1: AXIS_H - 6, y2: height })); });
    grid.appendChild(sv("line", { class: "grid", x1: 0, x2: pos.end, y1: lanesTop, y2: lanesTop }));
    svg.appendChild(grid);
    // violation bands behind everything on their column
    d.events.forEach(function (e, i) {
      if (e.violations.length) svg.appendChild(sv("rect", { class: "violation-band", x: xs[i], y: AXIS_H - 4, width: w, height: height - AXIS_H + 4 }));
    });
    svg.appendChild(this.axis(xs));
    const lanesG = sv("g", { class: "lanes-body" });
    d.lanes.forEach(function (l) { lanesG.appendChild(sv("g", { class: "lane", "data-actor": l })); });
    svg.appendChild(lanesG);
    const laneG = {};
    lanesG.childNodes.forEach(function (g) { laneG[g.getAttribute("data-actor")] = g; });
    d.spans.forEach(function (s, k) { laneG[s.actor].appendChild(self.box(s, k, xs, laneY[s.actor], laneH[s.actor])); });
    d.events.forEach(function (e, i) {
      if (e.kind === "clock") svg.appendChild(self.clockMark(e, i, xs, height));
      else if (e.sign) laneG[e.actor].appendChild(self.sign(e, i, xs, laneY[e.actor], laneH[e.actor]));
    });
    badges.items.forEach(function (b) {
      const e = d.events[b.i];
      const lane = laneG[e.actor] ? e.actor : d.lanes[0];
      svg.appendChild(self.violation(b, xs, laneY[lane], laneH[lane]));
    });
    if (hasState) svg.appendChild(this.stateRows(xs, stateY, hasHolder ? holderY : null));
    svg.appendChild(this.names(laneY, laneH, hasState ? stateY : null, hasHolder ? holderY : null, height, badges.rows ? AXIS_H : 0));
    this.chart.replaceChildren(svg);
    this.svg = svg;
    this.stick();
  };

  Run.prototype.axis = function (xs) {
    const d = this.d, w = this.colW, g = sv("g", { class: "axis" });
    // Labels that would run into the one before are left out (zoom in to see them).
    let last = null, lastClock = null, labelEnd = 0, clockEnd = 0;
    d.events.forEach(function (e, i) {
      if (e.label && e.label !== last && xs[i] >= labelEnd) {
        g.appendChild(sv("text", { class: "axis-label", x: xs[i] + 4, y: 17 }, e.label));
        last = e.label;
        labelEnd = xs[i] + 4 + e.label.length * 7.5 + 6;
      }
      if (e.vclock !== lastClock && e.kind !== "clock" && xs[i] >= clockEnd) {
        g.appendChild(sv("text", { class: "axis-time", x: xs[i] + 4, y: 33 }, e.vclock));
        lastClock = e.vclock;
        clockEnd = xs[i] + 4 + e.vclock.length * 6.2 + 6;
      }
    });
    g.appendChild(sv("line", { class: "grid", x1: 0, x2: xs.length ? xs[xs.length - 1] + w : 0, y1: AXIS_H - 4, y2: AXIS_H - 4 }));
    return g;
  };

  Run.prototype.box = function (s, k, xs, top, h) {
    const d = this.d, self = this, w = this.colW, shut = h === LANE_SHUT;
    const first = d.events[s.start], last = d.events[s.end];
    const done = s.waited ? (s.completed ? last : null) : first;
    const bad = (done && done.violations.length) || first.violations.length;
    const g = sv("g", { class: "box" + (s.waited ? " waited" : "") + (s.failed ? " failed" : "") + (bad ? " violated" : ""), tabindex: 0, "data-actor": s.actor, "data-call": s.call, "data-start": s.start, "data-end": s.end });
    const x0 = xs[s.start] + 3, y0 = top + 5, bh = h - 10;
    const endAt = done ? s.end : s.end;
    const x1 = xs[endAt] + w - 3;
    let tip = s.actor + ": " + s.call;
    if (s.waited) {
      const wx1 = s.completed ? xs[s.end] : x1;
      g.appendChild(sv("rect", { class: "waiting", x: x0, y: y0, width: Math.max(2, wx1 - x0), height: bh, rx: 3 }));
      const who = s.blocked_by.length ? s.blocked_by.join(", ") : "another session";
      tip += "\nwaited on " + who + (s.completed ? "" : " (never completed)");
      if (!shut && wx1 - x0 > 30) {
        const label = fit("waits on " + who, wx1 - x0 - 8, 10.5);
        g.appendChild(sv("rect", { class: "pill", x: x0 + 3, y: y0 + bh / 2 - 8, width: Math.min(wx1 - x0 - 6, label.length * 6.3 + 6), height: 15, rx: 3 }));
        g.appendChild(sv("text", { class: "waits", x: x0 + 6, y: y0 + bh / 2 + 3 }, label));
      }
      if (s.completed) g.appendChild(sv("rect", { class: "body", x: xs[s.end] + 1, y: y0, width: w - 4, height: bh, rx: 3 }));
    } else {
      g.appendChild(sv("rect", { class: "body", x: x0, y: y0, width: Math.max(2, x1 - x0), height: bh, rx: 3 }));
    }
    if (done) tip += "\n→ " + done.result;
    if (!shut) {
      const bx = s.waited ? (s.completed ? xs[s.end] + 1 : null) : x0;
      if (bx !== null) {
        const bw = s.waited ? w - 4 : x1 - x0;
        g.appendChild(sv("text", { class: "call", x: bx + 4, y: y0 + 16 }, fit((bad ? "⚠ " : s.failed ? "✘ " : "") + s.call, bw - 6, 12)));
        g.appendChild(sv("text", { class: "res", x: bx + 4, y: y0 + 32 }, fit(done ? done.result : "", bw - 6, 10.5)));
      } else {
        g.appendChild(sv("text", { class: "call", x: x0 + 4, y: y0 + 14 }, fit(s.call, x1 - x0 - 6, 12)));
      }
    }
    g.appendChild(sv("title", {}, tip));
    const at = done ? s.end : s.start;
    g.addEventListener("click", function () { self.select(at); });
    g.addEventListener("keydown", function (ev) { if (ev.key === "Enter") self.select(at); });
    return g;
  };

  Run.prototype.sign = function (e, i, xs, top, h) {
    const self = this, w = this.colW;
    const g = sv("g", { class: "sign " + e.sign, tabindex: 0, "data-event": i });
    const inBox = !(e.kind === "outage" || e.kind === "stuck");
    const cx = xs[i] + (inBox ? w - 8 : w / 2), cy = top + (h === LANE_SHUT ? h / 2 : inBox ? 5 : 12), r = inBox ? 6 : 7;
    g.appendChild(sv("path", { d: "M" + cx + " " + (cy - r) + "l" + r + " " + r + "l-" + r + " " + r + "l-" + r + " -" + r + "z" }));
    if (e.kind === "outage" || e.kind === "stuck") {
      const label = (SIGN_ICON[e.sign] || "◆") + " " + (SIGN_TEXT[e.sign] || e.sign);
      if (h !== LANE_SHUT) {
        g.appendChild(sv("text", { x: xs[i] + 4, y: top + h - 20 }, fit(label, w - 6, 11)));
        g.appendChild(sv("text", { class: "res", x: xs[i] + 4, y: top + h - 7, "font-size": 10 }, fit(e.result, w - 6, 10)));
      }
    } else if (h !== LANE_SHUT) {
      g.appendChild(sv("text", { x: cx - 3.5, y: cy + 3.5, "font-size": 8 }, SIGN_ICON[e.sign] || ""));
    }
    g.appendChild(sv("title", {}, (SIGN_TEXT[e.sign] || e.sign) + ": " + e.actor + " " + e.call + " → " + e.result));
    g.addEventListener("click", function () { self.select(i); });
    return g;
  };

  Run.prototype.clockMark = function (e, i, xs, height) {
    const self = this, w = this.colW, cx = xs[i] + w / 2;
    const g = sv("g", { class: "clock-tag", tabindex: 0, "data-event": i });
    g.appendChild(sv("line", { class: "clock-line", x1: cx, x2: cx, y1: AXIS_H - 4, y2: height }));
    const label = "◷ " + e.call;
    const tw = Math.min(w - 2, label.length * 6.6 + 8);
    g.appendChild(sv("rect", { x: cx - tw / 2, y: AXIS_H - 2, width: tw, height: 16, rx: 8 }));
    g.appendChild(sv("text", { x: cx - tw / 2 + 4, y: AXIS_H + 10 }, fit(label, tw - 6, 11)));
    g.appendChild(sv("title", {}, "clock moves " + e.call + ": " + e.result));
    g.addEventListener("click", function () { self.select(i); });
    return g;
  };

  // Each violation's badge, in the row under the axis; badges that would overlap
  // go on rows of their own.
  Run.prototype.badges = function (xs, right) {
    const d = this.d, w = this.colW, ends = [], items = [];
    d.events.forEach(function (e, i) {
      e.violations.forEach(function (v) {
        const label = "⚠ " + v.invariant + ": " + v.message;
        const wide = Math.min(label.length * 6.4 + 12, 560, right - NAME_W - 12);
        const x = xs[i] + 2 + wide <= right - 4 ? xs[i] + 2 : Math.max(NAME_W + 6, xs[i] + w - 2 - wide);
        let row = 0;
        while (row < ends.length && ends[row] > x) row++;
        ends[row] = x + wide + 4;
        items.push({ i: i, v: v, row: row, x: x, label: label, wide: wide, first: items.every(function (b) { return b.i !== i; }) });
      });
    });
    return { rows: ends.length, items: items };
  };

  Run.prototype.violation = function (b, xs, top, h) {
    const self = this, w = this.colW, i = b.i, v = b.v;
    const g = sv("g", { class: "violation-sign", "data-invariant": v.invariant, "data-event": i, tabindex: 0 });
    if (b.first) g.appendChild(sv("rect", { class: "violation-frame", x: xs[i] + 1, y: top + 2, width: w - 2, height: h - 4, rx: 4 }));
    const ly = AXIS_H + 2 + b.row * BADGE_H;
    g.appendChild(sv("rect", { class: "badge", x: b.x, y: ly, width: b.wide, height: BADGE_H - 3, rx: 3 }));
    g.appendChild(sv("text", { x: b.x + 5, y: ly + 12 }, fit(b.label, b.wide - 8, 11)));
    g.appendChild(sv("title", {}, v.invariant + " at " + (v.label || "event " + v.seq) + ": " + v.message + " (runs: " + v.runs.join(", ") + ")"));
    g.addEventListener("click", function () { self.select(i); });
    return g;
  };

  Run.prototype.stateRows = function (xs, stateY, holderY) {
    const d = this.d, self = this, w = this.colW, g = sv("g", { class: "state-rows" });
    let prevState = null, prevHolder = null;
    d.events.forEach(function (e, i) {
      const text = e.state ? e.state.text : "";
      const changedState = e.state !== null && prevState !== null && text !== prevState;
      const cell = sv("g", { class: "state" + (changedState ? " changed" : "") + (e.state ? "" : " later"), "data-event": i });
      cell.appendChild(sv("rect", { x: xs[i] + 1, y: stateY + 3, width: w - 2, height: STATE_H - 6, rx: 3 }));
      const lines = e.state ? wrap(text || "–", w - 6, 10.5, w < 60 ? 1 : 3) : [fit("(read after)", w - 6, 10.5)];
      lines.forEach(function (l, k) { cell.appendChild(sv("text", { x: xs[i] + 4, y: stateY + 15 + k * 12 }, l)); });
      cell.appendChild(sv("title", {}, e.state ? "after event " + e.seq + ": " + text : "read once after the events that completed together"));
      cell.addEventListener("click", function () { self.select(i); });
      g.appendChild(cell);
      if (e.state) prevState = text;
      if (holderY !== null && (e.kind !== "clock" || prevHolder === null)) {
        const holder = e.holder || "–";
        const changed = prevHolder !== null && holder !== prevHolder;
        const hc = sv("g", { class: "state" + (changed ? " changed" : ""), "data-event": i });
        hc.appendChild(sv("rect", { x: xs[i] + 1, y: holderY + 2, width: w - 2, height: HOLDER_H - 4, rx: 3 }));
        hc.appendChild(sv("text", { x: xs[i] + 4, y: holderY + 16 }, fit(holder, w - 6, 10.5)));
        hc.appendChild(sv("title", {}, "who racesim believes holds it after event " + e.seq + ": " + holder));
        g.appendChild(hc);
        prevHolder = holder;
      }
    });
    return g;
  };

  Run.prototype.names = function (laneY, laneH, stateY, holderY, height, badgeY) {
    const self = this, g = sv("g", { class: "names" });
    g.appendChild(sv("rect", { x: 0, y: 0, width: NAME_W, height: height, fill: "#ffffff" }));
    g.appendChild(sv("line", { class: "grid", x1: NAME_W, x2: NAME_W, y1: 0, y2: height }));
    g.appendChild(sv("text", { class: "row-name", x: 8, y: 17 }, this.mode === "vtime" ? "virtual time" : "schedule order"));
    this.d.lanes.forEach(function (l) {
      const shut = !!self.shut[l];
      const t = sv("text", { class: "lane-name", x: 8, y: laneY[l] + (shut ? 13 : laneH[l] / 2 + 5), tabindex: 0, role: "button", "aria-expanded": String(!shut) }, (shut ? "▸ " : "▾ ") + fit(l, NAME_W - 26, 13));
      t.appendChild(sv("title", {}, (shut ? "unfold " : "fold ") + l));
      const flip = function () { self.shut[l] = !shut; self.draw(); };
      t.addEventListener("click", flip);
      t.addEventListener("keydown", function (ev) { if (ev.key === "Enter") flip(); });
      g.appendChild(t);
    });
    if (badgeY) g.appendChild(sv("text", { class: "row-name bad", x: 8, y: badgeY + 14 }, "⚠ violations"));
    if (stateY !== null) {
      g.appendChild(sv("text", { class: "row-name", x: 8, y: stateY + 18 }, "state after"));
      g.appendChild(sv("text", { class: "row-name", x: 8, y: stateY + 32 }, "(watched row)"));
    }
    if (holderY !== null) g.appendChild(sv("text", { class: "row-name", x: 8, y: holderY + 16 }, "holder"));
    this.namesG = g;
    return g;
  };

  Run.prototype.stick = function () {
    if (this.namesG) this.namesG.setAttribute("transform", "translate(" + this.chart.scrollLeft + ",0)");
  };

  Run.prototype.select = function (i) {
    this.selected = i;
    this.draw();
    const x = this.layoutX().xs[i];
    if (x < this.chart.scrollLeft + NAME_W || x > this.chart.scrollLeft + this.chart.clientWidth - this.colW) {
      this.chart.scrollLeft = Math.max(0, x - NAME_W - 40);
    }
    this.details(this.d.events[i]);
    this.rows.forEach(function (r, k) { r.classList.toggle("selected", k === i); });
  };

  Run.prototype.details = function (e) {
    const p = this.panel;
    p.replaceChildren();
    p.appendChild(el("h3", {}, (e.label ? e.label + "  " : "") + (e.kind === "clock" ? "clock " + e.call : e.actor + ": " + e.call)));
    const dl = el("dl");
    function row(k, v, pre, cls) {
      if (v === null || v === undefined || v === "") return;
      dl.appendChild(el("dt", {}, k));
      const dd = el("dd", cls ? { class: cls } : {});
      if (pre) dd.appendChild(el("pre", {}, v)); else dd.textContent = v;
      dl.appendChild(dd);
    }
    row("event", "#" + e.seq + " (" + e.kind + ")" + (e.line ? ", scenario line " + e.line : ""));
    row("arguments", e.args.length ? e.args.map(function (a) { return a === "" ? '""' : a; }).join(", ") : "none");
    row("SQL", e.sql, true);
    row(e.error ? "error" : "result", e.result, false, e.error ? "bad" : "");
    row("SQLSTATE", e.sqlstate);
    if (e.kind === "wait") row("waits on", e.blocked_by.length ? e.blocked_by.join(", ") : "another session");
    const watched = this.d.events.some(function (x) { return x.state !== null; });
    if (watched) row("state after", e.state ? e.state.text || "–" : "read after the next completion");
    if (watched) row("holder after", e.holder || "nobody");
    row("virtual time", e.vtime);
    row("wall clock", e.wall_ms + " ms after the start");
    row("finished", e.finished);
    e.violations.forEach(function (v) { row("⚠ " + v.invariant, v.message + " (runs: " + v.runs.join(", ") + ")", false, "bad"); });
    p.appendChild(dl);
  };

  Run.prototype.table = function () {
    const self = this, box = el("details", { class: "all-events" });
    box.appendChild(el("summary", {}, "All " + this.d.events.length + " events as a table"));
    const t = el("table", { class: "events" });
    const head = el("tr");
    ["#", "label", "actor", "call", "arguments", "result", "state after", "holder", "violations"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
    t.appendChild(head);
    this.rows = [];
    this.d.events.forEach(function (e, i) {
      const tr = el("tr", e.violations.length ? { class: "has-violation" } : {});
      [String(e.seq), e.label, e.kind === "clock" ? "(clock)" : e.actor, e.call + (e.kind === "wait" ? " (waits)" : ""), e.args.join(", "), e.result,
        e.state ? e.state.text : "", e.holder || "–", e.violations.map(function (v) { return "⚠ " + v.invariant + ": " + v.message; }).join("; ")]
        .forEach(function (c, k) { tr.appendChild(el("td", k === 5 || k === 6 ? { class: "mono" } : {}, c)); });
      tr.addEventListener("click", function () { self.select(i); });
      t.appendChild(tr);
      self.rows.push(tr);
    });
    box.appendChild(t);
    return box;
  };

  function main() {
    const data = JSON.parse(document.getElementById("racesim-data").textContent);
    const host = document.getElementById("runs");
    host.replaceChildren();
    const runs = data.map(function (d) { return new Run(d, host); });
    window.addEventListener("beforeprint", function () {
      document.querySelectorAll("details.all-events").forEach(function (x) { x.dataset.wasOpen = x.open ? "1" : ""; x.open = true; });
    });
    window.addEventListener("afterprint", function () {
      document.querySelectorAll("details.all-events").forEach(function (x) { x.open = x.dataset.wasOpen === "1"; });
    });
    // #event-N selects the event of seq N (in the first run that has it), so a
    // link or a screenshot can open the page on one event.
    const m = /^#event-(\d+)$/.exec(window.location.hash);
    if (m) {
      const seq = Number(m[1]);
      for (const r of runs) {
        const i = r.d.events.findIndex(function (e) { return e.seq === seq; });
        if (i >= 0) { r.select(i); break; }
      }
    }
    document.body.setAttribute("data-drawn", String(runs.length));
  }
  main();
})();
