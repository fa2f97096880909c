// A model's page: card, versions with their metrics and training curves, lineage, aliases and
// their audit trail, and a "try it" panel (classify, fill the mask, embed and compare, search).
import { api, enc, get, getAll, streamEvents } from "../api";
import { historySeries, LineChart } from "../charts";
import { add, fmtBytes, fmtDate, field, h, notice, table } from "../dom";
import type { Me, Page } from "../main";
import { renderMarkdown } from "../markdown";

export function modelPage(name: string): Page {
  let charts: LineChart[] = [];
  return {
    title: name,
    leave() {
      charts.forEach((c) => c.destroy());
      charts = [];
    },
    async render(main, me) {
      const base = "/api/v1/catalog/models/" + enc(name);
      const entry = await get(base);
      const versions = await getAll(base + "/versions", "versions");
      // Every alias move, shown newest first (the trail is listed oldest first, a page at a time).
      const history = (await getAll(base + "/alias-history", "events")).reverse();
      const owner = me !== null && (me.user === entry.owner || me.scopes.includes("admin"));

      add(main, 
        h("h1", {}, entry.name, " ", h("span", { class: "badge " + entry.visibility }, entry.visibility)),
        h("p", { class: "meta" }, `by ${entry.owner}`, entry.objective ? ` · ${entry.objective}` : "", entry.model_type ? ` · ${entry.model_type}` : "",
          entry.license ? ` · license ${entry.license}` : "", ` · reference `, h("code", {}, entry.reference)),
        entry.description ? h("p", {}, entry.description) : null,
        owner ? ownerActions(base, entry, versions) : null);

      const tabs = h("div", { class: "columns" });
      const left = h("div", { class: "col" });
      const right = h("div", { class: "col" });
      tabs.append(left, right);
      add(main, tabs);

      // Try it, on the version an alias names or the latest.
      add(right, tryIt(entry));

      // Versions and their metrics.
      add(left, h("h2", {}, "Versions"), versions.length === 0 ? h("p", {}, "No version yet.") :
        table(["version", "accuracy", "loss", "parameters", "size", "by", "registered", "digest"], versions.map((v) => {
          const ev = v.lineage?.metrics?.evaluation ?? {};
          return [String(v.version), num(ev.accuracy ?? ev.eval_accuracy), num(ev.loss ?? ev.eval_loss),
            v.facts?.parameters ? v.facts.parameters.toLocaleString() : "-", fmtBytes(v.size), v.created_by, fmtDate(v.created_at),
            h("code", { title: v.digest }, String(v.digest).slice(7, 19))];
        })));

      // Training curves of the versions that have a history: the newest three, more on demand
      // (two charts a version; thousands of versions once held the page for minutes).
      const curves = h("div");
      add(left, curves);
      const withHistory = versions.filter((v) => Array.isArray(v.lineage?.metrics?.history?.epoch));
      let drawn = 0;
      const more = h("button", { type: "button", class: "link" });
      const drawMore = (n: number) => {
        for (const v of withHistory.slice(drawn, drawn + n)) {
          const hist = v.lineage.metrics.history;
          const lossCanvas = h("canvas");
          const accCanvas = h("canvas");
          curves.append(h("h3", {}, `Training curves, version ${v.version}`),
            h("div", { class: "charts" }, h("div", { class: "chart" }, lossCanvas), h("div", { class: "chart" }, accCanvas)));
          const loss = new LineChart(lossCanvas, `loss of version ${v.version}`, "epoch");
          loss.set(historySeries(hist, ["loss", "eval_loss"]));
          const acc = new LineChart(accCanvas, `accuracy of version ${v.version}`, "epoch");
          acc.set(historySeries(hist, ["accuracy", "eval_accuracy", "eval_macro_f1"]));
          charts.push(loss, acc);
        }
        drawn = Math.min(withHistory.length, drawn + n);
        const remaining = withHistory.length - drawn;
        more.textContent = `Show the curves of ${Math.min(10, remaining)} older version${remaining === 1 ? "" : "s"} (${remaining} left)`;
        if (remaining === 0) more.remove();
        else curves.append(more);
      };
      more.addEventListener("click", () => drawMore(10));
      drawMore(3);

      // Lineage of the latest version.
      const latest = versions[0];
      if (latest) {
        const l = latest.lineage ?? {};
        add(left, h("h2", {}, `Lineage of version ${latest.version}`), h("dl", { class: "lineage" },
          l.source_task ? [h("dt", {}, "trained by task"), h("dd", {}, h("a", { href: "#/tasks/" + enc(l.source_task) }, l.source_task))] : null,
          l.base_model ? [h("dt", {}, "base model"), h("dd", {}, describe(l.base_model))] : null,
          l.dataset ? [h("dt", {}, "dataset"), h("dd", {}, describe(l.dataset))] : null,
          l.source ? [h("dt", {}, "registered from"), h("dd", {}, l.source.path)] : null,
          latest.facts?.labels ? [h("dt", {}, "labels"), h("dd", {}, latest.facts.labels.join(", "))] : null));
      }

      // Aliases and their audit trail.
      const aliases = Object.entries(entry.aliases ?? {});
      add(left, h("h2", {}, "Aliases"),
        aliases.length ? h("ul", {}, aliases.map(([a, v]) => h("li", {}, h("code", {}, "@" + a), ` → version ${v}`))) : h("p", {}, "No alias."),
        history.length ? table(["when", "alias", "from", "to", "by"], history.slice(0, 200).map((e) =>
          [fmtDate(e.at), e.alias, e.from_version ?? "new", e.to_version ?? "deleted", e.by]),
          history.length > 200 ? `Alias moves, newest first (the latest 200 of ${history.length})` : "Alias moves, newest first") : null);

      // The card.
      add(right, h("h2", {}, "Model card"), entry.card ? renderMarkdown(entry.card) : h("p", {}, "No card."));
    },
  };
}

function num(x: unknown): string {
  return typeof x === "number" ? x.toFixed(4) : "-";
}

function describe(block: any): string {
  if (!block) return "-";
  if (block.catalog?.reference) return `${block.catalog.reference} (version ${block.catalog.version})`;
  return block.path ?? block.preset ?? (block.config ? "a new model from a config" : JSON.stringify(block));
}

function ownerActions(base: string, entry: any, versions: any[]): HTMLElement {
  const status = h("div", { "aria-live": "polite" });
  const toggle = h("button", { type: "button", onclick: async () => {
    try {
      await api("PATCH", base, { visibility: entry.visibility === "public" ? "private" : "public" });
      location.reload();
    } catch (e: any) {
      status.replaceChildren(notice(e.message, "error"));
    }
  } }, entry.visibility === "public" ? "Make private" : "Make public");
  const alias = h("input", { type: "text", value: "champion", size: 10 });
  const version = h("select", {}, versions.map((v) => h("option", { value: String(v.version) }, String(v.version))));
  const move = h("form", { class: "inline", onsubmit: async (e: Event) => {
    e.preventDefault();
    try {
      await api("PUT", base + "/aliases/" + enc(alias.value), { version: Number(version.value) });
      location.reload();
    } catch (err: any) {
      status.replaceChildren(notice(err.message, "error"));
    }
  } }, field("Alias", alias, "alias"), field("Version", version, "version"), h("button", { type: "submit" }, "Point alias"));
  return h("section", { class: "owner", "aria-label": "owner actions" }, toggle, versions.length ? move : null, status);
}

function tryIt(entry: any): HTMLElement {
  const ref = entry.aliases?.champion ? `catalog://${entry.name}@champion` : `catalog://${entry.name}`;
  if (entry.objective === "image-classification") return tryImage(ref);
  if (entry.objective === "causal-lm") return tryGenerate(ref);
  if (entry.objective === "token-classification") return tryEntities(ref);
  if (entry.objective === "question-answering") return tryAnswer(ref);
  const out = h("div", { class: "try-out", "aria-live": "polite" });
  const text = h("textarea", { rows: 3, placeholder: "Type a text" });
  const second = h("textarea", { rows: 2, placeholder: "A second text, to compare" });
  const store = h("input", { type: "text", placeholder: "vector store path (e.g. stores/docs)" });
  const objective = entry.objective || "";
  const run = async (kind: string) => {
    out.replaceChildren(h("p", {}, "…"));
    try {
      if (kind === "search") {
        const r = await api("POST", "/api/v1/ml/nlp/vector/search", {
          model: { path: ref, objective: "no-objective" }, dataset: { path: store.value, format: "vector_store" },
          search_input: { input_text: [text.value], top_k: 4 } });
        out.replaceChildren(table(["score", "id", "text"], r.results[0].map((x: any) => [x.score.toFixed(4), String(x.id ?? ""), x.page_content])));
        return;
      }
      const texts = kind === "compare" ? [text.value, second.value] : [text.value];
      const model: any = { path: ref };
      if (kind === "compare") model.objective = "no-objective";
      const predict_input: any = { input_text: texts };
      if (kind === "next") predict_input.pair_text = [second.value];
      else predict_input.top_k = 5;
      const r = await api("POST", "/api/v1/ml/nlp/predict", { model, predict_input });
      const p = r.predictions;
      if (kind === "next") {
        out.replaceChildren(h("p", { class: "result" }, "the second text follows the first: ",
          h("strong", { class: "label" }, p[0].is_next ? "yes" : "no"), ` (probability ${Number(p[0].score).toFixed(4)})`));
      } else if (kind === "compare") {
        const [a, b] = [p[0].embedding, p[1].embedding];
        out.replaceChildren(h("p", { class: "result" }, `cosine similarity: ${cosine(a, b).toFixed(4)}`));
      } else if (p[0].label !== undefined) {
        out.replaceChildren(h("p", { class: "result" }, "label: ", h("strong", { class: "label" }, p[0].label), ` (score ${Number(p[0].score).toFixed(4)})`));
      } else if (Array.isArray(p[0].masks)) {
        const fills = p[0].masks[0]?.candidates ?? [];
        out.replaceChildren(h("p", { class: "result" }, p[0].sequence),
          table(["token", "score"], fills.map((x: any) => [x.token, Number(x.score).toFixed(4)])));
      } else {
        out.replaceChildren(h("pre", {}, JSON.stringify(p[0]).slice(0, 2000)));
      }
    } catch (e: any) {
      out.replaceChildren(notice(e.message, "error"));
    }
  };
  const buttons = h("div", { class: "buttons" },
    objective === "masked-lm"
      ? h("button", { type: "button", onclick: () => void run("predict") }, "Fill the mask")
      : objective === "next-sentence-prediction"
        ? h("button", { type: "button", onclick: () => void run("next") }, "Does the second text follow?")
        : h("button", { type: "button", onclick: () => void run("predict") }, "Classify"),
    h("button", { type: "button", onclick: () => void run("compare") }, "Embed and compare"),
    h("button", { type: "button", onclick: () => void run("search") }, "Search the store"));
  return h("section", { class: "try", "aria-label": "try it" }, h("h2", {}, "Try it"),
    h("p", { class: "meta" }, "with ", h("code", {}, ref)),
    field("Text", text, "text", objective === "masked-lm" ? "Put [MASK] where a word is missing." : undefined),
    field("Second text", second, "second"), field("Vector store", store, "store"), buttons, out);
}

// A causal LM: the prompt continued, streamed into the page as the server generates it.
function tryGenerate(ref: string): HTMLElement {
  const out = h("div", { class: "try-out", "aria-live": "polite" });
  const prompt = h("textarea", { rows: 3, placeholder: "Type the beginning of a text" }) as HTMLTextAreaElement;
  const tokens = h("input", { type: "number", min: "1", max: "1024", value: "40", size: 5 }) as HTMLInputElement;
  const temperature = h("input", { type: "number", min: "0", max: "5", step: "0.1", value: "0", size: 5 }) as HTMLInputElement;
  const seed = h("input", { type: "number", min: "0", placeholder: "random", size: 8 }) as HTMLInputElement;
  const run = async () => {
    const generated = h("span", { class: "generated" });
    const status = h("p", { class: "meta" }, "generating…");
    out.replaceChildren(h("p", { class: "result generation" }, h("strong", {}, prompt.value), generated), status);
    const predict_input: any = { input_text: [prompt.value], max_new_tokens: Number(tokens.value) || 40, stream: true };
    if (Number(temperature.value) > 0) predict_input.temperature = Number(temperature.value);
    if (seed.value !== "") predict_input.seed = Number(seed.value);
    try {
      await streamEvents("/api/v1/ml/nlp/predict", { model: { path: ref }, predict_input }, (event, data) => {
        if (event === "token") generated.textContent += data.text;
        if (event === "done") {
          const p = data.predictions[0];
          status.textContent = `${p.new_tokens} new tokens (${p.finish_reason})`;
        }
      });
    } catch (e: any) {
      out.replaceChildren(notice(e.message, "error"));
    }
  };
  return h("section", { class: "try", "aria-label": "try it" }, h("h2", {}, "Try it"),
    h("p", { class: "meta" }, "with ", h("code", {}, ref)),
    field("Prompt", prompt, "prompt"), field("New tokens", tokens, "tokens"),
    field("Temperature", temperature, "temperature", "0 is greedy: the most likely token each step."), field("Seed", seed, "seed"),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => void run() }, "Generate")), out);
}

// A token classifier (NER): the text with its entities marked, and a table of them. Offsets are
// code points of the text (Array.from splits it so); every piece is a text node.
function tryEntities(ref: string): HTMLElement {
  const out = h("div", { class: "try-out", "aria-live": "polite" });
  const text = h("textarea", { rows: 3, placeholder: "Type a text" }) as HTMLTextAreaElement;
  const aggregation = h("select", {}, ["simple", "first", "average", "max"].map((a) => h("option", { value: a }, a))) as HTMLSelectElement;
  const run = async () => {
    out.replaceChildren(h("p", {}, "…"));
    try {
      const input = text.value;
      const r = await api("POST", "/api/v1/ml/nlp/predict",
        { model: { path: ref }, predict_input: { input_text: [input], aggregation_strategy: aggregation.value } });
      const entities: any[] = r.predictions[0];
      const chars = Array.from(input);
      const marked = h("p", { class: "result entities" });
      let at = 0;
      for (const e of entities) {
        if (e.start < at) continue;  // overlapping spans are not expected; keep the text whole
        marked.append(chars.slice(at, e.start).join(""),
          h("mark", { title: `${e.entity_group} ${Number(e.score).toFixed(3)}` }, chars.slice(e.start, e.end).join(""),
            h("small", {}, ` ${e.entity_group}`)));
        at = e.end;
      }
      marked.append(chars.slice(at).join(""));
      out.replaceChildren(marked, entities.length
        ? table(["entity", "word", "score", "span"], entities.map((e) => [e.entity_group, e.word, Number(e.score).toFixed(4), `${e.start}–${e.end}`]))
        : h("p", { class: "meta" }, "no entities found"));
    } catch (e: any) {
      out.replaceChildren(notice(e.message, "error"));
    }
  };
  return h("section", { class: "try", "aria-label": "try it" }, h("h2", {}, "Try it"),
    h("p", { class: "meta" }, "with ", h("code", {}, ref)),
    field("Text", text, "text"), field("Aggregation", aggregation, "aggregation", "How word pieces become entities (simple: as they come; first / max: whole words)."),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => void run() }, "Find entities")), out);
}

// Extractive question answering: the context with the answer's span marked (offsets are code
// points: Array.from splits the context so), its score beside.
function tryAnswer(ref: string): HTMLElement {
  const out = h("div", { class: "try-out", "aria-live": "polite" });
  const question = h("input", { type: "text", placeholder: "Ask a question" }) as HTMLInputElement;
  const context = h("textarea", { rows: 5, placeholder: "The text that holds the answer" }) as HTMLTextAreaElement;
  const run = async () => {
    out.replaceChildren(h("p", {}, "…"));
    try {
      const r = await api("POST", "/api/v1/ml/nlp/predict",
        { model: { path: ref }, predict_input: { question: [question.value], context: [context.value] } });
      const a = r.predictions[0];
      const chars = Array.from(context.value);
      out.replaceChildren(
        h("p", { class: "result" }, "answer: ", h("strong", { class: "label" }, a.answer || "(none)"), ` (score ${Number(a.score).toFixed(4)})`),
        h("p", { class: "result entities" }, chars.slice(0, a.start).join(""), h("mark", {}, chars.slice(a.start, a.end).join("")),
          chars.slice(a.end).join("")));
    } catch (e: any) {
      out.replaceChildren(notice(e.message, "error"));
    }
  };
  return h("section", { class: "try", "aria-label": "try it" }, h("h2", {}, "Try it"),
    h("p", { class: "meta" }, "with ", h("code", {}, ref)),
    field("Question", question, "question"), field("Context", context, "context"),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => void run() }, "Answer")), out);
}

// An image classifier: a PNG or JPEG from this computer, sent base64 to /api/v1/ml/cv/predict.
function tryImage(ref: string): HTMLElement {
  const out = h("div", { class: "try-out", "aria-live": "polite" });
  const file = h("input", { type: "file", accept: "image/png,image/jpeg" }) as HTMLInputElement;
  const run = async () => {
    const chosen = file.files?.[0];
    if (!chosen) {
      out.replaceChildren(notice("Choose a PNG or JPEG image first.", "error"));
      return;
    }
    out.replaceChildren(h("p", {}, "…"));
    try {
      const bytes = new Uint8Array(await chosen.arrayBuffer());
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      const r = await api("POST", "/api/v1/ml/cv/predict", { model: { path: ref }, predict_input: { images: [btoa(binary)], top_k: 5 } });
      const p = r.predictions[0];
      out.replaceChildren(h("p", { class: "result" }, "label: ", h("strong", { class: "label" }, p.label), ` (score ${Number(p.score).toFixed(4)})`),
        table(["label", "score"], (p.top_k ?? []).map((x: any) => [x.label, Number(x.score).toFixed(4)])));
    } catch (e: any) {
      out.replaceChildren(notice(e.message, "error"));
    }
  };
  return h("section", { class: "try", "aria-label": "try it" }, h("h2", {}, "Try it"),
    h("p", { class: "meta" }, "with ", h("code", {}, ref)),
    field("Image", file, "image"),
    h("div", { class: "buttons" }, h("button", { type: "button", onclick: () => void run() }, "Classify the image")), out);
}

function cosine(a: number[], b: number[]): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}

export type { Me };
