// DOM helpers: elements are built with text nodes, never from HTML strings (the one exception,
// rendered markdown, goes through DOMPurify in markdown.ts).
type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | ((e: Event) => void) | undefined | null>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v as (e: Event) => void);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

// `el` inside a sideways-scrolling box: a wide table (long ids, many columns) scrolls there,
// never the page, and no cell breaks a word to fit (style.css).
export function scrollBox(el: HTMLElement): HTMLDivElement {
  return h("div", { class: "scroll" }, el);
}

// A table in its scroll box; `cls` is set on the table.
export function table(headers: string[], rows: Child[][], caption?: string, cls?: string): HTMLDivElement {
  return scrollBox(h("table", cls ? { class: cls } : {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

export function fmtBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

export function fmtDate(iso: string | undefined | null): string {
  if (!iso) return "-";
  return iso.replace("T", " ") + " UTC";
}

// A field with its label and a place for the API's error about it (data-field names the request
// field, e.g. "model_train.epochs").
export function field(label: string, input: HTMLElement, name: string, hint?: string): HTMLDivElement {
  const id = "f-" + name.replace(/[^a-z0-9]/gi, "-");
  input.id = id;
  input.setAttribute("name", name);
  return h("div", { class: "field", "data-field": name },
    h("label", { for: id }, label),
    input,
    hint ? h("small", { class: "hint" }, hint) : null,
    h("div", { class: "field-error", role: "alert", "aria-live": "polite" }));
}

export function notice(text: string, kind: "error" | "ok" | "info" = "info"): HTMLDivElement {
  return h("div", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, text);
}

// el.append(...) that skips null, undefined and false.
export function add(el: Element, ...children: (Child | Child[])[]): void {
  append(el, children);
}
