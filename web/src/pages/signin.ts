// Sign in with an API token (`mlaas tokens create`); it is checked with /api/v1/whoami and kept
// in this tab's sessionStorage only.
import { api, setToken } from "../api";
import { add, field, h, notice } from "../dom";
import type { Page } from "../main";

export function signInPage(done: () => Promise<void>): Page {
  return {
    title: "Sign in",
    render(main) {
      const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
      const status = h("div", { "aria-live": "polite" });
      const form = h("form", { class: "narrow", onsubmit: async (e: Event) => {
        e.preventDefault();
        setToken(input.value.trim());
        try {
          const me = await api("GET", "/api/v1/whoami");
          status.replaceChildren(notice(`Signed in as ${me.user}`, "ok"));
          await done();
        } catch (err: any) {
          setToken(null);
          status.replaceChildren(notice(err.status === 401 ? "This token is unknown, expired or revoked." : err.message, "error"));
        }
      } },
        field("API token", input, "token", "An administrator makes one with `mlaas tokens create`; it stays in this tab only."),
        h("button", { type: "submit" }, "Sign in"), status);
      add(main, h("h1", {}, "Sign in"), form);
      input.focus();
    },
  };
}
