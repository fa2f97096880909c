// Deployments: status, versions, canary share, promote / roll back, undeploy, and each model's
// request count and mean latency from /metrics; a form to deploy (a path or catalog:// ref).
import { api, enc, get, token } from "../api";
import { add, field, h, notice, table } from "../dom";
import type { Page } from "../main";

interface Rate {
  count: number;
  seconds: number;
}

async function inferenceMetrics(): Promise<Map<string, Rate>> {
  const out = new Map<string, Rate>();
  try {
    const t = token();
    const r = await fetch("/metrics", { headers: t ? { Authorization: "Bearer " + t } : {} });
    const text = await r.text();
    for (const line of text.split("\n")) {
      const m = /^mlaas_inference_request_duration_seconds_(sum|count)\{([^}]*)\} ([0-9.e+-]+)/.exec(line);
      if (!m) continue;
      const model = /model="([^"]*)"/.exec(m[2])?.[1] ?? "";
      const r0 = out.get(model) ?? { count: 0, seconds: 0 };
      if (m[1] === "count") r0.count += Number(m[3]);
      else r0.seconds += Number(m[3]);
      out.set(model, r0);
    }
  } catch {
    /* metrics are optional here */
  }
  return out;
}

export function deploymentsPage(): Page {
  let timer = 0;
  let left = false;
  return {
    title: "Deployments",
    leave() {
      left = true;
      clearInterval(timer);
    },
    async render(main) {
      const list = h("div", { "aria-live": "polite" });
      const status = h("div", { "aria-live": "polite" });
      let last = new Map<string, Rate>();
      let lastAt = Date.now();
      const act = async (method: string, path: string) => {
        try {
          await api(method, path);
          await reload();
        } catch (e: any) {
          status.replaceChildren(notice(e.message, "error"));
        }
      };
      const reload = async () => {
        const [d, m] = [await get("/api/v1/deployments"), await inferenceMetrics()];
        const now = Date.now();
        const secs = (now - lastAt) / 1000;
        list.replaceChildren(d.deployments.length === 0 ? h("p", {}, "Nothing deployed.") : table(
          ["name", "status", "serving", "canary", "model", "servers", "requests", "req/s", "mean latency", ""],
          d.deployments.map((x: any) => {
            const serving = x.versions.find((v: any) => v.version === x.active_version);
            const r = m.get(x.name) ?? { count: 0, seconds: 0 };
            const before = last.get(x.name) ?? r;
            const rate = secs > 0 ? (r.count - before.count) / secs : 0;
            const pinned = x.resources?.labels?.length ? ` (${x.resources.labels.join(", ")})` : "";
            return [x.name, h("span", { class: "status " + x.status, title: x.message ?? x.error ?? "" }, x.status), x.active_version ?? "-",
              x.canary ? `${x.canary.version} (${x.canary.percent}%)` : "-",
              serving?.model?.catalog?.reference ?? serving?.model?.path ?? "-",
              `${(x.hosts ?? []).length}${pinned}`, String(r.count), rate.toFixed(1),
              r.count ? `${((1000 * r.seconds) / r.count).toFixed(1)} ms` : "-",
              h("span", { class: "buttons" },
                x.canary ? [h("button", { type: "button", onclick: () => void act("POST", `/api/v1/deployments/${enc(x.name)}/promote`) }, "Promote"),
                  h("button", { type: "button", onclick: () => void act("POST", `/api/v1/deployments/${enc(x.name)}/rollback`) }, "Roll back")] : null,
                h("button", { type: "button", onclick: () => void act("DELETE", `/api/v1/deployments/${enc(x.name)}`) }, "Undeploy"))];
          })));
        last = m;
        lastAt = now;
      };
      const name = h("input", { type: "text", required: true });
      const model = h("input", { type: "text", required: true, placeholder: "models/m or catalog://name@champion" });
      const canary = h("input", { type: "number", min: "1", max: "100", placeholder: "100" });
      const labels = h("input", { type: "text", placeholder: "any server" });
      const form = h("form", { class: "inline", onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          const body: any = { name: name.value, model: { path: model.value } };
          if (canary.value) body.canary_percent = Number(canary.value);
          const wanted = labels.value.split(",").map((l: string) => l.trim()).filter((l: string) => l);
          if (wanted.length) body.resources = { labels: wanted };
          await api("POST", "/api/v1/deployments", body);
          status.replaceChildren(notice(`Deploying ${name.value}…`, "ok"));
          await reload();
        } catch (err: any) {
          status.replaceChildren(notice(err.message + (err.field ? ` (${err.field})` : ""), "error"));
        }
      } }, field("Name", name, "name"), field("Model", model, "model.path"), field("Canary %", canary, "canary_percent"),
        field("Server labels", labels, "resources.labels"),
        h("button", { type: "submit" }, "Deploy"));
      add(main, h("h1", {}, "Deployments"), form, status, list);
      await reload();
      if (!left) timer = window.setInterval(() => void reload(), 3000);
    },
  };
}
