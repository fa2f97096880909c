// Model and dataset cards are markdown written by users: parsed by marked in a worker (with a
// time budget), then sanitized by DOMPurify (no script, no event handler attribute, no
// javascript: URL) before they touch the page. The Content-Security-Policy the server sends
// blocks inline scripts as well. A card that cannot be parsed within the budget, or at all, is
// shown as its plain text.
import DOMPurify from "dompurify";

import { scrollBox } from "./dom";

const BUDGET_MS = 3000;

export function renderMarkdown(text: string): HTMLElement {
  const div = document.createElement("div");
  div.className = "markdown";
  div.setAttribute("aria-busy", "true");
  // Front matter (--- ... ---) of Hugging Face cards is metadata, not prose.
  const body = text.replace(/^---\n[\s\S]*?\n---\n/, "");
  const plain = (why: string) => {
    const pre = document.createElement("pre");
    pre.className = "plain-card";
    pre.textContent = body;
    div.replaceChildren(pre);
    div.title = why;
    div.removeAttribute("aria-busy");
  };
  let worker: Worker;
  try {
    worker = new Worker(new URL("./markdown.worker.ts", import.meta.url), { type: "module" });
  } catch {
    plain("the card could not be rendered: shown as text");
    return div;
  }
  const timer = window.setTimeout(() => {
    worker.terminate();
    plain(`the card took more than ${BUDGET_MS / 1000} s to render: shown as text`);
  }, BUDGET_MS);
  worker.onmessage = (e: MessageEvent<{ html?: string; error?: string }>) => {
    window.clearTimeout(timer);
    worker.terminate();
    if (typeof e.data.html !== "string") return plain("the card could not be rendered: shown as text");
    div.innerHTML = DOMPurify.sanitize(e.data.html, { USE_PROFILES: { html: true }, FORBID_TAGS: ["style", "form", "input"] });
    for (const a of Array.from(div.querySelectorAll("a"))) {
      a.setAttribute("rel", "noopener noreferrer nofollow");
      a.setAttribute("target", "_blank");
    }
    for (const t of Array.from(div.querySelectorAll("table"))) {  // as table()'s: a wide one scrolls in its box
      const parent = t.parentNode!, next = t.nextSibling;
      parent.insertBefore(scrollBox(t), next);
    }
    div.removeAttribute("aria-busy");
  };
  worker.onerror = () => {
    window.clearTimeout(timer);
    worker.terminate();
    plain("the card could not be rendered: shown as text");
  };
  worker.postMessage(body);
  return div;
}
