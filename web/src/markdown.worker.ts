// Parses a card's markdown off the page's thread: marked is superlinear on some inputs (a card
// of "_a" repeated 131,000 times took a minute) and overflows its stack on deeply nested lists,
// so the page gives it a time budget and stops this worker when it is spent.
import { marked } from "marked";

const scope = self as unknown as { postMessage(message: unknown): void; onmessage: ((e: MessageEvent<string>) => void) | null };
scope.onmessage = (e: MessageEvent<string>) => {
  try {
    scope.postMessage({ html: marked.parse(e.data, { async: false, gfm: true }) as string });
  } catch (err) {
    scope.postMessage({ error: String(err) });
  }
};
