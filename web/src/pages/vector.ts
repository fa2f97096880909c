// Search a saved vector store (or a plain dataset) with an embedding model.
import { api } from "../api";
import { add, field, h, notice, table } from "../dom";
import type { Page } from "../main";

export function vectorPage(): Page {
  return {
    title: "Search",
    render(main) {
      const store = h("input", { type: "text", required: true, placeholder: "stores/docs" });
      const model = h("input", { type: "text", required: true, placeholder: "models/embedder or catalog://name" });
      const query = h("input", { type: "search", required: true });
      const mode = h("select", {}, ["dense", "lexical", "hybrid"].map((m) => h("option", { value: m }, m)));
      const out = h("div", { "aria-live": "polite" });
      const form = h("form", { class: "search", onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          const r = await api("POST", "/api/v1/ml/nlp/vector/search", {
            model: { path: model.value, objective: "no-objective" }, dataset: { path: store.value, format: "vector_store" },
            search_input: { input_text: [query.value], top_k: 10, mode: mode.value } });
          out.replaceChildren(table(["score", "id", "text", "metadata"], r.results[0].map((x: any) =>
            [Number(x.score).toFixed(4), String(x.id ?? ""), x.page_content, JSON.stringify(x.metadata ?? {})])));
        } catch (err: any) {
          out.replaceChildren(notice(err.message + (err.field ? ` (${err.field})` : ""), "error"));
        }
      } }, field("Vector store", store, "dataset.path"), field("Embedding model", model, "model.path"), field("Query", query, "search_input.input_text"),
        field("Mode", mode, "search_input.mode"), h("button", { type: "submit" }, "Search"));
      add(main, h("h1", {}, "Search a vector store"), form, out);
    },
  };
}
