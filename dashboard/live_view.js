// The live view of a training run (dashboard/live_view.py): progress line, what the trainer does
// now, four numbers and the loss chart, drawn once and then changed in place.
//
// data (from the page run): {run_id, lang, poll, every_ms, rerun_gap_ms, seen, settled, words, colors,
//                             progress_class, view}
//   view: dashboard.live_feed.view(), everything about the run when the page ran.
//   poll: the route's path (dashboard.live_feed.ROUTE), or null when the page feeds new data itself.
// While it polls, the view asks for what is new about once a second (not while its tab is hidden)
// and redraws only what changed; when the route says the rest of the page is out of date (a run
// started or ended, an epoch ended, a change was applied) it asks Streamlit for one page rerun.

const SVG = "http://www.w3.org/2000/svg";
const PLOT = { height: 340, left: 60, right: 20, top: 40, bottom: 50 };

function add(parent, tag, cls, ns) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  if (cls) node.setAttribute("class", cls);
  parent.appendChild(node);
  return node;
}

function svgNode(parent, tag, attrs) {
  const node = add(parent, tag, null, SVG);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function boldMarkdown(text) {   // the catalogue's **bold**, and nothing else, as HTML
  return escapeHtml(text).replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>");
}

function niceTicks(max, count) {  // round steps (1, 2 or 5 times a power of ten) from 0 to max
  if (!(max > 0)) return [0];
  const raw = max / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v <= max * 1.0001; v += step) ticks.push(+v.toPrecision(12));
  return ticks;
}

function largest(floor, ...lists) {   // a loop, not Math.max(...list): a long run has too many points to spread
  let top = floor;
  for (const list of lists) for (const v of list) if (v !== null && v > top) top = v;
  return top;
}

function tickText(value) {
  return Math.abs(value) >= 1000 ? value.toLocaleString("en") : String(+value.toPrecision(4));
}

class LiveView {
  constructor(root) {
    this.parent = root;
    this.points = { step: [], raw: [], smooth: [] };
    this.visible = () => { if (!document.hidden) this.pollNow(); };
    document.addEventListener("visibilitychange", this.visible);
  }

  build() {   // on the first view: a page with no run active only watches the statuses, unseen
    const root = this.parent;
    root.querySelector(":scope > .cifarlab-live")?.remove();   // a view left by an earlier mount
    this.root = add(root, "div", "cifarlab-live");
    const bar = (this.bar = add(this.root, "div", this.data.progress_class));
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "100");
    this.barText = add(bar, "div", "cifarlab-live-bar-text");
    this.barFill = add(add(bar, "div", "cifarlab-live-track"), "div", "cifarlab-live-fill");
    this.now = add(this.root, "div", "cifarlab-live-now");
    const grid = add(this.root, "div", "cifarlab-live-metrics");
    this.metrics = [0, 1, 2, 3].map(() => {
      const box = add(grid, "div", "cifarlab-live-metric");
      box.setAttribute("data-testid", "cifarlab-live-metric");
      return { box, label: add(box, "div", "cifarlab-live-metric-label"), value: add(box, "div", "cifarlab-live-metric-value") };
    });
    this.chart = add(this.root, "div", "cifarlab-live-chart");
    this.svg = svgNode(this.chart, "svg", { role: "img" });
    this.legend = add(this.chart, "div", "cifarlab-live-legend");
    this.tip = add(this.chart, "div", "cifarlab-live-tip");
    this.svg.addEventListener("mousemove", (e) => { this.pointer = e.clientX; this.hover(); });
    this.svg.addEventListener("mouseleave", () => {
      this.pointer = null;
      this.tip.style.display = "none";
      this.hoverLine?.remove();
    });
    this.resize = new ResizeObserver(() => this.drawSoon());
    this.resize.observe(this.chart);
  }

  // A page run drew the view again: new words, digests or run; its view is the newest there is.
  update(data, trigger) {
    const fresh = !this.data || this.data.run_id !== data.run_id || this.data.lang !== data.lang;
    this.data = data;
    this.trigger = trigger;
    if (fresh) this.points = { step: [], raw: [], smooth: [] };
    if (data.view) this.apply(data.view, true);
    this.schedule(data.every_ms);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
    this.stopped = true;
    this.resize?.disconnect();
    document.removeEventListener("visibilitychange", this.visible);
  }

  // The next poll in `ms`. The trainer writes a loss point about once a second: a poll that found
  // none (it came just before the point) tries again soon, twice, so the chart never waits two
  // seconds for a point that is there; then once a second again (an epoch's test writes none).
  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = this.data.poll && !this.stopped ? setTimeout(() => this.pollNow(), ms) : null;
  }

  async pollNow() {
    const data = this.data;
    if (!data || !data.poll || this.busy) return;
    if (document.hidden) return this.schedule(data.every_ms);   // polled again when it shows
    this.busy = true;
    let fresh = false;
    try {
      const steps = this.points.step;
      const last = steps.length && !this.resync ? steps[steps.length - 1] : -1;
      const query = new URLSearchParams({ after: String(last), lang: data.lang });
      if (data.run_id !== null) query.set("run", String(data.run_id));
      const response = await fetch(`${data.poll}?${query}`, { cache: "no-store" });
      if (!response.ok) return;          // the page run shows what is wrong with the store
      const body = await response.json();
      if (this.data !== data) return;    // a page run drew the view again meanwhile
      // The rest of the page is out of date: one rerun per change, and for the run's own changes (an
      // epoch's end, the trainer's phase: three or four within a second or two) at most one per
      // rerun_gap_ms, so they come in one rerun; a run started or ended anywhere at once.
      const moved = body.statuses !== data.seen;
      if (moved || (body.run && body.run.settled !== data.settled)) {
        const asked = `${body.statuses}/${body.run ? body.run.settled : ""}`, now = Date.now();
        if (asked !== this.asked && (moved || now - (this.askedAt || 0) >= data.rerun_gap_ms)) {
          this.asked = asked;
          this.askedAt = now;
          this.trigger("changed", asked);
        }
      }
      if (body.run) fresh = this.apply(body.run, false);
    } catch (error) {
      // the server restarts or the network hiccups: the next poll tries again
    } finally {
      this.busy = false;
      this.empty = fresh ? 0 : (this.empty || 0) + 1;
      if (this.data === data) this.schedule(this.empty && this.empty <= 2 ? data.every_ms / 3 : data.every_ms);
    }
  }

  apply(view, whole) {
    if (!this.root) this.build();
    const fraction = Math.min(Math.max(view.progress.fraction, 0), 1);
    this.bar.setAttribute("aria-valuenow", String(Math.round(100 * fraction)));
    this.bar.setAttribute("aria-label", view.progress.text);
    this.barText.textContent = view.progress.text;
    this.barFill.style.width = `${(100 * fraction).toFixed(1)}%`;
    const now = view.now;
    const nowHtml = (now.badge ? `<span class="cifarlab-live-badge">▶ ${escapeHtml(now.badge)}</span> ` : "") + boldMarkdown(now.text);
    if (this.nowHtml !== nowHtml) this.now.innerHTML = this.nowHtml = nowHtml;
    view.metrics.forEach((metric, i) => {
      const slot = this.metrics[i];
      if (slot.label.textContent !== metric.label) slot.label.textContent = metric.label;
      if (slot.value.textContent !== metric.value) slot.value.textContent = metric.value;
      slot.box.title = metric.help || "";
    });
    const loss = view.loss, points = this.points;
    if (whole || loss.start === 0) {
      this.points = { step: loss.step.slice(), raw: loss.raw.slice(), smooth: loss.smooth.slice() };
    } else if (loss.start === points.step.length) {
      points.step.push(...loss.step);
      points.raw.push(...loss.raw);
      points.smooth.push(...loss.smooth);
    } else {
      this.resync = true;   // out of step with the route (points missed): the next poll asks for all
      return false;
    }
    this.resync = false;
    const epochs = JSON.stringify([loss.test, loss.means, loss.events, loss.title]);
    const grew = loss.step.length > 0;
    if (grew || whole || epochs !== this.epochs) {
      this.loss = loss;
      this.epochs = epochs;
      this.drawSoon();
    }
    return grew;
  }

  drawSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = null; this.draw(); });
  }

  scales() {
    const width = Math.max(this.chart.clientWidth, 200), p = this.points, loss = this.loss;
    const xMax = largest(1, p.step, loss.test.step, loss.means.step, loss.events.map((e) => e.step));
    const yMax = largest(1e-9, p.raw, p.smooth, loss.test.value, loss.means.value) * 1.05;
    const plotW = width - PLOT.left - PLOT.right, plotH = PLOT.height - PLOT.top - PLOT.bottom;
    return {
      width, xMax, yMax, plotW, plotH,
      x: (s) => PLOT.left + (s / xMax) * plotW,
      y: (v) => PLOT.top + plotH - (v / yMax) * plotH,
    };
  }

  draw() {
    if (!this.loss) return;
    const words = this.data.words, colors = this.data.colors, p = this.points, loss = this.loss;
    const sc = (this.sc = this.scales());
    const svg = this.svg;
    svg.replaceChildren();
    this.hoverLine = null;
    svg.setAttribute("viewBox", `0 0 ${sc.width} ${PLOT.height}`);
    svg.setAttribute("width", String(sc.width));
    svg.setAttribute("height", String(PLOT.height));
    svg.setAttribute("aria-label", loss.title);
    svgNode(svg, "text", { x: 0, y: 20, class: "cifarlab-live-title" }).textContent = loss.title;
    const grid = svgNode(svg, "g", { class: "cifarlab-live-grid" });
    for (const v of niceTicks(sc.yMax, 5)) {
      svgNode(grid, "line", { x1: PLOT.left, x2: PLOT.left + sc.plotW, y1: sc.y(v), y2: sc.y(v) });
      svgNode(svg, "text", { x: PLOT.left - 6, y: sc.y(v) + 4, "text-anchor": "end", class: "cifarlab-live-tick" }).textContent = tickText(v);
    }
    for (const s of niceTicks(sc.xMax, Math.max(2, Math.floor(sc.plotW / 90)))) {
      svgNode(grid, "line", { x1: sc.x(s), x2: sc.x(s), y1: PLOT.top, y2: PLOT.top + sc.plotH });
      svgNode(svg, "text", { x: sc.x(s), y: PLOT.top + sc.plotH + 16, "text-anchor": "middle", class: "cifarlab-live-tick" }).textContent = tickText(s);
    }
    svgNode(svg, "text", { x: PLOT.left + sc.plotW / 2, y: PLOT.height - 8, "text-anchor": "middle", class: "cifarlab-live-axis" }).textContent = words.x;
    svgNode(svg, "text", { x: 0, y: 0, transform: `translate(14 ${PLOT.top + sc.plotH / 2}) rotate(-90)`, "text-anchor": "middle", class: "cifarlab-live-axis" }).textContent = words.y;
    const few = p.step.length < 40;   // a handful of points: show them, a line needs two
    this.line(p.step, p.raw, { stroke: colors.raw, "stroke-width": 1 }, few ? "circle" : null, 2.5);
    this.line(p.step, p.smooth, { stroke: colors.smooth, "stroke-width": 2.5 }, few ? "circle" : null, 2);
    this.line(loss.test.step, loss.test.value, { stroke: colors.test, "stroke-width": 1.5, "stroke-dasharray": "2 3" }, "circle", 4);
    this.line(loss.means.step, loss.means.value, { stroke: colors.means, "stroke-width": 2, "stroke-dasharray": "6 4" }, "square", 3.5);
    loss.events.forEach((event, i) => {
      const x = sc.x(event.step);
      svgNode(svg, "line", { x1: x, x2: x, y1: PLOT.top, y2: PLOT.top + sc.plotH, stroke: colors.event, "stroke-width": 1.5, "stroke-dasharray": "5 4" });
      const label = svgNode(svg, "text", { x: x + 4, y: PLOT.top + 12 + 14 * (i % 3), class: "cifarlab-live-event", fill: colors.event });
      label.textContent = event.text;
    });
    if (!p.step.length) {
      svgNode(svg, "text", { x: PLOT.left + sc.plotW / 2, y: PLOT.top + sc.plotH / 2, "text-anchor": "middle", class: "cifarlab-live-waiting" }).textContent = words.waiting;
    }
    this.drawLegend();
    if (this.pointer != null) this.hover();   // the reading under the pointer follows the new points
  }

  line(steps, values, style, marker, size) {
    const svg = this.svg, sc = this.sc;
    let d = "";
    steps.forEach((s, i) => {
      if (values[i] === null) return;
      d += `${d ? "L" : "M"}${sc.x(s).toFixed(1)},${sc.y(values[i]).toFixed(1)}`;
    });
    if (d) svgNode(svg, "path", { d, fill: "none", "stroke-linejoin": "round", ...style });
    if (!marker) return;
    steps.forEach((s, i) => {
      if (values[i] === null) return;
      const x = sc.x(s), y = sc.y(values[i]);
      if (marker === "circle") svgNode(svg, "circle", { cx: x, cy: y, r: size, fill: style.stroke });
      else svgNode(svg, "rect", { x: x - size, y: y - size, width: 2 * size, height: 2 * size, fill: style.stroke });
    });
  }

  drawLegend() {
    const words = this.data.words, colors = this.data.colors;
    const entries = [["raw", colors.raw, "solid"], ["smooth", colors.smooth, "solid"],
                     ["test", colors.test, "dotted"], ["means", colors.means, "dashed"]];
    const html = entries.map(([name, color, style]) =>
      `<span><i style="border-top: 3px ${style} ${color}"></i>${escapeHtml(words[name])}</span>`).join("");
    if (this.legendHtml !== html) this.legend.innerHTML = this.legendHtml = html;
  }

  hover() {
    const p = this.points, sc = this.sc;
    if (!sc || !p.step.length) return;
    const box = this.svg.getBoundingClientRect();
    const step = ((this.pointer - box.left - PLOT.left) / sc.plotW) * sc.xMax;
    let lo = 0, hi = p.step.length - 1;
    while (lo < hi) {            // the first point at or after `step`, then the nearer of it and the one before
      const mid = (lo + hi) >> 1;
      if (p.step[mid] < step) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(p.step[lo - 1] - step) < Math.abs(p.step[lo] - step)) lo -= 1;
    const words = this.data.words, x = sc.x(p.step[lo]);
    this.hoverLine?.remove();
    this.hoverLine = svgNode(this.svg, "line", { x1: x, x2: x, y1: PLOT.top, y2: PLOT.top + sc.plotH, class: "cifarlab-live-hover" });
    const value = (v) => (v === null ? "–" : v.toFixed(4));
    this.tip.innerHTML = `${escapeHtml(words.x)} ${p.step[lo]}<br>${escapeHtml(words.raw)} ${value(p.raw[lo])}` +
      `<br>${escapeHtml(words.smooth)} ${value(p.smooth[lo])}`;
    this.tip.style.display = "block";
    this.tip.style.left = `${Math.min(x + 10, sc.width - 180)}px`;
    this.tip.style.top = `${PLOT.top + 4}px`;
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let view = parentElement.__cifarlabLive;
  if (!view) view = parentElement.__cifarlabLive = new LiveView(parentElement);
  view.update(data, setTriggerValue);
  return () => {
    view.stop();
    parentElement.__cifarlabLive = null;
  };
}
