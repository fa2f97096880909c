// The object browser: one level of a prefix at a time (folders and files), upload with a
// progress bar, download, delete; and registering a file as a dataset.
import { api, download, encKey, get, qs, upload } from "../api";
import { add, fmtBytes, fmtDate, h, notice, table } from "../dom";
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
        uploadForm(null, (v) => { location.hash = "#/datasets/" + encodeURIComponent(v.name); }));
      await reload();
    },
  };
}
