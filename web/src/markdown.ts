// Model and dataset cards are markdown written by users: rendered with marked, then sanitized
// by DOMPurify (no script, no event handler attribute, no javascript: URL) before they touch
// the page. The Content-Security-Policy the server sends blocks inline scripts as well.
import DOMPurify from "dompurify";
import { marked } from "marked";

export function renderMarkdown(text: string): HTMLElement {
  const div = document.createElement("div");
  div.className = "markdown";
  // Front matter (--- ... ---) of Hugging Face cards is metadata, not prose.
  const body = text.replace(/^---\n[\s\S]*?\n---\n/, "");
  const html = marked.parse(body, { async: false, gfm: true }) as string;
  div.innerHTML = DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ["style", "form", "input"] });
  for (const a of Array.from(div.querySelectorAll("a"))) {
    a.setAttribute("rel", "noopener noreferrer nofollow");
    a.setAttribute("target", "_blank");
  }
  return div;
}
