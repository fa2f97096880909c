// Tasks: the list, and one task live (server-sent events): status, progress, loss and accuracy
// curves that grow while it runs, logs, cancel, and "register in the catalog" once it succeeded.
import { api, enc, followTask, get, qs } from "../api";
import { historySeries, LineChart } from "../charts";
import { add, fmtDate, field, h, notice, table } from "../dom";
import { sweepView } from "../sweep";
import type { Page } from "../main";

export function tasksPage(): Page {
  return {
    title: "Tasks",
    async render(main) {
      const body = h("div");
      const more = h("button", { type: "button", hidden: true }, "More");
      let cursor: string | null = null;
      const rows: any[] = [];
      const load = async () => {
        const page = await get("/api/v1/tasks" + qs({ limit: 50, cursor }));
        rows.push(...page.tasks);
        cursor = page.next_cursor;
        more.hidden = !cursor;
        body.replaceChildren(rows.length === 0 ? h("p", {}, "No task yet.") : table(["task", "type", "status", "progress", "submitted", "elapsed"], rows.map((t) => [
          h("a", { href: "#/tasks/" + enc(t.task_id) }, t.task_id.slice(0, 8)), t.task_type, h("span", { class: "status " + t.task_status }, t.task_status),
          t.progress?.fraction !== undefined ? Math.round(t.progress.fraction * 100) + "%" : "-", t.stats?.submitted ?? "-", t.stats?.elapsed ?? "-"])));
      };
      more.addEventListener("click", () => void load());
      add(main, h("h1", {}, "Tasks"), body, more);
      await load();
    },
  };
}

export function taskPage(id: string): Page {
  const abort = new AbortController();
  const charts: LineChart[] = [];
  return {
    title: "Task " + id.slice(0, 8),
    leave() {
      abort.abort();
      charts.forEach((c) => c.destroy());
    },
    async render(main) {
      const status = h("p", { class: "status-line", "aria-live": "polite" });
      const bar = h("progress", { max: 100, value: 0, "aria-label": "task progress" });
      const lossCanvas = h("canvas");
      const accCanvas = h("canvas");
      const result = h("div");
      const sweep = h("div");  // a sweep's trials, live
      const logs = h("pre", { class: "logs" });
      const cancelStatus = h("span", { "aria-live": "polite" });
      const cancel = h("button", { type: "button", onclick: async () => {
        try {
          await api("POST", "/api/v1/tasks/" + enc(id) + "/cancel");
        } catch (e: any) {
          cancelStatus.replaceChildren(notice(e.message, "error"));
        }
      } }, "Cancel");
      add(main, h("h1", {}, "Task ", h("code", {}, id)), status, bar, cancel, cancelStatus,
        h("div", { class: "charts" }, h("div", { class: "chart" }, lossCanvas), h("div", { class: "chart" }, accCanvas)), sweep, result,
        h("h2", {}, "Log"), logs);
      const loss = new LineChart(lossCanvas, "training loss", "step");
      const acc = new LineChart(accCanvas, "accuracy and held-out loss per epoch", "epoch");
      charts.push(loss, acc);
      const steps: { x: number; y: number }[] = [];
      let logAfter = 0;
      let pulling: Promise<void> = Promise.resolve();
      // One pull at a time, each after the lines the previous one brought.
      const pullLogs = () => (pulling = pulling.then(async () => {
        const r = await get("/api/v1/tasks/" + enc(id) + "/logs" + qs({ after: logAfter, limit: 1000 }));
        for (const l of r.logs ?? []) {
          logs.append(`${l.time ?? ""} ${l.level} ${l.message}\n`);
          logAfter = Math.max(logAfter, l.seq ?? logAfter);
        }
      }).catch(() => undefined));
      let request: any = null;  // the task's request (only the first GET has it)
      let summarized = false;
      const show = (t: any) => {
        const p = t.progress ?? {};
        status.replaceChildren(h("span", { class: "status " + t.task_status }, t.task_status), " ", t.task_type, " · ",
          p.message ?? "", p.eta_seconds ? ` · about ${Math.round(p.eta_seconds)} s left` : "");
        bar.value = typeof p.fraction === "number" ? p.fraction * 100 : 0;
        const extra = p;  // the task's own figures (loss, history) sit beside fraction and step
        if (typeof extra.loss === "number" && typeof p.step === "number" && (steps.length === 0 || steps[steps.length - 1].x < p.step)) {
          steps.push({ x: p.step, y: extra.loss });
          loss.set([{ label: "loss", points: steps }]);
        }
        const history = t.history ?? extra.history;
        if (history) acc.set(historySeries(history, ["accuracy", "eval_accuracy", "masked_accuracy", "eval_masked_accuracy", "eval_loss"]));
        const trials = t.trials ?? p.trials;
        if (t.task_type === "nlp_sweep") (lossCanvas.parentElement as HTMLElement).hidden = true;  // trials have the steps
        if (t.task_type === "nlp_sweep" && Array.isArray(trials) && trials.length > 0) {
          const req = t.request ?? request;
          sweep.replaceChildren(sweepView(trials, t.metric ?? p.metric ?? "metric", req?.sweep?.parameters ?? {}, t.best?.trial ?? p.best?.trial));
        }
        const ended = ["succeeded", "failed", "cancelled"].includes(t.task_status);
        cancel.hidden = ended;
        if (ended && !summarized) {
          summarized = true;
          result.replaceChildren(summary({ ...t, request: t.request ?? request }));
          void pullLogs();
        }
        return ended;
      };
      const first = await get("/api/v1/tasks/" + enc(id));
      request = first.request;
      await pullLogs();
      if (show(first)) return;
      // Live over the event stream; polled once a second when the stream is refused or drops.
      followTask(id, (t) => void show(t), abort.signal).catch(async () => {
        while (!abort.signal.aborted) {
          try {
            if (show(await get("/api/v1/tasks/" + enc(id)))) return;
          } catch {
            /* try again */
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      });
    },
  };
}

function summary(t: any): HTMLElement {
  const parts: (HTMLElement | null)[] = [];
  if (t.task_status === "failed") parts.push(notice(`Failed: ${t.error?.message ?? JSON.stringify(t.error)}`, "error"));
  if (t.evaluation) {
    parts.push(table(["metric", "value"], Object.entries(t.evaluation).filter(([, v]) => typeof v === "number")
      .map(([k, v]) => [k, (v as number).toFixed(4)]), "Held-out evaluation"));
    const perClass = t.evaluation.per_class;
    if (perClass && typeof perClass === "object") {
      const f = (v: any) => (typeof v === "number" ? v.toFixed(4) : "-");
      parts.push(table(["class", "precision", "recall", "f1", "support"], Object.entries(perClass)
        .map(([k, v]: [string, any]) => [k, f(v?.precision), f(v?.recall), f(v?.f1), String(v?.support ?? "-")]), "Per class"));
    }
    const cm = t.evaluation.confusion_matrix;
    if (cm && Array.isArray(cm.labels) && Array.isArray(cm.matrix) && cm.labels.length <= 50) {
      parts.push(table(["truth \\ predicted", ...cm.labels.map(String)],
        cm.matrix.map((row: unknown[], i: number) => [String(cm.labels[i]), ...row.map(String)]), "Confusion matrix"));
    }
  }
  const rate = Object.entries(t.stats ?? {}).find(([k, v]) => k.endsWith("_per_s") && typeof v === "number");
  if (rate) parts.push(h("p", {}, `Throughput: ${(rate[1] as number).toFixed(1)} ${rate[0].replace("_per_s", "")}/s (${rate[0]})`));
  if (t.catalog) {
    parts.push(h("p", {}, "Registered as ", h("a", { href: "#/models/" + enc(t.catalog.model) }, t.catalog.reference)));
  } else if (t.task_status === "succeeded" && ["nlp_train_model", "cv_train_model"].includes(t.task_type)) {
    parts.push(registerForm(t));
  }
  return h("section", {}, parts);
}

function registerForm(t: any): HTMLElement {
  const name = h("input", { type: "text", required: true, pattern: "[a-z0-9][a-z0-9._-]{0,63}" });
  const alias = h("input", { type: "text", value: "champion" });
  const status = h("div", { "aria-live": "polite" });
  const path = t.request?.model_save?.path;
  return h("form", { class: "inline", onsubmit: async (e: Event) => {
    e.preventDefault();
    try {
      const v = await api("POST", "/api/v1/catalog/models/" + enc(name.value) + "/versions",
        { model: { path }, lineage: { source_task: t.task_id, metrics: { evaluation: t.evaluation, history: t.history } } });
      if (alias.value) await api("PUT", "/api/v1/catalog/models/" + enc(name.value) + "/aliases/" + enc(alias.value), { version: v.version });
      location.hash = "#/models/" + enc(name.value);
    } catch (err: any) {
      status.replaceChildren(notice(err.message + (err.field ? ` (${err.field})` : ""), "error"));
    }
  } }, h("h2", {}, "Register in the catalog"), field("Model name", name, "name"), field("Alias", alias, "alias"),
    h("button", { type: "submit" }, "Register"), status);
}

export { fmtDate };
