// The Explore page's player: token strip, step view and heatmaps, stepped in the browser.
//
// Python (explorer/present/player.py, PlayerData) sends one window of token positions with everything a step can show;
// stepping, playing and hovering happen here without a round trip to the server. The selected
// position goes back to Python (setStateValue, debounced) only so that the server-side views (unit
// inspector, the window of a long text) and a later rerun know it.
//
// All user text is set with textContent (never innerHTML). Keyboard: ← → step, Home / End, P play;
// a presentation remote's PageDown / PageUp (or "." / "b") step like → / ←.

const SPEEDS = [["½ token/s", 2.0], ["1 token/s", 1.0], ["2 tokens/s", 0.5], ["4 tokens/s", 0.25]];
const POS = "#b2182b", NEG = "#2166ac", HIGHLIGHT = "#e8590c", MUTED = "#9db4cc", MARK = "#111111";
const NAN_RGB = [150, 150, 150];  // a value that is not a number (a diverged model) is grey
const REPORT_MS = 350;          // a selection inside the window: told to the server once stepping pauses
const WINDOW_MS = 120;          // one outside it: the server sends the window around it (dragging: the last one)
const PENDING_MS = 4000;        // how long to wait for that window before giving up on it

// ------------------------------------------------------------------------------------- helpers
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// The play button's label with an inline SVG icon: the glyph ⏸ (U+23F8) is missing from many fonts
// and drew as an empty box; the app loads no icon font from outside (issue 14).
function playLabel(b, on) {
  const NS = "http://www.w3.org/2000/svg", svg = document.createElementNS(NS, "svg");
  for (const [k, v] of [["viewBox", "0 0 10 10"], ["width", "0.75em"], ["height", "0.75em"], ["aria-hidden", "true"],
                        ["class", "rsx-ico"], ["data-icon", on ? "pause" : "play"]]) svg.setAttribute(k, v);
  const parts = on ? [["rect", { x: 1.5, y: 1, width: 2.5, height: 8 }], ["rect", { x: 6, y: 1, width: 2.5, height: 8 }]]
                   : [["path", { d: "M2 1 L9 5 L2 9 Z" }]];
  for (const [tag, at] of parts) {
    const s = document.createElementNS(NS, tag);
    for (const k in at) s.setAttribute(k, String(at[k]));
    s.setAttribute("fill", "currentColor");
    svg.appendChild(s);
  }
  b.textContent = "";
  b.append(svg, on ? " Pause" : " Play");
}

function decodeF32(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Float32Array(bytes.buffer);
}

function hex(c) { return [1, 3, 5].map(i => parseInt(c.slice(i, i + 2), 16)); }

function lut(stops) {             // 256 colours along [[x, "#rrggbb"], ...]
  const out = new Array(256);
  for (let k = 0; k < 256; k++) {
    const x = k / 255;
    let j = 0;
    while (j < stops.length - 2 && x > stops[j + 1][0]) j++;
    const [x0, c0] = stops[j], [x1, c1] = stops[j + 1];
    const w = Math.min(1, Math.max(0, (x - x0) / ((x1 - x0) || 1)));
    const a = hex(c0), b = hex(c1);
    out[k] = a.map((v, i) => Math.round(v + (b[i] - v) * w));
  }
  return out;
}

const symlog = v => Math.sign(v) * Math.log1p(Math.abs(v));

function pct(p) {
  if (p === null || p === undefined || !isFinite(p)) return "–";
  if (p <= 0) return "0%";
  if (p >= 0.001) return (100 * p).toFixed(1) + "%";
  const digits = Math.min(8, -Math.floor(Math.log10(p * 100)));
  return (100 * p).toFixed(digits) + "%";
}

// Append text to a node, writing "x_t" and "x_{t−1}" with real subscripts (as text nodes: no HTML).
function withSubs(node, text) {
  const parts = text.split(/_(\{[^}]*\}|[A-Za-z0-9])/);
  parts.forEach((p, k) => {
    if (k % 2 === 0) { if (p) node.append(p); }
    else node.appendChild(el("sub", null, p.replace(/^\{|\}$/g, "")));
  });
  return node;
}

function short(s, n) { return s.length <= n ? s : s.slice(0, n - 1) + "…"; }

// A value with 3 decimals, or 3 significant digits when it is smaller than that.
function num(v) { return v === 0 || Math.abs(v) >= 0.001 ? v.toFixed(3) : v.toExponential(2); }
function fmt(v) { return (v >= 0 ? "+" : "") + num(v); }

// A canvas sized in CSS pixels, drawn at the device's resolution.
function sizeCanvas(cv, w, h) {
  const r = window.devicePixelRatio || 1;
  cv.style.width = w + "px"; cv.style.height = h + "px";
  cv.width = Math.max(1, Math.round(w * r)); cv.height = Math.max(1, Math.round(h * r));
  const g = cv.getContext("2d");
  g.setTransform(r, 0, 0, r, 0, 0);
  g.font = "12px 'Source Sans Pro', Helvetica, Arial, sans-serif";
  return g;
}

// ------------------------------------------------------------------------------------- skeleton
function build(root, S) {
  // Leave what Streamlit put in the parent (the component's <style>): replace only an old player.
  for (const old of root.querySelectorAll(":scope > .rsx")) old.remove();
  const box = el("div", "rsx");
  box.setAttribute("data-testid", "player");
  const bar = el("div", "rsx-bar");
  const btn = (name, label, title, key) => {
    const b = el("button", "rsx-btn rsx-" + name, label);
    b.type = "button"; b.title = title; b.dataset.key = key;
    b.addEventListener("click", () => act(S, key));
    bar.appendChild(b);
    return b;
  };
  btn("first", "« First", "First token (Home)", "Home");
  btn("back", "◀ Back", "Previous token (←)", "ArrowLeft");
  S.playBtn = btn("play", "Play", "Play / pause the reading animation (P)", "p");
  playLabel(S.playBtn, false);
  btn("next", "Next ▶", "Next token (→)", "ArrowRight");
  btn("last", "Last »", "Last token (End)", "End");
  S.speedSel = el("select", "rsx-speed");
  S.speedSel.title = "Playback speed";
  for (const [label, sec] of SPEEDS) {
    const o = el("option", null, label); o.value = String(sec); S.speedSel.appendChild(o);
  }
  S.speedSel.value = String(S.speed);
  S.speedSel.addEventListener("change", () => {
    S.speed = parseFloat(S.speedSel.value);
    try { sessionStorage.setItem("rsx-speed", String(S.speed)); } catch (e) { /* storage off */ }
    if (S.playing) play(S, true);
  });
  bar.appendChild(S.speedSel);
  S.slider = el("input", "rsx-slider");
  S.slider.type = "range"; S.slider.min = "0"; S.slider.step = "1";
  S.slider.title = "Drag, or focus it and use the arrow keys";
  S.slider.setAttribute("aria-label", "Selected token");
  S.slider.addEventListener("input", () => select(S, parseInt(S.slider.value, 10)));
  bar.appendChild(S.slider);
  S.where = el("span", "rsx-where");
  bar.appendChild(S.where);
  box.appendChild(bar);

  S.strip = el("div", "tok-strip");
  S.strip.setAttribute("data-testid", "token-strip");
  S.strip.addEventListener("click", e => {
    const chip = e.target.closest(".tok");
    if (chip && chip.dataset.pos !== undefined) select(S, parseInt(chip.dataset.pos, 10));
  });
  box.appendChild(S.strip);
  S.legend = el("div", "tok-legend");
  box.appendChild(S.legend);
  S.readout = el("div", "rsx-readout");
  S.readout.setAttribute("data-testid", "step-readout");
  box.appendChild(S.readout);

  const step = el("div", "rsx-step");
  step.setAttribute("data-testid", "step-view");
  S.topk = el("div", "rsx-panel rsx-topk"); S.topk.setAttribute("data-testid", "step-topk");
  S.change = el("div", "rsx-panel rsx-change"); S.change.setAttribute("data-testid", "step-change");
  S.gates = el("div", "rsx-panel rsx-gates"); S.gates.setAttribute("data-testid", "step-gates");
  step.append(S.topk, S.change, S.gates);
  box.appendChild(step);

  S.tabs = el("div", "rsx-tabs");
  S.tabs.setAttribute("role", "tablist");
  box.appendChild(S.tabs);
  S.heat = el("div", "rsx-heat");
  S.heat.setAttribute("data-testid", "heatmaps");
  box.appendChild(S.heat);
  S.tip = el("div", "rsx-tip");
  box.appendChild(S.tip);
  root.appendChild(box);
  S.box = box;
  // Redraw the canvases when the page width changes (a projector, a collapsed sidebar).
  S.width = 0;
  S.resize = new ResizeObserver(() => {
    const w = box.clientWidth;
    if (!S.data || Math.abs(w - S.width) < 16) return;
    S.width = w;
    clearTimeout(S.resizeTimer);
    S.resizeTimer = setTimeout(() => { drawHeat(S); render(S); }, 120);
  });
  S.resize.observe(box);
}

// ------------------------------------------------------------------------------------- actions
// Presentation remotes ("clickers") send PageDown / PageUp, some "." / "b": they step like → / ←.
const CLICKER = { PageDown: "ArrowRight", ".": "ArrowRight", PageUp: "ArrowLeft", b: "ArrowLeft", B: "ArrowLeft" };

function act(S, key) {
  const d = S.data;
  key = CLICKER[key] || key;
  if (key === "ArrowLeft") select(S, S.pos - 1);
  else if (key === "ArrowRight") select(S, S.pos + 1);
  else if (key === "Home") select(S, 0);
  else if (key === "End") select(S, d.n - 1);
  else if (key === "p" || key === "P") play(S, !S.playing);
}

function select(S, p, fromTimer) {
  const d = S.data;
  p = Math.min(Math.max(p, 0), d.n - 1);
  if (!fromTimer && S.playing) play(S, false);
  if (p === S.pos) return;
  S.pos = p;
  remember(S);
  if (p < d.lo || p >= d.hi) {             // outside the window drawn: ask the server for another one
    S.pending = p; S.pendingSince = Date.now();
    S.box.classList.add("rsx-waiting");
    hideTip(S);
    report(S, "window");
    return;
  }
  S.pending = null;
  render(S);
  report(S, false);
}

function play(S, on) {
  clearInterval(S.timer); S.timer = null;
  S.playing = on;
  playLabel(S.playBtn, on);
  S.playBtn.classList.toggle("rsx-on", on);
  if (on) {
    if (S.pos >= S.data.n - 1) select(S, 0, true);
    S.timer = setInterval(() => {
      if (S.pos >= S.data.n - 1) { play(S, false); return; }
      select(S, S.pos + 1, true);
    }, S.speed * 1000);
  } else {
    report(S, false);
  }
}

// The selection of this text, kept in the browser tab: playback reports nothing to the server, so
// a player mounted again (after a visit to another page) picks up where it was.
function remember(S) {
  try { sessionStorage.setItem("rsx-pos", JSON.stringify({ sig: S.data.sig, pos: S.pos })); } catch (e) { /* storage off */ }
}

function recalled(d) {
  try {
    const v = JSON.parse(sessionStorage.getItem("rsx-pos") || "null");
    if (v && v.sig === d.sig && Number.isInteger(v.pos) && v.pos >= 0 && v.pos < d.n) return v.pos;
  } catch (e) { /* storage off or garbled */ }
  return null;
}

// Tell the server the selection. `how`: false = once stepping pauses (not while playing),
// "window" = soon (a window outside the one drawn is needed). Every report carries a new `seq`:
// Streamlit runs the Python callback only when the value changes, and the same position can be
// news again (the server reset it for a new text and the user came back to the old one).
function report(S, how) {
  clearTimeout(S.reportTimer);
  if (S.playing && how !== "window") return;
  const send = () => {
    if (S.sentPos === S.pos && S.sentSig === S.data.sig) return;
    S.sentPos = S.pos; S.sentSig = S.data.sig;
    S.seq = (S.seq || Date.now()) + 1;
    S.setState("pos", { pos: S.pos, sig: S.data.sig, seq: S.seq });
  };
  S.reportTimer = setTimeout(send, how === "window" ? WINDOW_MS : REPORT_MS);
}

function onKey(S, e) {
  if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
  const t = e.target;
  const tag = (t && t.tagName) || "";
  if (t && (t.isContentEditable || tag === "TEXTAREA" || tag === "SELECT" ||
            (tag === "INPUT" && t !== S.slider))) return;
  if (t === S.slider && (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "Home" || e.key === "End")) return;
  if (!["ArrowLeft", "ArrowRight", "Home", "End", "p", "P"].includes(e.key) && !(e.key in CLICKER)) return;
  if (!S.box.isConnected) return;
  e.preventDefault();
  act(S, e.key);
}

// ------------------------------------------------------------------------------------- render
function render(S) {
  const d = S.data, i = S.pos - d.lo;
  if (i < 0 || S.pos >= d.hi) return;        // waiting for the window around the selection
  hideTip(S);
  S.box.classList.remove("rsx-waiting");
  S.box.dataset.n = String(d.n);
  S.box.dataset.selected = String(S.pos);
  S.box.dataset.layer = String(d.layer);
  S.slider.max = String(d.n - 1);
  S.slider.value = String(S.pos);
  S.slider.setAttribute("aria-valuetext", `token ${S.pos}: ${d.tokens[i].label}`);
  S.where.textContent = `${S.pos} / ${d.n - 1} · ${d.tokens[i].label}`;
  renderStrip(S);
  S.readout.textContent = d.readout[i];
  renderTopk(S, i);
  renderChange(S, i);
  renderGates(S, i);
  markHeat(S);
}

function renderStrip(S) {
  const d = S.data;
  if (S.stripSig !== S.drawSig) {          // rebuild the chips only for new data
    S.stripSig = S.drawSig;
    S.strip.textContent = "";
    S.chips = [];
    if (d.lo > 0) S.strip.appendChild(el("span", "more", `… ${d.lo} tokens before`));
    d.tokens.forEach((tk, j) => {
      const chip = el("span", "tok" + (tk.special ? " special" : "") + (tk.unk ? " unk" : ""));
      chip.dataset.pos = String(d.lo + j);
      chip.dataset.unk = String(tk.unk);
      chip.style.background = tk.bg; chip.style.color = tk.ink;
      chip.title = tk.title;
      if (tk.unk) chip.appendChild(el("span", "badge", "unk"));
      chip.appendChild(el("span", "w", tk.label));
      chip.appendChild(el("span", "pos", String(d.lo + j)));
      if (d.ngram) {                       // the second track: the n-gram's surprisal of the same word
        const b = d.ngram.bits[j], g = d.ngram.gain[j];
        const band = el("span", "ng");
        band.style.background = d.ngram.bg[j];
        band.dataset.bits = b === null ? "" : String(b);
        chip.appendChild(band);
        if (b !== null) chip.title += ` · ${d.ngram.name}: ${b.toFixed(1)} bits` +
          (g === null ? "" : ` (memory beyond its window ${g >= 0 ? "saved" : "cost"} ${Math.abs(g).toFixed(1)} bits)`);
      }
      S.strip.appendChild(chip);
      S.chips.push(chip);
    });
    if (d.hi < d.n) S.strip.appendChild(el("span", "more", `${d.n - d.hi} tokens after …`));
    S.strip.dataset.n = String(d.n);
    S.strip.dataset.labels = d.tokens.map(t => t.label).join("|");
    S.legend.textContent = "";
    S.legend.append("surprisal: 0 bits ");
    const barEl = el("span", "bar");
    barEl.style.background = "linear-gradient(90deg, " + d.surprisal_stops.map(([x, c]) => `${c} ${Math.round(100 * x)}%`).join(", ") + ")";
    S.legend.append(barEl, ` ${d.surprisal_max}+ bits · `);
    const u = el("span", "tok unk mini", "word"); S.legend.append(u, " unknown to the model (read as <unk>) · outlined: selected token · click a word to select it");
    S.strip.classList.toggle("with-ngram", !!d.ngram);
    if (d.ngram) {
      const row = el("span", "ng-row"), nb = el("span", "ng-key");
      S.legend.append(row);
      row.append(nb, ` lower band: the ${d.ngram.name}'s surprisal (it sees only the last few words; ` +
        "a red band under a pale chip is where the network's longer memory paid off)");
    }
  }
  S.chips.forEach((c, j) => c.classList.toggle("sel", d.lo + j === S.pos));
  S.strip.dataset.selected = String(S.pos);
  const sel = S.chips[S.pos - d.lo];
  if (sel && S.playing) {           // keep the chip in view, but never pull the page up from the heatmaps
    const r = S.strip.getBoundingClientRect();
    if (r.bottom > 0 && r.top < window.innerHeight) sel.scrollIntoView({ block: "nearest", inline: "nearest" });
  }
}

function panelTitle(panel, title, sub) {
  panel.textContent = "";
  const h = el("div", "rsx-title", title);
  panel.appendChild(h);
  if (sub) panel.appendChild(sub);
}

function renderTopk(S, i) {
  const d = S.data, nx = d.next[i], label = d.tokens[i].label;
  const sub = el("div", "rsx-sub");
  if (nx.actual) { sub.append("actually next: "); sub.appendChild(el("b", null, short(nx.actual.label, 18))); }
  else sub.append("end of the text");
  panelTitle(S.topk, `Next ${d.token_kind || "word"} after “${short(label, 18)}”`, sub);
  S.topk.dataset.position = String(S.pos);
  const rows = nx.top.map(([w, p], r) => ({ w, p, rank: r + 1, actual: !!nx.actual && nx.actual.in_top && w === nx.actual.word }));
  if (nx.actual && !nx.actual.in_top) rows.push({ w: nx.actual.word, p: nx.actual.prob, rank: nx.actual.rank, actual: true, extra: true });
  const xmax = Math.min(1, Math.max(0.05, ...rows.map(r => r.p || 0)) * 1.15);
  const list = el("div", "rsx-bars");
  for (const r of rows) {
    const row = el("div", "rsx-row" + (r.actual ? " actual" : "") + (r.extra ? " extra" : ""));
    row.title = `${r.w}: P = ${pct(r.p)}, rank ${r.rank}`;
    row.appendChild(el("span", "rsx-word", short(r.w, 16) + (r.extra ? ` (rank ${r.rank})` : "")));
    const track = el("span", "rsx-track");
    const fill = el("span", "rsx-fill");
    fill.style.width = (100 * Math.min(1, (r.p || 0) / xmax)).toFixed(2) + "%";
    fill.style.background = r.actual ? HIGHLIGHT : MUTED;
    track.appendChild(fill);
    row.appendChild(track);
    row.appendChild(el("span", "rsx-p", pct(r.p)));
    list.appendChild(row);
  }
  S.topk.appendChild(list);
}

function renderChange(S, i) {
  const d = S.data, qs = Object.keys(S.states);
  panelTitle(S.change, `Change at “${short(d.tokens[i].label, 18)}” (layer ${d.layer})`);
  S.change.dataset.position = String(S.pos);
  const W = Math.max(220, S.change.clientWidth - 4), H = qs.length > 1 ? 118 : 236;
  S.changeCanvases = [];
  for (const q of qs) {
    const cap = el("div", "rsx-cap");
    cap.append(`Δ${q} = ${q}`, el("sub", null, "t"), ` − ${q}`, el("sub", null, "t−1"));
    if (d.dmax && d.dmax[q] > (d.dlim[q] || 1) * 1.2)
      cap.append(el("span", "rsx-clip", ` · ▲▼ beyond the axis (largest in this text ±${d.dmax[q].toFixed(2)})`));
    S.change.appendChild(cap);
    const cv = el("canvas", "rsx-canvas");
    S.change.appendChild(cv);
    const g = sizeCanvas(cv, W, H);
    const U = d.units, cur = S.states[q].subarray(i * U, (i + 1) * U);
    const prev = i > 0 ? S.states[q].subarray((i - 1) * U, i * U) : S.prev[q];
    const m = (d.dlim[q] || 1) * 1.2, L = 40, R = 6, T = 8, B = 16;
    const pw = W - L - R, ph = H - T - B, y0 = T + ph / 2, bw = pw / U;
    g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
    const delta = new Float32Array(U);
    for (let u = 0; u < U; u++) {
      const v = cur[u] - prev[u]; delta[u] = v;
      const hgt = Math.max(-1, Math.min(1, v / m)) * (ph / 2);
      g.fillStyle = v >= 0 ? POS : NEG;
      g.fillRect(L + u * bw, v >= 0 ? y0 - hgt : y0, Math.max(bw, 0.6), Math.abs(hgt));
      if (Math.abs(v) > m) {        // beyond the axis: a mark at the clipped end (hover gives the value)
        const x = L + (u + 0.5) * bw, y = v > 0 ? T : T + ph, s = v > 0 ? -1 : 1;
        g.fillStyle = "#222";
        g.beginPath(); g.moveTo(x - 3, y); g.lineTo(x + 3, y); g.lineTo(x, y + 5 * s); g.fill();
      }
    }
    g.strokeStyle = "#888"; g.lineWidth = 1;
    g.beginPath(); g.moveTo(L, y0); g.lineTo(L + pw, y0); g.stroke();
    g.fillStyle = "#555"; g.textAlign = "right"; g.textBaseline = "middle";
    g.fillText(m.toFixed(2), L - 4, T + 4); g.fillText("0", L - 4, y0); g.fillText((-m).toFixed(2), L - 4, T + ph - 4);
    g.textAlign = "center"; g.textBaseline = "top";
    g.fillText(`unit (0–${U - 1})`, L + pw / 2, T + ph + 2);
    // the three largest changes labelled uN; a label that would overlap one already placed is skipped for
    // the next largest (labels of nearby units collided: "u324u339"). The boxes are kept on the canvas.
    const order = Array.from(delta.keys()).sort((a, b) => Math.abs(delta[b]) - Math.abs(delta[a])).slice(0, 24);
    g.fillStyle = "#222"; g.font = "10px sans-serif";
    const placed = [];
    for (const u of order) {
      if (placed.length === 3 || Math.abs(delta[u]) < 1e-6) break;
      const hgt = Math.max(-1, Math.min(1, delta[u] / m)) * (ph / 2), up = delta[u] >= 0;
      const x = L + (u + 0.5) * bw, y = up ? Math.max(T + 8, y0 - hgt - 1) : Math.min(T + ph - 8, y0 - hgt + 1);
      const w = g.measureText("u" + u).width + 2;
      const box = { u, x0: x - w / 2, x1: x + w / 2, y0: up ? y - 11 : y, y1: up ? y : y + 11 };
      if (placed.some(p => box.x0 < p.x1 && p.x0 < box.x1 && box.y0 < p.y1 && p.y0 < box.y1)) continue;
      placed.push(box);
      g.textBaseline = up ? "bottom" : "top";
      g.fillText("u" + u, x, y);
    }
    cv.dataset.labels = JSON.stringify(placed.map(p => [p.u, +p.x0.toFixed(1), +p.x1.toFixed(1), +p.y0.toFixed(1), +p.y1.toFixed(1)]));
    cv.addEventListener("mousemove", e => {
      const u = Math.floor((e.offsetX - L) / bw);
      if (u < 0 || u >= U) return hideTip(S);
      showTip(S, e, `unit ${u}\nΔ${q} = ${fmt(delta[u])}\n${q}: ${num(prev[u])} → ${num(cur[u])}`);
    });
    cv.addEventListener("mouseleave", () => hideTip(S));
  }
}

function renderGates(S, i) {
  const d = S.data, names = Object.keys(d.gates);
  S.gates.dataset.position = String(S.pos);
  if (!names.length) {
    panelTitle(S.gates, "Gates");
    S.gates.appendChild(withSubs(el("div", "rsx-note"), "A simple RNN has no gates: it rewrites its whole state h at every step, h_t = tanh(W x_t + U h_{t−1} + b)."));
    return;
  }
  panelTitle(S.gates, `Gates after “${short(d.tokens[i].label, 18)}” (layer ${d.layer})`);
  const W = Math.max(200, S.gates.clientWidth - 4), H = Math.floor(236 / names.length) + 4;
  if (!S.gateMax) S.gateMax = (d.gate_max || Math.max(...names.map(g => Math.max(...d.gates[g].hist.flat())))) * 1.15 || 1;
  const colours = lut(d.gate_stops);
  for (const g of names) {
    const cv = el("canvas", "rsx-canvas");
    S.gates.appendChild(cv);
    const c = sizeCanvas(cv, W, H);
    const hist = d.gates[g].hist[i], bins = hist.length, mean = d.gates[g].mean[i] ?? NaN;
    const L = 70, R = 8, T = 4, B = 14, pw = W - L - R, ph = H - T - B;
    c.fillStyle = "#fff"; c.fillRect(0, 0, W, H);
    for (let b = 0; b < bins; b++) {
      const hgt = Math.min(1, hist[b] / S.gateMax) * ph;
      const col = colours[Math.round(255 * (b + 0.5) / bins)];
      c.fillStyle = `rgb(${col[0]},${col[1]},${col[2]})`;
      c.fillRect(L + b * pw / bins + 0.5, T + ph - hgt, pw / bins - 1, hgt);
      if (hgt > 0.5) {            // outlined: the palest (closed) bins must show as well
        c.strokeStyle = "#5a6b5a"; c.lineWidth = 0.6;
        c.strokeRect(L + b * pw / bins + 0.8, T + ph - hgt + 0.3, pw / bins - 1.6, hgt - 0.3);
      }
    }
    c.strokeStyle = "#c8ccd2"; c.beginPath(); c.moveTo(L, T + ph + 0.5); c.lineTo(L + pw, T + ph + 0.5); c.stroke();
    if (Number.isFinite(mean)) {
      const mx = L + mean * pw;
      c.fillStyle = MARK; c.beginPath(); c.moveTo(mx - 5, T); c.lineTo(mx + 5, T); c.lineTo(mx, T + 8); c.fill();
      const label = `mean ${mean.toFixed(2)}`, right = mx + 7 + c.measureText(label).width <= W;
      c.textBaseline = "top"; c.textAlign = right ? "left" : "right";
      c.fillText(label, right ? mx + 7 : mx - 7, T);
    }
    c.textAlign = "left"; c.textBaseline = "middle"; c.font = "bold 12px sans-serif";
    c.fillText(g, 4, T + ph / 2 - 6);
    c.font = "11px sans-serif"; c.fillStyle = "#555";
    c.fillText(d.gates[g].name.split(" ")[0], 4, T + ph / 2 + 8);
    c.textBaseline = "top"; c.textAlign = "left"; c.fillText("closed 0", L, T + ph + 1);
    c.textAlign = "right"; c.fillText("1 open", L + pw, T + ph + 1);
    cv.addEventListener("mousemove", e => {
      const b = Math.floor((e.offsetX - L) / (pw / bins));
      if (b < 0 || b >= bins) return hideTip(S);
      showTip(S, e, `${g} in [${(b / bins).toFixed(2)}, ${((b + 1) / bins).toFixed(2)}): ${(100 * hist[b]).toFixed(0)}% of units\nmean ${Number.isFinite(mean) ? mean.toFixed(3) : "–"}`);
    });
    cv.addEventListener("mouseleave", () => hideTip(S));
  }
}

// ------------------------------------------------------------------------------------- heatmaps
function drawHeat(S) {
  const d = S.data;
  hideTip(S);
  S.heat.textContent = "";
  S.heatMaps = [];
  const T = d.hi - d.lo, U = d.units, labels = d.tokens.map(t => t.label);
  S.heat.dataset.quantities = d.heat.map(h => h.q).join(",");
  S.heat.dataset.labels = labels.join("|");
  if (!d.heat.length) return;
  const perRow = T <= 20 && d.heat.length > 1 ? 2 : 1;
  // the heatmap's own width (the presenter view puts the next-word bars beside it), and a height cap a
  // stylesheet may set (--rsx-heat-h: the presenter view at 1024 x 768)
  const full = Math.max(320, S.heat.clientWidth || S.box.clientWidth || 900);
  const cap = parseFloat(getComputedStyle(S.box).getPropertyValue("--rsx-heat-h")) || 340;
  const W = Math.floor((full - (perRow - 1) * 16) / perRow);
  const rot = T > 12, fs = T <= 25 ? 13 : T <= 45 ? 12 : T <= 80 ? 10 : 8;
  const longest = Math.max(...labels.map(l => short(l, 14).length));
  const L = 50, R = 70, TOP = 8, B = rot ? Math.ceil(0.55 * fs * longest * 0.77 + fs + 14) : fs + 16;
  const ph = Math.round(Math.min(cap, Math.max(Math.min(180, cap), 0.8 * U))), H = TOP + ph + B;
  const grid = el("div", "rsx-heatgrid");
  grid.style.gridTemplateColumns = `repeat(${perRow}, minmax(0, 1fr))`;
  S.heat.appendChild(grid);
  for (const hm of d.heat) {
    const vals = hm.data ? decodeF32(hm.data) : S.states[hm.q];
    const sc = hm.scale, colours = lut(sc.stops);
    const cell = el("div", "rsx-heatcell");
    const title = el("div", "rsx-title");
    title.appendChild(el("b", null, hm.q));
    withSubs(title, ` · ${sc.description} · layer ${d.layer}` + (sc.log ? " · colour on a log scale" : ""));
    cell.appendChild(title);
    const wrap = el("div", "rsx-heatwrap");
    const cv = el("canvas", "rsx-canvas rsx-heatcanvas");
    cv.dataset.q = hm.q;
    const overlay = el("canvas", "rsx-overlay");
    wrap.append(cv, overlay);
    cell.appendChild(wrap);
    grid.appendChild(cell);
    const g = sizeCanvas(cv, W, H);
    sizeCanvas(overlay, W, H);
    const pw = W - L - R;
    // one pixel per (token, unit), scaled up without smoothing
    const img = new ImageData(T, U);
    const z0 = sc.zmin, z1 = sc.zmax;
    for (let t = 0; t < T; t++) {
      for (let u = 0; u < U; u++) {
        let v = vals[t * U + u];
        if (sc.log) v = symlog(v);
        const k = Math.max(0, Math.min(255, Math.round(255 * (v - z0) / (z1 - z0))));
        const c = Number.isFinite(v) ? colours[k] : NAN_RGB, o = 4 * (u * T + t);
        img.data[o] = c[0]; img.data[o + 1] = c[1]; img.data[o + 2] = c[2]; img.data[o + 3] = 255;
      }
    }
    const off = document.createElement("canvas");
    off.width = T; off.height = U;
    off.getContext("2d").putImageData(img, 0, 0);
    g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
    g.imageSmoothingEnabled = false;
    g.drawImage(off, L, TOP, pw, ph);
    // axes: unit ticks, token labels, colour bar
    g.fillStyle = "#444"; g.textAlign = "right"; g.textBaseline = "middle"; g.font = "11px sans-serif";
    for (const u of [0, Math.floor(U / 4), Math.floor(U / 2), Math.floor(3 * U / 4), U - 1])
      g.fillText(String(u), L - 4, TOP + (u + 0.5) * ph / U);
    g.save(); g.translate(12, TOP + ph / 2); g.rotate(-Math.PI / 2); g.textAlign = "center"; g.fillText("unit", 0, 0); g.restore();
    g.font = `${fs}px 'Source Sans Pro', Helvetica, Arial, sans-serif`; g.fillStyle = "#262730";
    const cw = pw / T;
    labels.forEach((lab, t) => {
      const x = L + (t + 0.5) * cw, y = TOP + ph + 4;
      if (rot) { g.save(); g.translate(x, y); g.rotate(-50 * Math.PI / 180); g.textAlign = "right"; g.textBaseline = "middle"; g.fillText(short(lab, 14), 0, 0); g.restore(); }
      else { g.textAlign = "center"; g.textBaseline = "top"; g.fillText(short(lab, 14), x, y); }
    });
    const cbx = L + pw + 14, cbw = 12;
    for (let k = 0; k < ph; k++) {
      const c = colours[Math.round(255 * (1 - k / (ph - 1)))];
      g.fillStyle = `rgb(${c[0]},${c[1]},${c[2]})`; g.fillRect(cbx, TOP + k, cbw, 1.2);
    }
    g.fillStyle = "#444"; g.font = "10px sans-serif"; g.textAlign = "left"; g.textBaseline = "middle";
    const ticks = sc.log ? [sc.lo, -10, -1, 0, 1, 10, sc.hi].filter(v => Math.abs(v) <= sc.hi && (Math.abs(v) < 0.6 * sc.hi || Math.abs(v) === sc.hi))
                         : (sc.signed ? [sc.lo, 0, sc.hi] : [sc.lo, (sc.lo + sc.hi) / 2, sc.hi]);
    for (const v of ticks) {
      const z = sc.log ? symlog(v) : v;
      const y = TOP + ph * (1 - (z - z0) / (z1 - z0));
      g.fillText(String(Math.round(v * 100) / 100), cbx + cbw + 3, Math.min(TOP + ph - 4, Math.max(TOP + 4, y)));
    }
    g.save(); g.translate(W - 6, TOP + ph / 2); g.rotate(-Math.PI / 2); g.textAlign = "center"; g.fillText(hm.q + (sc.log ? " (log)" : ""), 0, 0); g.restore();
    const map = { q: hm.q, vals, overlay, L, TOP, pw, ph, T, U, W, H };
    S.heatMaps.push(map);
    overlay.addEventListener("mousemove", e => {
      const t = Math.floor((e.offsetX - L) / cw), u = Math.floor((e.offsetY - TOP) / (ph / U));
      if (t < 0 || t >= T || u < 0 || u >= U) { overlay.style.cursor = "default"; return hideTip(S); }
      overlay.style.cursor = "pointer";
      showTip(S, e, `token “${labels[t]}” (#${d.lo + t})\nunit ${u}\n${hm.q} = ${num(vals[t * U + u])}`);
    });
    overlay.addEventListener("mouseleave", () => hideTip(S));
    overlay.addEventListener("click", e => {
      const t = Math.floor((e.offsetX - L) / cw);
      if (t >= 0 && t < T) select(S, d.lo + t);
    });
  }
}

function renderTabs(S) {
  const d = S.data, key = (d.views || []).join("|");
  if (S.tabsKey === key) {        // same tabs: keep the buttons (and the keyboard focus on them)
    for (const b of S.tabs.children) {
      const on = b.textContent === d.view;
      b.classList.toggle("rsx-active", on);
      b.setAttribute("aria-selected", String(on));
    }
    return;
  }
  S.tabsKey = key;
  S.tabs.textContent = "";
  for (const v of d.views || []) {
    const b = el("button", "rsx-tab" + (v === d.view ? " rsx-active" : ""), v);
    b.type = "button";
    b.setAttribute("role", "tab");
    b.setAttribute("aria-selected", String(v === d.view));
    b.addEventListener("click", () => {
      if (v === S.data.view) return;
      S.heat.classList.add("rsx-waiting");
      S.setState("view", v);
    });
    S.tabs.appendChild(b);
  }
}

function markHeat(S) {             // the selected token's column, outlined on every heatmap
  for (const m of S.heatMaps || []) {
    const g = m.overlay.getContext("2d");
    const r = window.devicePixelRatio || 1;
    g.setTransform(r, 0, 0, r, 0, 0);
    g.clearRect(0, 0, m.W, m.H);
    const t = S.pos - S.data.lo, cw = m.pw / m.T;
    g.strokeStyle = MARK; g.lineWidth = 2;
    g.strokeRect(m.L + t * cw, m.TOP + 1, Math.max(cw, 2), m.ph - 2);
  }
  S.heat.dataset.selected = String(S.pos);
}

// ------------------------------------------------------------------------------------- tooltip
function showTip(S, e, text) {
  S.tip.textContent = text;
  S.tip.style.display = "block";
  const box = S.box.getBoundingClientRect();
  S.tip.style.left = (e.clientX - box.left + 14) + "px";
  S.tip.style.top = (e.clientY - box.top + 14) + "px";
}
function hideTip(S) { S.tip.style.display = "none"; }

function teardown(S) {
  if (S.keys) document.removeEventListener("keydown", S.keys);
  S.keys = null;
  clearTimeout(S.reportTimer); clearTimeout(S.resizeTimer); clearInterval(S.timer);
  S.timer = null; S.playing = false;
  S.resize.disconnect();
}

// ------------------------------------------------------------------------------------- entry
export default function (component) {
  const { parentElement, setStateValue } = component;
  const data = Array.isArray(component.data) ? component.data[0] : component.data;   // see ui/player_component.py
  let S = parentElement.__rsx;
  if (!S || !S.box || !S.box.isConnected) {
    let speed = 1.0;             // the speed chosen last in this tab survives a rerun or page switch
    try { speed = parseFloat(sessionStorage.getItem("rsx-speed")) || 1.0; } catch (e) { /* storage off */ }
    if (!SPEEDS.some(([, v]) => v === speed)) speed = 1.0;
    S = parentElement.__rsx = { pos: null, sig: null, playing: false, timer: null, speed };
    build(parentElement, S);
  }
  S.setState = setStateValue;
  if (!data) return;
  const t0 = performance.now();
  const fresh = S.sig === null, newText = S.sig !== data.sig;
  S.data = data;
  S.drawSig = (S.drawSig || 0) + 1;
  S.gateMax = null;
  S.states = {}; S.prev = {};
  for (const q of Object.keys(data.states)) { S.states[q] = decodeF32(data.states[q]); S.prev[q] = decodeF32(data.prev[q]); }
  let resume = null;
  const inside = p => p !== null && p >= data.lo && p < data.hi;
  if (newText) {
    S.sig = data.sig; S.pos = data.pos; S.sentPos = data.pos; S.sentSig = data.sig; S.pending = null;
    if (S.playing) play(S, false);
    if (fresh) resume = recalled(data);              // mounted again on the same text
  } else if (S.pending !== null && S.pending !== undefined) {
    if (inside(S.pending)) { S.pos = S.pending; S.pending = null; }
    else if (Date.now() - S.pendingSince < PENDING_MS) {
      // an older window (dragging the slider, holding a key): the one asked for is on its way
      return () => { if (!parentElement.isConnected) teardown(S); };
    } else { S.pos = data.pos; S.pending = null; }
  } else if (!inside(S.pos)) {
    S.pos = data.pos;
  }
  if (S.speedSel) S.speedSel.value = String(S.speed);
  renderTabs(S);
  S.heat.classList.remove("rsx-waiting");
  drawHeat(S);
  render(S);
  S.width = S.box.clientWidth;
  S.box.dataset.sig = data.sig;
  S.box.dataset.drawn = String(S.drawSig);
  S.box.dataset.ms = (performance.now() - t0).toFixed(1);      // draw time, for benchmarks and debugging
  if (resume !== null && resume !== S.pos) select(S, resume);   // and tells the server
  else remember(S);
  if (!S.keys) {                    // one listener per player, however often Streamlit calls this
    S.keys = e => onKey(S, e);
    document.addEventListener("keydown", S.keys);
  }
  // Streamlit may call a cleanup for a render that a newer one overtook: only a player that has
  // left the page lets go of the keyboard, its timers and its resize observer.
  return () => { if (!parentElement.isConnected) teardown(S); };
}
