// A dataset's page: description, versions, columns and a preview of the first rows (text only),
// and an upload form with a progress bar that registers a new version.
import { api, enc, get, upload } from "../api";
import { add, fmtBytes, fmtDate, field, h, notice, table } from "../dom";
import type { Page } from "../main";
import { renderMarkdown } from "../markdown";

export function datasetPage(name: string): Page {
  return {
    title: name,
    async render(main, me) {
      const base = "/api/v1/catalog/datasets/" + enc(name);
      const entry = await get(base);
      const versions = (await get(base + "/versions")).versions as any[];
      const latest = versions[0];
      add(main, 
        h("h1", {}, entry.name, " ", h("span", { class: "badge " + entry.visibility }, entry.visibility)),
        h("p", { class: "meta" }, `by ${entry.owner}`, entry.license ? ` · license ${entry.license}` : "", " · reference ", h("code", {}, entry.reference)),
        entry.description ? h("p", {}, entry.description) : null);
      if (latest) {
        const f = latest.facts ?? {};
        add(main, h("h2", {}, `Version ${latest.version}: ${f.rows ?? "?"} rows, ${f.format ?? ""}, ${fmtBytes(latest.size)}`));
        const columns: string[] = f.columns ?? [];
        const preview: any[] = f.preview ?? [];
        add(main, table(["column", "non-empty in the preview", "distinct in the preview", "mean length"], columns.map((c) => {
          const values = preview.map((r) => r[c]).filter((v) => v !== null && v !== undefined && v !== "");
          const mean = values.length ? values.reduce((a, v) => a + String(v).length, 0) / values.length : 0;
          return [c, `${values.length}/${preview.length}`, String(new Set(values).size), mean.toFixed(1)];
        }), "Columns"));
        add(main, h("div", { class: "scroll" }, table(columns, preview.map((r) => columns.map((c) => r[c] === null ? "∅" : String(r[c]))),
          `The first ${preview.length} rows`)));
      }
      add(main, h("h2", {}, "Versions"), table(["version", "rows", "size", "by", "registered", "digest"], versions.map((v) =>
        [String(v.version), String(v.facts?.rows ?? "-"), fmtBytes(v.size), v.created_by, fmtDate(v.created_at), h("code", {}, String(v.digest).slice(7, 19))])));
      if (me && (me.user === entry.owner || me.scopes.includes("admin"))) add(main, uploadForm(name, () => location.reload()));
      if (entry.card) add(main, h("h2", {}, "Card"), renderMarkdown(entry.card));
    },
  };
}

// Uploads a file (progress bar) and registers it as a version of `name` (or of a new dataset).
export function uploadForm(name: string | null, done: (r: any) => void): HTMLElement {
  const file = h("input", { type: "file", accept: ".csv,.tsv,.jsonl,.json,.txt", required: true });
  const dsName = h("input", { type: "text", value: name ?? "", required: true, pattern: "[a-z0-9][a-z0-9._-]{0,63}" });
  const bar = h("progress", { max: 100, value: 0, "aria-label": "upload progress" });
  const status = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "upload", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = file.files?.[0];
    if (!f) return;
    const key = "uploads/" + f.name.replace(/[^A-Za-z0-9._-]/g, "_");
    try {
      await upload(key, f, (d, t) => { bar.value = t ? (100 * d) / t : 0; });
      const v = await api("POST", "/api/v1/catalog/datasets/" + enc(dsName.value) + "/versions", { dataset: { path: key } });
      status.replaceChildren(notice(`Registered ${v.reference}: ${v.facts.rows} rows`, "ok"));
      done(v);
    } catch (err: any) {
      status.replaceChildren(notice(err.message + (err.field ? ` (${err.field})` : ""), "error"));
    }
  } },
    h("h2", {}, name ? "Upload a new version" : "Upload a dataset"),
    name ? null : field("Dataset name", dsName, "name", "lowercase letters, digits, . _ -"),
    field("File (CSV, TSV or JSON Lines)", file, "file"), bar, h("button", { type: "submit" }, "Upload and register"), status);
  return form;
}
