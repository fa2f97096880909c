// The catalog (the landing page): cards of the models (or datasets) the caller may see, with a
// search box, filters, sort and a "more" button that follows next_cursor.
import { get, qs } from "../api";
import { add, fmtDate, h } from "../dom";
import type { Page } from "../main";

export function catalogPage(kind: "model" | "dataset"): Page {
  const plural = kind + "s";
  return {
    title: kind === "model" ? "Models" : "Datasets",
    async render(main) {
      const q = h("input", { type: "search", placeholder: "Search names, descriptions, tags", "aria-label": "search" });
      const objective = h("select", { "aria-label": "objective" },
        h("option", { value: "" }, "any objective"),
        ["text-classification", "masked-lm", "causal-lm", "no-objective", "sentence-embedding", "token-classification", "next-sentence-prediction", "question-answering", "image-classification"]
          .map((o) => h("option", { value: o }, o)));
      const tag = h("input", { type: "text", placeholder: "tag", "aria-label": "tag", size: 10 });
      const visibility = h("select", { "aria-label": "visibility" },
        h("option", { value: "" }, "public and mine"), h("option", { value: "public" }, "public"), h("option", { value: "private" }, "private"));
      const sort = h("select", { "aria-label": "sort" },
        h("option", { value: "recent" }, "recently updated"), h("option", { value: "popular" }, "most used"), h("option", { value: "name" }, "name"));
      const grid = h("div", { class: "cards", "aria-live": "polite" });
      const more = h("button", { type: "button", hidden: true }, "More");
      let cursor: string | null = null;

      const load = async (append: boolean) => {
        const page = await get(`/api/v1/catalog/${plural}` + qs({
          q: q.value, objective: kind === "model" ? objective.value : "", tag: tag.value, visibility: visibility.value,
          sort: sort.value, limit: 24, cursor: append ? cursor : null,
        }));
        if (!append) grid.replaceChildren();
        for (const e of page[plural]) grid.append(card(kind, e));
        if (!append && page[plural].length === 0) grid.append(h("p", { class: "empty" }, `No ${plural} match.`));
        cursor = page.next_cursor;
        more.hidden = !cursor;
      };
      const form = h("form", { class: "filters", role: "search", onsubmit: (e: Event) => { e.preventDefault(); void load(false); } },
        q, kind === "model" ? objective : null, tag, visibility, sort, h("button", { type: "submit" }, "Search"));
      for (const el of [objective, visibility, sort]) el.addEventListener("change", () => void load(false));
      more.addEventListener("click", () => void load(true));
      add(main, h("h1", {}, kind === "model" ? "Models" : "Datasets"), form, grid, more);
      await load(false);
    },
  };
}

function card(kind: string, e: any): HTMLElement {
  const p = e.popularity ?? {};
  const uses = (p.downloads ?? 0) + (p.predictions ?? 0) + (p.deployments ?? 0);
  return h("article", { class: "card" },
    h("h2", {}, h("a", { href: `#/${kind}s/${encodeURIComponent(e.name)}` }, e.name)),
    h("p", { class: "meta" },
      h("span", { class: "badge " + e.visibility }, e.visibility), " by ", e.owner,
      e.objective ? [" · ", e.objective] : null),
    e.description ? h("p", { class: "desc" }, e.description) : null,
    h("p", { class: "meta" },
      `${e.latest_version ?? 0} version${e.latest_version === 1 ? "" : "s"} · ${uses} uses · updated ${fmtDate(e.updated_at)}`),
    e.tags?.length ? h("p", { class: "tags" }, e.tags.map((t: string) => h("span", { class: "tag" }, t))) : null);
}
