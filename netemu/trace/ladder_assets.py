"""The style sheet and the script of ``ladder.html``, written out whole into every page
(no file beside it, nothing fetched). The script reads only what the page holds: the
ladders' SVG and each conversation's JSON (``ladder_data``); it writes text with
``textContent`` and numbers with ``setAttribute``, never markup from the capture.

What it does (docs/trace.md, "ladder.html"): rows by order or by time (a time axis,
long gaps compressed into a marked break), a segment's detail panel on click, the
filters (connection, kind of segment, mark), and the graphs of each conversation
(time-sequence each way, bytes in flight with cwnd and ssthresh, the peer kernel's
cwnd, RTT), drawn when they scroll into view.

Layer rule: text only; imports nothing of netemu's.
"""

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 24px; color: #1a1a1a; background: #fff; }
h1 { font-size: 18px; } h2 { font-size: 15px; margin: 28px 0 6px; font-family: monospace; }
svg { display: block; }
svg text { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono",
           "Liberation Mono", monospace; font-size: 13px; }
.lbl { paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
.time, .num { fill: #666; } .host { font-weight: bold; } .role { fill: #666; }
.life { stroke: #9e9e9e; stroke-width: 1.5; }
.st rect { stroke-width: 1; rx: 4; } .st text { font-weight: bold; }
.st.left rect { fill: #e0f2f1; stroke: #00796b; } .st.left text { fill: #004d40; }
.st.right rect { fill: #f3e5f5; stroke: #7b1fa2; } .st.right text { fill: #4a148c; }
.st.init rect { fill: #fafafa; stroke: #9e9e9e; } .st.init text { fill: #424242; }
.st.cc rect { fill: #fff3e0; stroke: #e65100; stroke-dasharray: 3 2; }
.st.cc text { fill: #bf360c; font-weight: normal; font-style: italic; }
.st.kev rect { fill: #ffebee; stroke: #c62828; } .st.kev text { fill: #b71c1c; }
.ccd { fill: #bf360c; font-style: italic; }
.note line { stroke: #9e9e9e; stroke-dasharray: 4 3; }
.note text { fill: #424242; font-style: italic; }
.note.step text { font-style: normal; font-weight: bold; fill: #1a1a1a; }
.note.fail text { fill: #c62828; font-weight: bold; font-style: normal; }
.note.pass text { fill: #2e7d32; font-style: normal; }
.ann { fill: #424242; } .ann.drop { fill: #c62828; font-weight: bold; }
.ann.inject { fill: #e65100; font-weight: bold; } .ann.mark { fill: #6d4c41; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend b { display: inline-block; width: 22px; height: 3px; vertical-align: middle;
            margin-right: 5px; }
.legend i { display: inline-block; width: 8px; height: 14px; vertical-align: middle;
            margin-right: 5px; }
details { margin-top: 28px; } pre { font-size: 12px; }
.gap rect { fill: #fafafa; stroke: #bdbdbd; stroke-dasharray: 2 2; }
.gap text { fill: #616161; font-style: italic; }
.notice { background: #fff8e1; border-left: 4px solid #f9a825; padding: 6px 10px; }
table.listed, table.index { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
table.listed td, table.listed th, table.index td, table.index th { padding: 2px 8px;
  text-align: right; font-family: ui-monospace, monospace; vertical-align: top; }
table.listed td:nth-last-child(-n+3), table.listed th:nth-last-child(-n+3) { text-align: left; }
table.index td.l, table.index th.l { text-align: left; }
table.listed tr:nth-child(even), table.index tr:nth-child(even) { background: #f5f5f5; }
table.index td.st { font-size: 11px; max-width: 340px; }
.r { cursor: default; } .r[data-i] { cursor: pointer; } .r.off { display: none; }
.r.sel .lbl { text-decoration: underline; } .r.sel line { stroke-width: 3.2; }
.r.crowd text, .r.crowd .st, .r.crowd .ccd { display: none; }
.timemode .r text.time { display: none; }
.band { opacity: .55; } .axis text { fill: #666; font-size: 11px; } .axis line { stroke: #999; }
.brk rect { fill: #eceff1; } .brk text { fill: #455a64; font-size: 11px; font-style: italic; }
.b-CLOSED { fill: #bdbdbd; } .b-LISTEN { fill: #90a4ae; } .b-SYN-SENT { fill: #a5d6a7; }
.b-SYN-RECEIVED { fill: #c5e1a5; } .b-ESTABLISHED { fill: #42a5f5; }
.b-FIN-WAIT-1 { fill: #ffcc80; } .b-FIN-WAIT-2 { fill: #ffb74d; } .b-CLOSING { fill: #ff8a65; }
.b-TIME-WAIT { fill: #ce93d8; } .b-CLOSE-WAIT { fill: #fff176; } .b-LAST-ACK { fill: #ffd54f; }
.b-other { fill: #e0e0e0; }
#controls { position: sticky; top: 0; background: #fffffff0; border-bottom: 1px solid #ddd;
            padding: 6px 0; font-size: 13px; z-index: 2; }
#controls label { margin-right: 10px; white-space: nowrap; }
#controls fieldset { display: inline; border: 0; padding: 0; margin: 0 14px 0 0; }
#detail { position: fixed; right: 12px; bottom: 12px; width: 560px; max-height: 70vh;
          overflow: auto; background: #fff; border: 1px solid #90a4ae; border-radius: 6px;
          box-shadow: 0 2px 10px #0003; padding: 8px 12px; font-size: 13px; z-index: 3; }
#detail table td { font-family: ui-monospace, monospace; padding: 1px 6px; vertical-align: top; }
#detail table td:first-child { color: #666; font-family: inherit; }
#detail pre { background: #f5f5f5; padding: 6px; margin: 4px 0; }
#detail .mk { display: inline-block; background: #ffe0b2; border-radius: 3px; padding: 0 5px;
              margin-right: 4px; }
#detail button { float: right; }
.graphs { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 10px; }
.graph { border: 1px solid #e0e0e0; border-radius: 4px; padding: 4px; }
.graph .gt { font-size: 12px; font-weight: bold; margin: 0 0 2px 4px; }
.graph .gl { font-size: 11px; margin: 2px 0 0 4px; } .graph .gl span { margin-right: 10px; }
.graph .gl b { display: inline-block; width: 14px; height: 3px; vertical-align: middle;
               margin-right: 4px; }
.graph svg text { font-size: 10px; fill: #555; } .graph .grid { stroke: #eee; }
.graph .read { font-size: 11px; fill: #333; }
.nav a { margin-right: 8px; }
"""

JS = r"""
(function () {
"use strict";
var ROW = 24, HEAD = 64;
var mode = "order", zoom = 1, cache = {};
function $(s, el) { return (el || document).querySelector(s); }
function $$(s, el) { return Array.prototype.slice.call((el || document).querySelectorAll(s)); }
function data(n) {
  if (!(n in cache)) {
    var el = document.getElementById("d" + n);
    cache[n] = el ? JSON.parse(el.textContent) : null;
  }
  return cache[n];
}
function mk(ns, tag, attrs, parent) {
  var el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (var k in attrs) el.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(el);
  return el;
}
function txt(el, s) { el.textContent = s; return el; }
function nice(x) {
  var p = Math.pow(10, Math.floor(Math.log10(x))), m = x / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}
function dur(s) {
  return s >= 1 ? s.toFixed(3) + " s" : s >= 1e-3 ? (s * 1e3).toFixed(1) + " ms"
    : Math.round(s * 1e6) + " \u00b5s";
}
function fmtT(t, step) {
  var d = Math.max(0, Math.min(6, -Math.floor(Math.log10(step))));
  return t.toFixed(d);
}

/* --- the ladder: rows by order or by time -------------------------------------- */
function layout(svg) {
  var rows = $$("g.r", svg), n = rows.length, ys = new Array(n + 1);
  var vis = rows.filter(function (r) { return !r.classList.contains("off"); });
  var brks = [], y = HEAD, scale = 0;
  if (mode === "time" && vis.length > 1) {
    var dts = [];
    for (var i = 1; i < vis.length; i++) {
      var d = +vis[i].dataset.t - +vis[i - 1].dataset.t;
      if (d > 0) dts.push(d);
    }
    dts.sort(function (a, b) { return a - b; });
    var med = dts.length ? dts[Math.floor(dts.length / 2)] : 1;
    scale = zoom * ROW / Math.max(med, 1e-6);
  }
  var pos = new Map(), lastLabel = -1e9, prevT = null;
  vis.forEach(function (r) {
    var t = +r.dataset.t;
    if (scale && prevT !== null) {
      var h = (t - prevT) * scale;
      if (h > 8 * ROW) { brks.push([y, t - prevT]); h = 2 * ROW; }
      y += h;
    }
    if (!scale) y = HEAD + ROW / 2 + pos.size * ROW;
    else if (prevT === null) y = HEAD + ROW / 2;
    pos.set(r, y);
    prevT = t;
    r.setAttribute("transform", "translate(0," + (y - ROW / 2).toFixed(1) + ")");
    var crowd = scale > 0 && y - lastLabel < ROW - 6;
    r.classList.toggle("crowd", crowd);
    if (!crowd) lastLabel = y;
  });
  var end = (vis.length ? y : HEAD) + ROW;
  for (var j = n - 1, next = end; j >= 0; j--) {
    if (pos.has(rows[j])) next = pos.get(rows[j]);
    ys[j] = next;
  }
  ys[n] = end;
  $$("rect.band", svg).forEach(function (b) {
    var a = ys[+b.dataset.a], z = ys[+b.dataset.b];
    b.setAttribute("y", a.toFixed(1));
    b.setAttribute("height", Math.max(0, z - a).toFixed(1));
  });
  var height = Math.ceil(end + ROW / 2);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", "0 0 " + svg.getAttribute("width") + " " + height);
  $$("line.life", svg).forEach(function (l) { l.setAttribute("y2", height - 6); });
  svg.classList.toggle("timemode", scale > 0);
  axis(svg, scale, vis, pos, brks);
}
function axis(svg, scale, vis, pos, brks) {
  var old = $("g.axis", svg);
  if (old) old.remove();
  if (!scale) return;
  var ns = svg.namespaceURI, g = mk(ns, "g", { "class": "axis" }, svg);
  var w = +svg.getAttribute("width"), step = nice(40 / scale);
  brks.forEach(function (b) {
    var br = mk(ns, "g", { "class": "brk" }, g);
    mk(ns, "rect", { x: 0, y: (b[0] + ROW * 0.4).toFixed(1), width: w, height: ROW * 1.2 }, br);
    txt(mk(ns, "text", { x: 8, y: (b[0] + ROW * 1.15).toFixed(1) }, br),
        "\u22ef " + dur(b[1]) + " without a row, compressed \u22ef");
  });
  for (var i = 1; i < vis.length; i++) {
    var t0 = +vis[i - 1].dataset.t, t1 = +vis[i].dataset.t, y0 = pos.get(vis[i - 1]);
    var y1 = pos.get(vis[i]);
    if ((t1 - t0) * scale > 8 * ROW + 1e-9 || t1 <= t0) continue;
    for (var k = Math.ceil(t0 / step); k * step <= t1; k++) {
      var ty = y0 + (k * step - t0) * (y1 - y0) / (t1 - t0);
      mk(ns, "line", { x1: 56, x2: 64, y1: ty.toFixed(1), y2: ty.toFixed(1) }, g);
      txt(mk(ns, "text", { x: 6, y: (ty + 4).toFixed(1) }, g), fmtT(k * step, step));
    }
  }
}
function relayout() { $$("svg.ladder").forEach(function (s) {
  if (!s.closest("section").hidden) layout(s); }); }

/* --- a segment's detail --------------------------------------------------------- */
function hexdump(hex) {
  var out = [];
  for (var i = 0; i < hex.length; i += 32) {
    var line = hex.slice(i, i + 32).replace(/(..)/g, "$1 ").trim();
    out.push(("000" + (i / 2).toString(16)).slice(-4) + "  " + line);
  }
  return out.join("\n");
}
function showDetail(row) {
  var sec = row.closest("section.conv"), d = data(sec.dataset.n);
  var s = d && d.segs[+row.dataset.i];
  if (!s) return;
  $$(".r.sel").forEach(function (r) { r.classList.remove("sel"); });
  row.classList.add("sel");
  var p = $("#detail"), body = $("#detail-body");
  body.textContent = "";
  txt(mk(null, "h3", {}, body), "frame #" + s.f + "  " + (s.d === ">" ? "\u2192" : "\u2190"));
  var tb = mk(null, "table", {}, body);
  function line(k, v) {
    var tr = mk(null, "tr", {}, tb);
    txt(mk(null, "td", {}, tr), k);
    return txt(mk(null, "td", {}, tr), v);
  }
  line("time", s.t.toFixed(6) + " s");
  line("from \u2192 to", s.src + " \u2192 " + s.dst);
  line("flags", s.fl);
  line("seq", s.seq[0] + " (raw " + s.seq[1] + ")");
  line("ack", s.ack ? s.ack[0] + " (raw " + s.ack[1] + ")" : "\u2014 (no ACK flag)");
  line("window", s.win[0] + " (field " + s.win[1] + ")");
  line("payload", s.len + " bytes");
  line("options", s.opt || "\u2014");
  var mt = line("marks", s.m.length ? "" : "\u2014");
  s.m.forEach(function (m) { txt(mk(null, "span", { "class": "mk" }, mt), m); });
  if (s.note) line("note", s.note);
  line("direction", s.dir === "out" ? "left \u2192 right" : "right \u2192 left");
  txt(mk(null, "div", {}, body), "raw frame (" + (s.hex.length / 2 < s.size
    ? "first " + s.hex.length / 2 + " of " + s.size : s.size) + " bytes):");
  txt(mk(null, "pre", {}, body), hexdump(s.hex));
  p.hidden = false;
}

/* --- graphs ---------------------------------------------------------------------- */
var W = 460, H = 210, ML = 64, MR = 10, MT = 8, MB = 22;
function chart(box, title, series, unit) {
  series = series.filter(function (s) { return s.pts && s.pts.length; });
  if (!series.length) return;
  var ns = $("svg.ladder").namespaceURI;
  var div = mk(null, "div", { "class": "graph" }, box);
  txt(mk(null, "div", { "class": "gt" }, div), title);
  var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  series.forEach(function (s) { s.pts.forEach(function (p) {
    x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]);
    if (s.free) return;  // drawn, clipped, but not what the scale is for
    y0 = Math.min(y0, p[1]); y1 = Math.max(y1, s.kind === "tick" ? p[2] : p[1]);
  }); });
  if (x1 <= x0) x1 = x0 + 1e-3;
  y0 = Math.min(0, y0);
  if (y1 <= y0) y1 = y0 + 1;
  function X(t) { return ML + (t - x0) / (x1 - x0) * (W - ML - MR); }
  function Y(v) {
    return Math.max(MT, Math.min(H - MB, H - MB - (v - y0) / (y1 - y0) * (H - MT - MB)));
  }
  var svg = mk(ns, "svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H }, div);
  var xs = nice((x1 - x0) / 5), vs = nice((y1 - y0) / 4);
  for (var t = Math.ceil(x0 / xs) * xs; t <= x1; t += xs) {
    mk(ns, "line", { "class": "grid", x1: X(t), x2: X(t), y1: MT, y2: H - MB }, svg);
    txt(mk(ns, "text", { x: X(t), y: H - 6, "text-anchor": "middle" }, svg), fmtT(t, xs));
  }
  for (var v = Math.ceil(y0 / vs) * vs; v <= y1; v += vs) {
    mk(ns, "line", { "class": "grid", x1: ML, x2: W - MR, y1: Y(v), y2: Y(v) }, svg);
    txt(mk(ns, "text", { x: ML - 4, y: Y(v) + 3, "text-anchor": "end" }, svg),
        v >= 1e6 ? (v / 1e6) + "M" : v >= 1e4 ? (v / 1e3) + "k" : String(+v.toFixed(3)));
  }
  var legend = mk(null, "div", { "class": "gl" }, div);
  series.forEach(function (s) {
    var d = [], pts = s.pts, i;
    if (s.kind === "tick") {
      for (i = 0; i < pts.length; i++) {
        var ya = Y(pts[i][1]), yb = Y(pts[i][2]);
        if (yb > ya - 1.5) yb = ya - 1.5;
        d.push("M" + X(pts[i][0]).toFixed(1) + " " + ya.toFixed(1) + "V" + yb.toFixed(1));
      }
    } else if (s.kind === "dot") {
      for (i = 0; i < pts.length; i++)
        d.push("M" + X(pts[i][0]).toFixed(1) + " " + Y(pts[i][1]).toFixed(1) + "h.1");
    } else {
      for (i = 0; i < pts.length; i++) {
        var px = X(pts[i][0]).toFixed(1), py = Y(pts[i][1]).toFixed(1);
        d.push(i ? (s.kind === "step" ? "H" + px + "V" + py : "L" + px + " " + py)
                 : "M" + px + " " + py);
      }
      if (s.kind === "step") d.push("H" + X(x1).toFixed(1));
    }
    mk(ns, "path", { "class": "s", d: d.join(""), fill: "none", stroke: s.colour,
      "stroke-width": s.kind === "dot" ? 3.5 : 1.4, "stroke-linecap": "round",
      "data-n": pts.length }, svg);
    var item = mk(null, "span", {}, legend);
    mk(null, "b", { style: "background:" + s.colour }, item);
    item.appendChild(document.createTextNode(s.name + " (" + pts.length + ")"));
  });
  var read = mk(ns, "text", { "class": "read", x: W - MR, y: MT + 10, "text-anchor": "end" }, svg);
  svg.addEventListener("mousemove", function (e) {
    var r = svg.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    var t = x0 + (px - ML) / (W - ML - MR) * (x1 - x0);
    var v = y0 + (H - MB - py) / (H - MT - MB) * (y1 - y0);
    txt(read, "t " + t.toFixed(4) + " s, " + Math.round(v) + " " + unit);
  });
}
function kinds(pts, k) { return pts.filter(function (p) { return p[3] === k; }); }
function graphs(box) {
  if (box.dataset.done) return;
  box.dataset.done = "1";
  var sec = box.closest("section.conv"), d = data(sec.dataset.n);
  if (!d) return;
  var g = d.graphs, names = [sec.dataset.left, sec.dataset.right];
  [["lr", 0, 1], ["rl", 1, 0]].forEach(function (w) {
    var s = g[w[0]];
    if (!s.seq.some(function (p) { return p[2] - p[1] > 1; })) return;  // no data that way
    chart(box, "Time\u2013sequence: " + names[w[1]] + " \u2192 " + names[w[2]] +
          " (seq relative)", [
      { name: "sent", kind: "tick", colour: "#1565c0", pts: kinds(s.seq, 0) },
      { name: "sent again", kind: "tick", colour: "#e65100", pts: kinds(s.seq, 1) },
      { name: "dropped", kind: "tick", colour: "#c62828", pts: kinds(s.seq, 2) },
      { name: "ACK", kind: "step", colour: "#2e7d32", pts: s.ack },
      { name: "ACK + window", kind: "step", colour: "#9e9e9e", pts: s.win, free: 1 },
      { name: "SACK", kind: "tick", colour: "#8e24aa", pts: s.sack }], "bytes");
  });
  chart(box, "Bytes in flight" + (g.cwnd ? ", cwnd and ssthresh" : "") + " (bytes)", [
    { name: "in flight \u2192 (inferred)", kind: "step", colour: "#1565c0", pts: g.flight[0] },
    { name: "in flight \u2190 (inferred)", kind: "step", colour: "#6d4c41", pts: g.flight[1] },
    { name: names[0] + " cwnd", kind: "step", colour: "#e65100", pts: g.cwnd },
    { name: names[0] + " ssthresh", kind: "step", colour: "#8e24aa", pts: g.ssthresh }],
    "bytes");
  chart(box, names[1] + " kernel: cwnd and ssthresh (segments)", [
    { name: "cwnd", kind: "step", colour: "#e65100", pts: g.pcwnd },
    { name: "ssthresh", kind: "step", colour: "#8e24aa", pts: g.pssthresh }], "segments");
  chart(box, "RTT (ms)", [
    { name: "samples \u2192 (data to its ACK)", kind: "dot", colour: "#1565c0", pts: g.rtt[0] },
    { name: "samples \u2190 (data to its ACK)", kind: "dot", colour: "#6d4c41", pts: g.rtt[1] },
    { name: names[1] + " kernel srtt", kind: "step", colour: "#e65100", pts: g.psrtt }], "ms");
}

/* --- filters ----------------------------------------------------------------------- */
function filters() {
  var q = ($("#fconn") || {}).value || "";
  q = q.trim().toLowerCase();
  var show = {}, mark = ($("#fmark") || {}).value || "";
  $$("#controls input[data-k]").forEach(function (c) { show[c.dataset.k] = c.checked; });
  function match(el) {
    return !q || el.dataset.title.toLowerCase().indexOf(q) >= 0 || "#" + el.dataset.n === q;
  }
  $$("section.conv").forEach(function (s) { s.hidden = !match(s); });
  $$("table.index tr[data-n]").forEach(function (r) { r.hidden = !match(r); });
  $$("g.r[data-k]").forEach(function (r) {
    var m = " " + (r.dataset.m || "") + " ";
    var off = show[r.dataset.k] === false || (mark && m.indexOf(" " + mark + " ") < 0);
    r.classList.toggle("off", off);
  });
  relayout();
}

function init() {
  var c = $("#controls");
  if (c) c.hidden = false;
  $$("input[name=mode]").forEach(function (i) { i.addEventListener("change", function () {
    mode = i.value; relayout(); }); });
  $$("button[data-zoom]").forEach(function (b) { b.addEventListener("click", function () {
    zoom *= +b.dataset.zoom; if (mode === "time") relayout(); }); });
  $$("#controls input[data-k], #fmark").forEach(function (i) {
    i.addEventListener("change", filters); });
  var fc = $("#fconn");
  if (fc) fc.addEventListener("input", filters);
  document.addEventListener("click", function (e) {
    var r = e.target.closest && e.target.closest("g.r[data-i]");
    if (r) showDetail(r);
  });
  var close = $("#detail button");
  if (close) close.addEventListener("click", function () { $("#detail").hidden = true; });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") $("#detail").hidden = true; });
  var boxes = $$(".graphs");
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (es) { es.forEach(function (e) {
      if (e.isIntersecting) { io.unobserve(e.target); graphs(e.target); } }); },
      { rootMargin: "400px" });
    boxes.forEach(function (b) { io.observe(b); });
  } else boxes.forEach(graphs);
  relayout();
}
window.netemuLadder = { graphs: graphs, relayout: relayout };
init();
})();
"""
