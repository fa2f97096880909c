// Tokens: an admin makes them (shown once), everyone lists and revokes their own.
import { api } from "../api";
import { add, fmtDate, field, h, notice, table } from "../dom";
import type { Page } from "../main";

export function adminPage(): Page {
  return {
    title: "Tokens",
    async render(main) {
      const list = h("div");
      const reload = async () => {
        const r = await api("GET", "/api/v1/tokens");
        list.replaceChildren(table(["id", "user", "scopes", "created", "last used", "expires", ""],
          r.tokens.map((t: any) => [t.id, t.user, t.scopes.join(","), fmtDate(t.created_at), fmtDate(t.last_used_at), fmtDate(t.expires_at),
            t.revoked_at ? "revoked" : h("button", { type: "button", onclick: async () => {
              try {
                await api("DELETE", "/api/v1/tokens/" + t.id);
                await reload();
              } catch (e: any) {
                out.replaceChildren(notice(e.message, "error"));
              }
            } }, "Revoke")])));
      };
      const user = h("input", { type: "text", required: true });
      const scopes = h("select", {}, h("option", { value: "read" }, "read"), h("option", { value: "read,write" }, "read, write"), h("option", { value: "admin" }, "admin"));
      const out = h("div", { "aria-live": "polite" });
      const form = h("form", { class: "inline", onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          const r = await api("POST", "/api/v1/tokens", { user: user.value, scopes: scopes.value.split(",") });
          out.replaceChildren(notice("Token for " + r.user + " (shown once): ", "ok"), h("code", { class: "secret" }, r.token));
          await reload();
        } catch (err: any) {
          out.replaceChildren(notice(err.message, "error"));
        }
      } }, field("User", user, "user"), field("Scopes", scopes, "scopes"), h("button", { type: "submit" }, "Make a token"));
      add(main, h("h1", {}, "Tokens"), form, out, list);
      await reload();
    },
  };
}
