// The object browser: one level of a prefix at a time (folders and files), upload with a
// progress bar, download, delete; registering a file as a dataset; and importing a pretrained
// model (the Hugging Face Hub, S3) into this folder.
import { api, download, encKey, get, qs, upload } from "../api";
import { add, field, fmtBytes, fmtDate, h, notice, table } from "../dom";
import type { Page } from "../main";
import { uploadForm } from "./dataset";

export function objectsPage(prefix: string): Page {
  const dir = prefix && !prefix.endsWith("/") ? prefix + "/" : prefix;
  return {
    title: "Files",
    async render(main) {
      const status = h("div", { "aria-live": "polite" });
      const listing = h("div");
      const reload = async () => {
        const objects: any[] = [];
        const prefixes: string[] = [];
        let token: string | null = null;
        do {
          const page: any = await get("/api/v1/ml/utilities/s3/object" + qs({ prefix: dir, delimiter: "/", continuation_token: token }));
          objects.push(...page.objects);
          prefixes.push(...page.common_prefixes);
          token = page.is_truncated ? page.next_continuation_token : null;
        } while (token);
        const rows: any[] = [];
        if (dir) {
          const up = dir.slice(0, -1).split("/").slice(0, -1).join("/");
          rows.push([h("a", { href: "#/objects/" + encKey(up) }, "../"), "", "", ""]);
        }
        for (const p of prefixes) rows.push([h("a", { href: "#/objects/" + encKey(p) }, p.slice(dir.length)), "folder", "", ""]);
        for (const o of objects) {
          const name = o.key.slice(dir.length);
          rows.push([name, fmtBytes(o.size), fmtDate(o.last_modified),
            h("span", { class: "buttons" },
              h("button", { type: "button", onclick: () => download("/api/v1/objects/" + encKey(o.key), name).catch((e) => status.replaceChildren(notice(e.message, "error"))) }, "Download"),
              h("button", { type: "button", onclick: async () => {
                if (!confirm(`Delete ${o.key}?`)) return;
                try {
                  await api("DELETE", "/api/v1/objects/" + encKey(o.key));
                  await reload();
                } catch (e: any) {
                  status.replaceChildren(notice(e.message, "error"));
                }
              } }, "Delete"))]);
        }
        listing.replaceChildren(rows.length ? table(["name", "size", "modified", ""], rows) : h("p", {}, "Empty."));
      };
      const file = h("input", { type: "file", multiple: true, "aria-label": "files to upload" });
      const bar = h("progress", { max: 100, value: 0, "aria-label": "upload progress" });
      const form = h("form", { class: "inline", onsubmit: async (e: Event) => {
        e.preventDefault();
        for (const f of Array.from(file.files ?? [])) {
          try {
            await upload(dir + f.name, f, (d, t) => { bar.value = t ? (100 * d) / t : 0; });
            status.replaceChildren(notice(`Uploaded ${dir + f.name}`, "ok"));
          } catch (err: any) {
            status.replaceChildren(notice(err.message, "error"));
          }
        }
        await reload();
      } }, file, bar, h("button", { type: "submit" }, "Upload"));
      add(main, h("h1", {}, "Files ", h("code", {}, "/" + dir)), form, status, listing,
        uploadForm(null, (v) => { location.hash = "#/datasets/" + encodeURIComponent(v.name); }), importForm(dir));
      await reload();
    },
  };
}

// A model import task: hf://org/name[@revision], s3://bucket/key or a key of this store, into
// a folder here; its page follows the progress.
function importForm(dir: string): HTMLFormElement {
  const source = h("input", { name: "source", required: true, placeholder: "hf://org/name@main, s3://bucket/key or a key" });
  const into = h("input", { name: "into", required: true, value: dir + "models/" });
  const status = h("div", { "aria-live": "polite" });
  const sourceBlock = (text: string): any => {
    if (text.startsWith("hf://")) {
      const [repo, revision] = text.slice(5).split("@");
      return revision ? { path: repo, storage_type: "hugging_face_hub", revision } : { path: repo, storage_type: "hugging_face_hub" };
    }
    return { path: text, storage_type: text.startsWith("s3://") ? "s3" : "local" };
  };
  return h("form", { class: "card", onsubmit: async (e: Event) => {
    e.preventDefault();
    try {
      const r: any = await api("POST", "/api/v1/ml/models/import", {
        model: sourceBlock(source.value.trim()),
        model_save: { path: into.value.trim(), storage_type: into.value.trim().startsWith("s3://") ? "s3" : "local" },
      });
      location.hash = "#/tasks/" + encodeURIComponent(r.task_id);
    } catch (err: any) {
      status.replaceChildren(notice(err.message, "error"));
    }
  } },
    h("h2", {}, "Import a pretrained model"),
    h("p", {}, "PyTorch weights become safetensors; other frameworks' files are left out."),
    field("Import from", source, "model.path"), field("Import into", into, "model_save.path"),
    h("button", { type: "submit" }, "Import"), status);
}
