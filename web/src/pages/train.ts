// The training form: builds SPEC's request (model or preset, tokenizer, dataset and its columns,
// hyperparameters with their defaults, where to save, the catalog name) and submits it; a 400
// from the API is shown next to the input its `field` names.
import { api, get, qs } from "../api";
import { add, field, h, notice } from "../dom";
import type { Page } from "../main";

export function trainPage(): Page {
  return {
    title: "Train",
    async render(main) {
      const objective = h("select", {}, ["text-classification", "masked-lm", "sentence-embedding", "token-classification", "question-answering"]
        .map((o) => h("option", { value: o }, o)));
      const start = h("select", {}, h("option", { value: "preset" }, "a preset, from scratch"), h("option", { value: "path" }, "a model (path or catalog://)"));
      const preset = h("select", {}, ["bert-tiny", "bert-mini", "bert-small", "bert-base", "distilbert-base", "roberta-base"].map((p) => h("option", { value: p }, p)));
      const modelPath = h("input", { type: "text", placeholder: "models/base or catalog://name@champion" });
      const tokenizer = h("input", { type: "text", placeholder: "tok (a tokenizer directory or vocab.txt; default: the model's)" });
      const dataset = h("input", { type: "text", required: true, placeholder: "data/reviews.csv or catalog://datasets/name", list: "dataset-keys" });
      const keys = h("datalist", { id: "dataset-keys" });
      const textColumn = h("input", { type: "text", value: "text" });
      const labelColumn = h("input", { type: "text", value: "label" });
      const split = h("input", { type: "number", value: "0.1", min: "0.01", max: "0.9", step: "0.01" });
      const epochs = h("input", { type: "number", value: "10", min: "1" });
      const batch = h("input", { type: "number", value: "32", min: "1" });
      const lr = h("input", { type: "number", value: "0.00002", min: "0", step: "any" });
      const warmup = h("input", { type: "number", value: "0", min: "0" });
      const seed = h("input", { type: "number", value: "42" });
      const maxLength = h("input", { type: "number", value: "128", min: "8" });
      const save = h("input", { type: "text", required: true, placeholder: "models/my-classifier" });
      const register = h("input", { type: "text", placeholder: "a catalog name (optional)", pattern: "[a-z0-9][a-z0-9._-]{0,63}" });
      const alias = h("input", { type: "text", placeholder: "champion (optional)" });
      const status = h("div", { "aria-live": "polite" });
      const fields = {
        model: field("Start from", start, "model.start"),
        preset: field("Preset", preset, "model.preset"),
        path: field("Model", modelPath, "model.path"),
      };
      const sync = () => {
        fields.preset.hidden = start.value !== "preset";
        fields.path.hidden = start.value !== "path";
      };
      start.addEventListener("change", sync);
      sync();
      const form = h("form", { class: "train", novalidate: true, onsubmit: async (e: Event) => {
        e.preventDefault();
        for (const el of Array.from(form.querySelectorAll(".field-error"))) el.textContent = "";
        for (const el of Array.from(form.querySelectorAll(".field.invalid"))) el.classList.remove("invalid");
        const body: any = {
          model: start.value === "preset" ? { preset: preset.value, objective: objective.value } : { path: modelPath.value, objective: objective.value },
          dataset: { path: dataset.value, train_test_split: Number(split.value), loader_kwargs: { text_column: textColumn.value, label_column: labelColumn.value } },
          model_train: { epochs: Number(epochs.value), batch_size: Number(batch.value), seed: Number(seed.value), max_length: Number(maxLength.value),
            optimizer: { name: "AdamW", init_lr: Number(lr.value), num_warm_steps: Number(warmup.value) } },
          model_save: { path: save.value },
        };
        if (tokenizer.value) body.tokenizer = { path: tokenizer.value };
        if (register.value) body.catalog = alias.value ? { model: register.value, alias: alias.value } : { model: register.value };
        try {
          const r = await api("POST", "/api/v1/ml/nlp/train/model", body);
          location.hash = "#/tasks/" + encodeURIComponent(r.task_id);
        } catch (err: any) {
          status.replaceChildren(notice(err.message, "error"));
          if (err.field) showFieldError(form, err.field, err.message);
        }
      } },
        h("fieldset", {}, h("legend", {}, "Model"), field("Objective", objective, "model.objective"), fields.model, fields.preset, fields.path,
          field("Tokenizer", tokenizer, "tokenizer.path")),
        h("fieldset", {}, h("legend", {}, "Data"), field("Dataset", dataset, "dataset.path"), keys,
          field("Text column", textColumn, "dataset.loader_kwargs.text_column"), field("Label column", labelColumn, "dataset.loader_kwargs.label_column"),
          field("Held out for evaluation", split, "dataset.train_test_split")),
        h("fieldset", {}, h("legend", {}, "Training"), field("Epochs", epochs, "model_train.epochs"), field("Batch size", batch, "model_train.batch_size"),
          field("Learning rate", lr, "model_train.optimizer.init_lr"), field("Warm-up steps", warmup, "model_train.optimizer.num_warm_steps"),
          field("Max length (tokens)", maxLength, "model_train.max_length"), field("Seed", seed, "model_train.seed")),
        h("fieldset", {}, h("legend", {}, "Output"), field("Save to", save, "model_save.path"),
          field("Register in the catalog as", register, "catalog.model"), field("Alias", alias, "catalog.alias")),
        h("button", { type: "submit" }, "Train"), status);
      add(main, h("h1", {}, "Train a model"), form);
      try {  // suggest the caller's CSV and JSONL files
        const objects = await get("/api/v1/ml/utilities/s3/object" + qs({ max_keys: 1000 }));
        for (const o of objects.objects) if (/\.(csv|tsv|jsonl)$/.test(o.key)) keys.append(h("option", { value: o.key }));
      } catch {
        /* no listing: no suggestions */
      }
    },
  };
}

// Marks the input of `name` (the API's error.field, e.g. "model_train.epochs"; the closest
// enclosing field when that one has no input of its own) with `message`.
export function showFieldError(form: HTMLElement, name: string, message: string): void {
  let key = name;
  const tried = new Set<string>();
  for (;;) {
    if (tried.has(key)) return;
    tried.add(key);
    const el = form.querySelector<HTMLElement>(`.field[data-field="${CSS.escape(key)}"]`);
    if (el && !el.hidden) {
      el.classList.add("invalid");
      el.querySelector(".field-error")!.textContent = message;
      el.querySelector<HTMLElement>("input,select,textarea")?.focus();
      return;
    }
    const dot = key.lastIndexOf(".");
    if (dot < 0) return;
    key = key.slice(0, dot);
    if (key === "model") key = "model.path";
  }
}
