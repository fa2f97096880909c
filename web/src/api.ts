// The REST API from the browser. The token lives in sessionStorage (gone with the tab), is sent
// as Authorization: Bearer and never put in a URL.
export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public field?: string, public requestId?: string) {
    super(message);
  }
}

const TOKEN_KEY = "mlaas.token";

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t ? { ...extra, Authorization: "Bearer " + t } : extra;
}

async function errorOf(r: Response): Promise<ApiError> {
  let body: any = null;
  try {
    body = await r.json();
  } catch {
    /* not JSON */
  }
  const e = body && typeof body.error === "object" ? body.error : null;
  if (e) return new ApiError(r.status, e.code ?? "error", e.message ?? r.statusText, e.field, e.request_id);
  if (body && typeof body.error === "string") return new ApiError(r.status, "error", body.error);
  return new ApiError(r.status, "http_" + r.status, r.statusText || "request failed");
}

export async function api<T = any>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(path, init);
  if (!r.ok) throw await errorOf(r);
  const text = await r.text();
  return (text ? JSON.parse(text) : null) as T;
}

export const get = <T = any>(path: string) => api<T>("GET", path);

// Every item of a paged list (`items` of each page, following next_cursor).
export async function getAll(path: string, items: string): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await get(path + qs({ limit: 1000, cursor }));
    out.push(...(page[items] ?? []));
    cursor = page.next_cursor ?? null;
  } while (cursor);
  return out;
}

// The server-sent events of a response, as (event, data) with data's lines joined; returns at
// the end of the stream. What onEvent throws ends the reading.
async function readEvents(r: Response, onEvent: (event: string, data: string) => void): Promise<void> {
  if (!r.body) throw new ApiError(0, "no_stream", "this browser cannot read streamed answers");
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const event = lines.find((l) => l.startsWith("event: "))?.slice(7) ?? "message";
      onEvent(event, lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n"));
    }
  }
}

// A POST answered with server-sent events (a generation streamed as it is produced): calls
// onEvent(event, data) for each; an error answer before the stream, or an "error" event, throws.
export async function streamEvents(path: string, body: unknown, onEvent: (event: string, data: any) => void): Promise<void> {
  const r = await fetch(path, { method: "POST", headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body) });
  if (!r.ok) throw await errorOf(r);
  await readEvents(r, (event, data) => {
    if (!data) return;
    const parsed = JSON.parse(data);
    if (event === "error") {
      const e = parsed.error ?? {};
      throw new ApiError(500, e.code ?? "error", e.message ?? "generation failed", e.field, e.request_id);
    }
    onEvent(event, parsed);
  });
}

export function qs(params: Record<string, string | number | undefined | null>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  const s = u.toString();
  return s ? "?" + s : "";
}

export function enc(segment: string): string {
  return encodeURIComponent(segment);
}
export function encKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

// Uploads a file with a progress callback (XMLHttpRequest: fetch has no upload progress).
export function upload(key: string, file: Blob, onProgress: (done: number, total: number) => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("PUT", "/api/v1/objects/" + encKey(key));
    const t = token();
    if (t) x.setRequestHeader("Authorization", "Bearer " + t);
    x.setRequestHeader("Content-Type", "application/octet-stream");
    x.upload.onprogress = (e) => onProgress(e.loaded, e.total || file.size);
    x.onload = () => {
      let body: any = null;
      try {
        body = JSON.parse(x.responseText);
      } catch {
        /* empty */
      }
      if (x.status >= 200 && x.status < 300) resolve(body);
      else {
        const e = body?.error ?? {};
        reject(new ApiError(x.status, e.code ?? "error", e.message ?? "upload failed", e.field, e.request_id));
      }
    };
    x.onerror = () => reject(new ApiError(0, "network", "the upload failed"));
    x.send(file);
  });
}

// Fetches a file with the token and gives it a URL an <img> can show (revoke it when done).
export async function blobUrl(path: string): Promise<string> {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) throw await errorOf(r);
  return URL.createObjectURL(await r.blob());
}

// Downloads with the token and hands the bytes to the browser as a file.
export async function download(path: string, name: string): Promise<void> {
  const r = await fetch(path, { headers: headers() });
  if (!r.ok) throw await errorOf(r);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// Follows a task's server-sent events with the token in a header (EventSource cannot send one).
export async function followTask(id: string, onTask: (t: any) => void, signal: AbortSignal): Promise<void> {
  const r = await fetch("/api/v1/tasks/" + enc(id) + "/events", { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!r.ok || !r.body) throw await errorOf(r);
  await readEvents(r, (event, data) => {
    if (event === "error") throw new ApiError(0, "stream", data);
    if (data && (event === "task" || event === "end")) onTask(JSON.parse(data));
  });
}
