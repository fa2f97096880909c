// A hyperparameter sweep's trials: a table (each trial links to its own task) and a
// parallel-coordinates plot (one axis per searched field, then the metric; one line per trial,
// the best one bold, pruned ones dashed), drawn as SVG from the sweep's progress or result.
import { enc } from "./api";
import { h, table } from "./dom";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>, text?: string): SVGElement {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function fmt(v: unknown): string {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (v === null || v === undefined) return "-";
  return String(v);
}

interface Axis {
  name: string;
  pos: (v: unknown) => number | null;  // 0 (bottom) .. 1 (top), null: no value
  low: string;
  high: string;
}

// An axis over the trials' values: numbers linearly (log-uniform fields on a log scale), other
// values as evenly spaced categories in the order first seen.
function axis(name: string, values: unknown[], log: boolean): Axis {
  const nums = values.filter((v): v is number => typeof v === "number" && Number.isFinite(v) && (!log || v > 0));
  if (nums.length > 0 && nums.length === values.filter((v) => v !== null && v !== undefined).length) {
    const f = (v: number) => (log ? Math.log10(v) : v);
    const lo = Math.min(...nums.map(f));
    const hi = Math.max(...nums.map(f));
    return {
      name,
      pos: (v) => (typeof v === "number" && (!log || v > 0) ? (hi > lo ? (f(v) - lo) / (hi - lo) : 0.5) : null),
      low: fmt(Math.min(...nums)),
      high: fmt(Math.max(...nums)),
    };
  }
  const cats: string[] = [];
  for (const v of values) if (v !== null && v !== undefined && !cats.includes(String(v))) cats.push(String(v));
  return {
    name,
    pos: (v) => (v === null || v === undefined ? null : cats.length > 1 ? cats.indexOf(String(v)) / (cats.length - 1) : 0.5),
    low: cats[0] ?? "",
    high: cats.length > 1 ? cats[cats.length - 1] : "",
  };
}

export function sweepView(trials: any[], metric: string, parameters: Record<string, any>, best?: number): HTMLElement {
  const paths = Object.keys(parameters ?? {}).map((p) => p.replace(/^model_train\./, ""));
  const rows = trials.map((t) => [
    h("a", { href: "#/tasks/" + enc(t.task_id ?? "") }, String(t.trial)),
    ...paths.map((p) => fmt(t.params?.[p])),
    fmt(t.metric),
    fmt(t.epochs),
    h("span", { class: "status " + (t.state === "pruned" ? "cancelled" : t.state) }, t.state + (t.pruned_at ? ` at epoch ${t.pruned_at}` : "")),
  ]);
  const caption = best ? `Trials (best: trial ${best})` : "Trials";
  const tbl = table(["trial", ...paths, metric, "epochs", "state"], rows, caption, "trials");

  // The plot.
  const W = 640, H = 260, top = 28, bottom = 28, left = 40, right = 40;
  const axes: Axis[] = [
    ...paths.map((p) => {
      const type = String(parameters[p]?.type ?? parameters["model_train." + p]?.type ?? "").replace("-", "_");
      return axis(p, trials.map((t) => t.params?.[p]), type === "log_uniform" || type === "loguniform");
    }),
    axis(metric, trials.map((t) => t.metric), false),
  ];
  const plot = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "parcoords", role: "img", "aria-label": `parallel coordinates of ${trials.length} trials` });
  const x = (i: number) => left + (axes.length > 1 ? (i * (W - left - right)) / (axes.length - 1) : (W - left - right) / 2);
  const y = (p: number) => top + (1 - p) * (H - top - bottom);
  axes.forEach((a, i) => {
    plot.append(svg("line", { x1: x(i), x2: x(i), y1: y(0), y2: y(1), stroke: "#64748b", "stroke-width": 1 }));
    plot.append(svg("text", { x: x(i), y: top - 10, "text-anchor": "middle", "font-size": 11, fill: "#0f172a" }, a.name));
    plot.append(svg("text", { x: x(i), y: H - 8, "text-anchor": "middle", "font-size": 10, fill: "#475569" }, a.low));
    plot.append(svg("text", { x: x(i) + 4, y: top + 10, "text-anchor": "start", "font-size": 10, fill: "#475569" }, a.high));
  });
  for (const t of [...trials].sort((a, b) => Number(a.trial === best) - Number(b.trial === best))) {
    const values = [...paths.map((p) => t.params?.[p]), t.metric];
    const points: string[] = [];
    values.forEach((v, i) => {
      const p = axes[i].pos(v);
      if (p !== null) points.push(`${x(i)},${y(p)}`);
    });
    if (points.length < 2) continue;
    const isBest = t.trial === best;
    const line = svg("polyline", {
      points: points.join(" "),
      fill: "none",
      stroke: isBest ? "#1d4ed8" : t.state === "pruned" ? "#94a3b8" : t.state === "succeeded" ? "#047857" : "#b91c1c",
      "stroke-width": isBest ? 3 : 1.5,
      "stroke-dasharray": t.state === "pruned" || t.state === "stopped" ? "4 3" : "none",
      "data-trial": String(t.trial),
    });
    line.append(svg("title", {}, `trial ${t.trial}: ${t.state}, ${metric} ${fmt(t.metric)}`));
    plot.append(line);
  }
  return h("section", { class: "sweep" }, h("h2", {}, "Hyperparameter sweep"), plot, tbl);
}
