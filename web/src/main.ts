// The mlaas web app: a hash-routed single page over the REST API (docs/web.md).
import "./style.css";
import { api, setToken, token } from "./api";
import { clear, h } from "./dom";
import { adminPage } from "./pages/admin";
import { catalogPage } from "./pages/catalog";
import { datasetPage } from "./pages/dataset";
import { deploymentsPage } from "./pages/deployments";
import { modelPage } from "./pages/model";
import { objectsPage } from "./pages/objects";
import { signInPage } from "./pages/signin";
import { taskPage, tasksPage } from "./pages/tasks";
import { trainPage } from "./pages/train";
import { vectorPage } from "./pages/vector";

export interface Me {
  user: string;
  scopes: string[];
  auth: string;
}
export interface Page {
  title: string;
  render(main: HTMLElement, me: Me | null): Promise<void> | void;
  leave?(): void;
}

let me: Me | null = null;
let current: Page | null = null;
let signedOut: string | null = null;  // said once, on the page shown after a token stopped working

async function whoami(): Promise<Me | null> {
  try {
    return await api<Me>("GET", "/api/v1/whoami");
  } catch (e: any) {
    // A token the server no longer accepts (expired, revoked) would fail every page, the
    // public ones too: forget it.
    if (e?.status === 401 && token()) {
      setToken(null);
      return whoami();
    }
    return null;
  }
}

function route(hash: string): Page {
  const parts = hash.replace(/^#\/?/, "").split("/").map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  switch (parts[0]) {
    case "models":
      return parts[1] ? modelPage(parts[1]) : catalogPage("model");
    case "datasets":
      return parts[1] ? datasetPage(parts[1]) : catalogPage("dataset");
    case "tasks":
      return parts[1] ? taskPage(parts[1]) : tasksPage();
    case "train":
      return trainPage();
    case "deployments":
      return deploymentsPage();
    case "objects":
      return objectsPage(parts.slice(1).join("/"));
    case "search":
      return vectorPage();
    case "signin":
      return signInPage(async () => {
        me = await whoami();
        location.hash = "#/";
      });
    case "admin":
      return adminPage();
    default:
      return catalogPage("model");
  }
}

function nav(): HTMLElement {
  const link = (href: string, text: string) => {
    const active = (location.hash || "#/") === href || (href !== "#/" && location.hash.startsWith(href));
    return h("li", {}, h("a", { href, "aria-current": active ? "page" : undefined }, text));
  };
  const signedIn = me !== null && me.user !== "";
  return h("nav", { "aria-label": "main" },
    h("a", { href: "#/", class: "brand" }, "mlaas"),
    h("ul", {},
      link("#/", "Models"),
      link("#/datasets", "Datasets"),
      signedIn ? link("#/train", "Train") : null,
      signedIn ? link("#/tasks", "Tasks") : null,
      signedIn ? link("#/deployments", "Deployments") : null,
      signedIn ? link("#/objects", "Files") : null,
      signedIn ? link("#/search", "Search") : null,
      signedIn && me!.scopes.includes("admin") && me!.auth === "on" ? link("#/admin", "Tokens") : null),
    h("div", { class: "who" },
      signedIn
        ? [h("span", { class: "user" }, me!.user + (me!.auth === "off" ? " (local)" : "")),
           me!.auth === "on"
             ? h("button", { type: "button", class: "link", onclick: () => {
                 setToken(null);
                 me = null;
                 if (location.hash === "#/" || location.hash === "") void show();
                 else location.hash = "#/";
               } }, "Sign out")
             : null]
        : h("a", { href: "#/signin", class: "button" }, "Sign in")));
}

async function show(): Promise<void> {
  current?.leave?.();
  const page = route(location.hash);
  current = page;
  const top = document.getElementById("top")!;
  clear(top);
  top.append(nav());
  // Each page renders into its own container: one still loading when the user moves on
  // writes into a container no longer on the page.
  const main = document.getElementById("main")!;
  const container = h("div");
  clear(main);
  main.append(container);
  document.title = page.title + " · mlaas";
  if (signedOut) {
    container.append(h("div", { class: "notice error", role: "alert" }, signedOut));
    signedOut = null;
  }
  try {
    await page.render(container, me);
  } catch (e: any) {
    // The token stopped being accepted during the session (revoked, expired): every page would
    // fail with it, the public ones too. Forget it, say so, and show the page signed out.
    if (e?.status === 401 && token()) {
      setToken(null);
      me = await whoami();
      if (me && me.user === "") me = null;
      signedOut = "Your token is no longer accepted (expired or revoked): you are signed out.";
      return show();
    }
    container.append(h("div", { class: "notice error", role: "alert" }, e?.message ?? String(e)));
  }
}

window.addEventListener("hashchange", () => void show());
// The skip link moves the focus, not the route.
document.querySelector<HTMLAnchorElement>("a.skip")?.addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main")?.focus();
});
void (async () => {
  me = await whoami();  // with auth off, everyone is the local admin
  if (me && me.user === "" ) me = null;
  await show();
})();
