// Training curves with Chart.js (bundled, no CDN).
import { CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from "chart.js";

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip);

const COLORS = ["#1d4ed8", "#b91c1c", "#047857", "#a16207", "#7c3aed", "#0e7490"];

export interface Series {
  label: string;
  points: { x: number; y: number }[];
}

export class LineChart {
  chart: Chart;
  constructor(canvas: HTMLCanvasElement, title: string, xLabel: string) {
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", title);
    this.chart = new Chart(canvas, {
      type: "line",
      data: { datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        scales: { x: { type: "linear", title: { display: true, text: xLabel } }, y: { beginAtZero: false } },
        plugins: { legend: { position: "bottom" }, title: { display: false } },
      },
    });
  }
  set(series: Series[]): void {
    this.chart.data.datasets = series.map((s, i) => ({
      label: s.label,
      data: s.points,
      borderColor: COLORS[i % COLORS.length],
      backgroundColor: COLORS[i % COLORS.length],
      pointRadius: s.points.length > 40 ? 0 : 2,
      borderWidth: 2,
    }));
    this.chart.update();
    // How many points are drawn (the browser tests watch a curve grow).
    this.chart.canvas.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
  }
  destroy(): void {
    this.chart.destroy();
  }
}

// The per-epoch series of a training history ({epoch: [...], loss: [...], accuracy: [...], ...}).
export function historySeries(history: any, keys: string[]): Series[] {
  if (!history || !Array.isArray(history.epoch)) return [];
  return keys
    .filter((k) => Array.isArray(history[k]) && history[k].length > 0)
    .map((k) => ({ label: k, points: history[k].map((y: number, i: number) => ({ x: history.epoch[i] ?? i + 1, y })) }));
}
