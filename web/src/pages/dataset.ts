// A dataset's page: description, versions, and for the latest version the columns and first
// rows (a file of rows) or the classes and a few images (an image dataset); an upload form with
// a progress bar that registers a new version from a file or a folder of images.
import { api, blobUrl, enc, encKey, get, getAll, upload } from "../api";
import { add, fmtBytes, fmtDate, field, h, notice, table } from "../dom";
import type { Page } from "../main";
import { renderMarkdown } from "../markdown";

export function datasetPage(name: string): Page {
  return {
    title: name,
    async render(main, me) {
      const base = "/api/v1/catalog/datasets/" + enc(name);
      const entry = await get(base);
      const versions = await getAll(base + "/versions", "versions");
      const latest = versions[0];
      add(main, 
        h("h1", {}, entry.name, " ", h("span", { class: "badge " + entry.visibility }, entry.visibility)),
        h("p", { class: "meta" }, `by ${entry.owner}`, entry.license ? ` · license ${entry.license}` : "", " · reference ", h("code", {}, entry.reference)),
        entry.description ? h("p", {}, entry.description) : null);
      if (latest) {
        const f = latest.facts ?? {};
        if (isImageFormat(f.format)) add(main, imageVersion(base, latest));
        else {
          add(main, h("h2", {}, `Version ${latest.version}: ${f.rows ?? "?"} rows, ${f.format ?? ""}, ${fmtBytes(latest.size)}`));
          const columns: string[] = f.columns ?? [];
          const preview: any[] = f.preview ?? [];
          add(main, table(["column", "non-empty in the preview", "distinct in the preview", "mean length"], columns.map((c) => {
            const values = preview.map((r) => r[c]).filter((v) => v !== null && v !== undefined && v !== "");
            const mean = values.length ? values.reduce((a, v) => a + String(v).length, 0) / values.length : 0;
            return [c, `${values.length}/${preview.length}`, String(new Set(values).size), mean.toFixed(1)];
          }), "Columns"));
          add(main, table(columns, preview.map((r) => columns.map((c) => r[c] === null ? "∅" : String(r[c]))),
            `The first ${preview.length} rows`));
        }
      }
      add(main, h("h2", {}, "Versions"), table(["version", "rows or images", "size", "by", "registered", "digest"], versions.map((v) =>
        [String(v.version), String(v.facts?.rows ?? v.facts?.images ?? "-"), fmtBytes(v.size), v.created_by, fmtDate(v.created_at), h("code", {}, String(v.digest).slice(7, 19))])));
      if (me && (me.user === entry.owner || me.scopes.includes("admin"))) add(main, uploadForm(name, () => location.reload()));
      if (entry.card) add(main, h("h2", {}, "Card"), renderMarkdown(entry.card));
    },
  };
}

const isImageFormat = (format: unknown) => format === "image_folder" || format === "idx";

// An image dataset version: its classes with their images, and the first image of each class.
function imageVersion(base: string, v: any): HTMLElement {
  const f = v.facts ?? {};
  const classes: any[] = f.classes ?? [];
  const size = f.image_size ? `, ${f.image_size[0]}×${f.image_size[1]} pixels` : "";
  const held = f.held_out_images ? `, ${f.held_out_images} held out (t10k)` : "";
  const most = Math.max(1, ...classes.map((c) => c.images));
  const section = h("section", { class: "image-version" },
    h("h2", {}, `Version ${v.version}: ${f.images} images in ${classes.length} classes${held}, ${f.format}${size}, ${fmtBytes(v.size)}`),
    table(["class", "images", ""], classes.map((c) => [c.name, String(c.images),
      h("meter", { min: 0, max: most, value: c.images, "aria-label": `${c.name}: ${c.images} images` })]), "Classes"));
  const samples: string[] = f.samples ?? [];
  if (samples.length) {
    const strip = h("div", { class: "samples" });
    add(section, h("h3", {}, "A first image of each class"), strip);
    const images = samples.map((path) => {
      const img = h("img", { alt: path, title: path });
      strip.append(h("figure", {}, img, h("figcaption", {}, path.split("/")[0])));
      return img;
    });
    // One at a time (file downloads are compute requests, which the server limits), again after
    // a 429; each URL is let go once its image is shown.
    void (async () => {
      for (const [i, path] of samples.entries()) {
        for (let attempt = 0; ; attempt++) {
          try {
            const u = await blobUrl(`${base}/versions/${v.version}/files/${encKey(path)}`);
            images[i].addEventListener("load", () => URL.revokeObjectURL(u), { once: true });
            images[i].src = u;
            break;
          } catch (err: any) {
            if (err?.status === 429 && attempt < 3) {
              await new Promise((r) => setTimeout(r, 500));
              continue;
            }
            images[i].alt = path + " (not shown)";
            break;
          }
        }
      }
    })();
  }
  return section;
}

// Uploads a file, or a folder of images (one subfolder per class, or IDX files), with a progress
// bar and registers it as a version of `name` (or of a new dataset).
export function uploadForm(name: string | null, done: (r: any) => void): HTMLElement {
  const file = h("input", { type: "file", accept: ".csv,.tsv,.jsonl,.json,.txt" });
  const folder = h("input", { type: "file", webkitdirectory: true, multiple: true });
  const dsName = h("input", { type: "text", value: name ?? "", required: true, pattern: "[a-z0-9][a-z0-9._-]{0,63}" });
  const bar = h("progress", { max: 100, value: 0, "aria-label": "upload progress" });
  const status = h("div", { "aria-live": "polite" });
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, "_");
  const form = h("form", { class: "upload", onsubmit: async (e: Event) => {
    e.preventDefault();
    const images = Array.from(folder.files ?? []);
    const f = file.files?.[0];
    if (!f && !images.length) {
      status.replaceChildren(notice("Choose a file, or a folder of images", "error"));
      return;
    }
    try {
      let key: string;
      if (images.length) {
        // Each upload gets a folder of its own: the version is exactly what was chosen.
        key = `uploads/${safe(dsName.value)}-${new Date().toISOString().replace(/[^0-9]/g, "").slice(0, 14)}`;
        const total = images.reduce((a, x) => a + x.size, 0);
        let sent = 0;
        for (const [i, x] of images.entries()) {
          const rel = (x.webkitRelativePath || x.name).split("/").slice(1).join("/") || x.name;
          status.replaceChildren(notice(`Uploading ${i + 1} of ${images.length}: ${rel}`));
          await upload(`${key}/${rel}`, x, (d) => { bar.value = total ? (100 * (sent + d)) / total : 0; });
          sent += x.size;
        }
      } else {
        key = "uploads/" + safe(f!.name);
        await upload(key, f!, (d, t) => { bar.value = t ? (100 * d) / t : 0; });
      }
      const v = await api("POST", "/api/v1/catalog/datasets/" + enc(dsName.value) + "/versions", { dataset: { path: key } });
      const what = isImageFormat(v.facts.format) ? `${v.facts.images} images in ${v.facts.classes.length} classes` : `${v.facts.rows} rows`;
      status.replaceChildren(notice(`Registered ${v.reference}: ${what}`, "ok"));
      done(v);
    } catch (err: any) {
      status.replaceChildren(notice(err.message + (err.field ? ` (${err.field})` : ""), "error"));
    }
  } },
    h("h2", {}, name ? "Upload a new version" : "Upload a dataset"),
    name ? null : field("Dataset name", dsName, "name", "lowercase letters, digits, . _ -"),
    field("File (CSV, TSV or JSON Lines)", file, "file"),
    field("Or a folder of images", folder, "folder", "one subfolder of PNG/JPEG images per class, or MNIST's IDX files"),
    bar, h("button", { type: "submit" }, "Upload and register"), status);
  return form;
}
