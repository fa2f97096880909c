// The training form: builds SPEC's request (model or preset, tokenizer, dataset and its columns,
// hyperparameters with their defaults, where to save, the catalog name) and submits it; a 400
// from the API is shown next to the input its `field` names. Image classification swaps the
// text inputs for the image dataset's format, augmentation and backbone freezing, and posts to
// the computer-vision route. "Search hyperparameters" turns a text request into a sweep: a
// learning-rate range and batch sizes tried over a number of trials, weak ones pruned early.
import { api, get, qs } from "../api";
import { add, field, h, notice } from "../dom";
import type { Page } from "../main";

export function trainPage(): Page {
  return {
    title: "Train",
    async render(main) {
      const objective = h("select", {}, ["text-classification", "masked-lm", "causal-lm", "sentence-embedding", "image-classification",
        "token-classification", "next-sentence-prediction", "question-answering"].map((o) => h("option", { value: o }, o)));
      const start = h("select", {}, h("option", { value: "preset" }, "a preset, from scratch"), h("option", { value: "path" }, "a model (path or catalog://)"));
      const textPresets = ["bert-tiny", "bert-mini", "bert-small", "bert-base", "distilbert-base", "roberta-base", "longformer-tiny",
        "longformer-base", "gpt2-tiny", "gpt2-small"];
      const imagePresets = ["cnn-small", "mlp", "resnet18", "resnet34"];
      const preset = h("select", {}, textPresets.map((p) => h("option", { value: p }, p)));
      const format = h("select", {}, ["idx", "image_folder", "csv", "jsonl"].map((f) => h("option", { value: f }, f)));
      const imageColumn = h("input", { type: "text", value: "image" });
      const cropPadding = h("input", { type: "number", value: "0", min: "0", max: "64" });
      const flip = h("input", { type: "checkbox" });
      const rotation = h("input", { type: "number", value: "0", min: "0", max: "45", step: "any" });
      const freeze = h("input", { type: "checkbox" });
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
      const labels = h("input", { type: "text", placeholder: "a100, eu-west (optional)" });
      const gpus = h("input", { type: "number", min: "0", max: "64", placeholder: "0" });
      const processes = h("input", { type: "number", min: "1", max: "1024", placeholder: "1" });
      const search = h("input", { type: "checkbox" });
      const lrLow = h("input", { type: "number", value: "0.00001", min: "0", step: "any" });
      const lrHigh = h("input", { type: "number", value: "0.001", min: "0", step: "any" });
      const batches = h("input", { type: "text", value: "16, 32" });
      const trials = h("input", { type: "number", value: "8", min: "1", max: "1000" });
      const metric = h("input", { type: "text", value: "eval_loss", list: "sweep-metrics" });
      const metrics = h("datalist", { id: "sweep-metrics" }, ["eval_loss", "eval_accuracy", "eval_macro_f1", "eval_f1", "eval_perplexity",
        "eval_exact_match"].map((m) => h("option", { value: m })));
      const prune = h("input", { type: "checkbox", checked: true });
      const submit = h("button", { type: "submit" }, "Train");
      const status = h("div", { "aria-live": "polite" });
      const fields = {
        model: field("Start from", start, "model.start"),
        preset: field("Preset", preset, "model.preset"),
        path: field("Model", modelPath, "model.path"),
        tokenizer: field("Tokenizer", tokenizer, "tokenizer.path"),
        textColumn: field("Text column", textColumn, "dataset.loader_kwargs.text_column"),
        maxLength: field("Max length (tokens)", maxLength, "model_train.max_length"),
        format: field("Format", format, "dataset.format"),
        imageColumn: field("Image column", imageColumn, "dataset.loader_kwargs.image_column"),
        crop: field("Random crop padding (pixels)", cropPadding, "dataset.augment.crop_padding"),
        flip: field("Mirror half the images", flip, "dataset.augment.horizontal_flip"),
        rotation: field("Rotate up to (degrees)", rotation, "dataset.augment.rotation"),
        freeze: field("Train the classifier only (freeze the backbone)", freeze, "model_train.freeze_backbone"),
        labelColumn: field("Label column", labelColumn, "dataset.loader_kwargs.label_column"),
        batch: field("Batch size", batch, "model_train.batch_size"),
        lr: field("Learning rate", lr, "model_train.optimizer.init_lr"),
        sweep: h("fieldset", {}, h("legend", {}, "Search hyperparameters"),
          field("Search hyperparameters: run several trainings, keep the best", search, "sweep"),
          field("LR from", lrLow, "sweep.parameters.optimizer.init_lr.min"),
          field("LR to (log-uniform)", lrHigh, "sweep.parameters.optimizer.init_lr"),
          field("Sizes of batches to try (comma-separated)", batches, "sweep.parameters.batch_size"),
          field("Number of trials", trials, "sweep.budget.max_trials"), field("Metric to optimise", metric, "sweep.metric"), metrics,
          field("Prune weak trials early (ASHA)", prune, "sweep.scheduler.type")),
      };
      const fromCatalog = () => dataset.value.startsWith("catalog://");
      const batchSizes = () => batches.value.split(",").map((b) => b.trim()).filter((b) => b).map(Number);
      const isImage = () => objective.value === "image-classification";
      let shownPresets = textPresets;
      const sync = () => {
        const image = isImage();
        const presets = image ? imagePresets : textPresets;
        if (presets !== shownPresets) {  // the other modality's presets, and its usual rate and batch
          shownPresets = presets;
          preset.replaceChildren(...presets.map((p) => h("option", { value: p }, p)));
          lr.value = image ? "0.001" : "0.00002";
          batch.value = image ? "64" : "32";
        }
        fields.preset.hidden = start.value !== "preset";
        fields.path.hidden = start.value !== "path";
        for (const f of [fields.tokenizer, fields.textColumn, fields.maxLength]) f.hidden = image;
        for (const f of [fields.format, fields.crop, fields.flip, fields.rotation, fields.freeze]) f.hidden = !image;
        // A catalog version knows its format; only lists of images have columns.
        fields.format.hidden = !image || fromCatalog();
        const list = !fromCatalog() && (format.value === "csv" || format.value === "jsonl");
        fields.imageColumn.hidden = !image || !list;
        fields.labelColumn.hidden = image && !list;
        fields.sweep.hidden = image;  // sweeps train text models
        const searching = search.checked && !image;
        for (const el of [lrLow, lrHigh, batches, trials, metric, prune]) (el.closest(".field") as HTMLElement).hidden = !searching;
        // What the search draws is not asked twice: the rate always, the batch size when sizes are listed.
        fields.lr.hidden = searching;
        fields.batch.hidden = searching && batchSizes().length > 0;
        submit.textContent = searching ? "Search" : "Train";
      };
      for (const el of [start, objective, format, search]) el.addEventListener("change", sync);
      dataset.addEventListener("input", sync);
      batches.addEventListener("input", sync);
      const form = h("form", { class: "train", novalidate: true, onsubmit: async (e: Event) => {
        e.preventDefault();
        for (const el of Array.from(form.querySelectorAll(".field-error"))) el.textContent = "";
        for (const el of Array.from(form.querySelectorAll(".field.invalid"))) el.classList.remove("invalid");
        const image = isImage();
        const body: any = {
          model: start.value === "preset" ? { preset: preset.value, objective: objective.value } : { path: modelPath.value, objective: objective.value },
          dataset: { path: dataset.value, train_test_split: Number(split.value), loader_kwargs: { text_column: textColumn.value, label_column: labelColumn.value } },
          model_train: { epochs: Number(epochs.value), batch_size: Number(batch.value), seed: Number(seed.value), max_length: Number(maxLength.value),
            optimizer: { name: "AdamW", init_lr: Number(lr.value), num_warm_steps: Number(warmup.value) } },
          model_save: { path: save.value },
        };
        if (image) {
          body.dataset = { path: dataset.value, train_test_split: Number(split.value),
            augment: { crop_padding: Number(cropPadding.value), horizontal_flip: flip.checked, rotation: Number(rotation.value) } };
          if (!fromCatalog()) body.dataset.format = format.value;
          if (!fromCatalog() && (format.value === "csv" || format.value === "jsonl"))
            body.dataset.loader_kwargs = { image_column: imageColumn.value, label_column: labelColumn.value };
          delete body.model_train.max_length;
          if (freeze.checked) body.model_train.freeze_backbone = true;
        } else if (tokenizer.value) {
          body.tokenizer = { path: tokenizer.value };
        }
        if (register.value) body.catalog = alias.value ? { model: register.value, alias: alias.value } : { model: register.value };
        const wanted = labels.value.split(",").map((l) => l.trim()).filter((l) => l);
        if (wanted.length || gpus.value || processes.value) {
          body.resources = {};
          if (wanted.length) body.resources.labels = wanted;
          if (gpus.value) body.resources.gpus = Number(gpus.value);
          if (processes.value) body.resources.workers = Number(processes.value);
        }
        const searching = search.checked && !image;
        if (searching) {
          const sizes = batchSizes();
          body.sweep = {
            parameters: { "optimizer.init_lr": { type: "log_uniform", min: Number(lrLow.value), max: Number(lrHigh.value) } },
            metric: metric.value,
            budget: { max_trials: Number(trials.value) },
            scheduler: { type: prune.checked ? "asha" : "none" },
          };
          if (sizes.length) body.sweep.parameters.batch_size = { type: "choice", values: sizes };
        }
        try {
          const route = image ? "/api/v1/ml/cv/train/model" : searching ? "/api/v1/ml/nlp/train/sweep" : "/api/v1/ml/nlp/train/model";
          const r = await api("POST", route, body);
          location.hash = "#/tasks/" + encodeURIComponent(r.task_id);
        } catch (err: any) {
          status.replaceChildren(notice(err.message, "error"));
          if (err.field) showFieldError(form, err.field, err.message);
        }
      } },
        h("fieldset", {}, h("legend", {}, "Model"), field("Objective", objective, "model.objective"), fields.model, fields.preset, fields.path,
          fields.tokenizer),
        h("fieldset", {}, h("legend", {}, "Data"), field("Dataset", dataset, "dataset.path"), keys, fields.format, fields.imageColumn,
          fields.textColumn, fields.labelColumn,
          field("Held out for evaluation", split, "dataset.train_test_split"), fields.crop, fields.flip, fields.rotation),
        h("fieldset", {}, h("legend", {}, "Training"), field("Epochs", epochs, "model_train.epochs"), fields.batch,
          fields.lr, field("Warm-up steps", warmup, "model_train.optimizer.num_warm_steps"),
          fields.maxLength, field("Seed", seed, "model_train.seed"), fields.freeze),
        h("fieldset", {}, h("legend", {}, "Output"), field("Save to", save, "model_save.path"),
          field("Register in the catalog as", register, "catalog.model"), field("Alias", alias, "catalog.alias")),
        h("fieldset", {}, h("legend", {}, "Where it runs"), field("Worker labels (comma-separated)", labels, "resources.labels"),
          field("GPUs", gpus, "resources.gpus"),
          field("Worker processes (data-parallel)", processes, "resources.workers")),
        fields.sweep, submit, status);
      add(main, h("h1", {}, "Train a model"), form);
      sync();
      try {  // suggest the caller's CSV and JSONL files and image folders
        // Every page of the listing, up to 20,000 keys (a suggestion list longer than that helps nobody).
        const listed: any[] = [];
        let next: string | null = null;
        do {
          const page: any = await get("/api/v1/ml/utilities/s3/object" + qs({ max_keys: 1000, continuation_token: next }));
          listed.push(...page.objects);
          next = page.is_truncated ? page.next_continuation_token : null;
        } while (next && listed.length < 20000);
        const folders = new Set<string>();
        for (const o of listed) {
          if (/\.(csv|tsv|jsonl)$/.test(o.key)) keys.append(h("option", { value: o.key }));
          // image datasets are folders: IDX files, or class folders of images
          const idx = o.key.match(/^(.*)\/(train|t10k)-images-idx3-ubyte(\.gz)?$/);
          if (idx) folders.add(idx[1]);
          const img = o.key.match(/^(.*)\/[^/]+\/[^/]+\.(png|jpe?g)$/i);
          if (img) folders.add(img[1]);
        }
        for (const f of folders) keys.append(h("option", { value: f }));
      } catch {
        /* no listing: no suggestions */
      }
      try {  // and the catalog's datasets
        const listed = await get("/api/v1/catalog/datasets" + qs({ limit: 100 }));
        for (const d of listed.datasets ?? []) keys.append(h("option", { value: "catalog://datasets/" + d.name }));
      } catch {
        /* no catalog: no suggestions */
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
