// The Harvest Jobs console: a hash-routed single page over the API 3.0 actions.
//   #/sign-in            Sign in (SecretId, SecretKey; kept in sessionStorage only)
//   #/jobs               Harvest Jobs (filters and paging in the hash's query)
//   #/jobs/new           Create Harvest Job
//   #/jobs/<ID>          Info: every field, live progress, manifest URLs, the player
//   #/channels           Channels
//   #/channels/<name>    Channel details: endpoints and the channel's harvest jobs
import { Api, ApiError, session, webCryptoAvailable } from "./api.js";
import { renderCreate } from "./create.js";
import { h, replaceChildren } from "./dom.js";
import { renderInfo } from "./info.js";
import { renderChannel, renderChannels, renderJobs } from "./jobs.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const signOut = document.getElementById("sign-out");

// What a page may use; `alive()` turns false once the person has moved to another page, so
// refresh loops stop by themselves.
function makeContext(config, api, route) {
  let settings = null;
  return {
    config,
    api,
    route,
    main,
    alive: () => currentRoute === route,
    go: (hash) => {
      location.hash = hash;
    },
    async settings() {
      settings = settings || (await api.call("DescribeStreamPackageHarvestSettings"));
      return settings;
    },
  };
}

let currentRoute = null;
let cleanups = [];

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { raw, parts, query: new URLSearchParams(query) };
}

function renderSignIn(ctx, next) {
  document.title = "Sign in · Harvest Jobs";
  const secretId = h("input", { id: "secret-id", name: "SecretId", autocomplete: "off", spellcheck: "false", required: true });
  const secretKey = h("input", { id: "secret-key", name: "SecretKey", type: "password", autocomplete: "off", required: true });
  const message = h("p", { className: "form-error", role: "alert" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { className: "card narrow", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h(
      "p",
      { className: "hint" },
      "Use an API key pair of this service. It stays in this browser tab (session storage) and is " +
        "only used to sign requests; it is never sent.",
    ),
    h("div", { className: "field" }, h("label", { for: "secret-id" }, "SecretId"), secretId),
    h("div", { className: "field" }, h("label", { for: "secret-key" }, "SecretKey"), secretKey),
    message,
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    button.disabled = true;
    const key = { secretId: secretId.value.trim(), secretKey: secretKey.value };
    try {
      await ctx.api.call("DescribeStreamPackageHarvestJobs", { PageSize: 1 }, key);
      session.save(key.secretId, key.secretKey);
      showIdentity();
      ctx.go(next || "#/jobs");
    } catch (error) {
      message.textContent = `${error.code}: ${error.message}`;
      secretKey.focus();
    } finally {
      button.disabled = false;
    }
  });
  replaceChildren(main, form);
  secretId.focus();
}

function showIdentity() {
  const key = session.load();
  who.textContent = key ? `Signed in as ${key.secretId}` : "";
  signOut.hidden = !key;
}

async function render(config, api) {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  const { raw, parts, query } = parseHash();
  currentRoute = { raw };
  const ctx = makeContext(config, api, currentRoute);
  ctx.onLeave = (cleanup) => cleanups.push(cleanup);
  showIdentity();
  for (const link of document.querySelectorAll("nav a")) {
    const active = raw.startsWith(link.getAttribute("href").slice(1));
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (parts[0] === "sign-in") {
    renderSignIn(ctx, query.get("next"));
    return;
  }
  if (!session.load()) {
    ctx.go(`#/sign-in?next=${encodeURIComponent(`#${raw}`)}`);
    return;
  }
  try {
    if (parts[0] === "jobs" && parts[1] === "new") await renderCreate(ctx, query);
    else if (parts[0] === "jobs" && parts[1]) await renderInfo(ctx, parts[1]);
    else if (parts[0] === "channels" && parts[1]) await renderChannel(ctx, parts[1], query);
    else if (parts[0] === "channels") await renderChannels(ctx);
    else await renderJobs(ctx, query);
  } catch (error) {
    if (!ctx.alive()) return;
    if (error instanceof ApiError && error.code.startsWith("AuthFailure")) {
      session.clear();
      ctx.go(`#/sign-in?next=${encodeURIComponent(`#${raw}`)}`);
      return;
    }
    replaceChildren(
      main,
      h("div", { className: "card" }, h("h1", {}, "Something went wrong"), h("p", { role: "alert" }, `${error.code || "Error"}: ${error.message}`)),
    );
  }
}

// Opened over plain http:// from another machine: say why nothing can be signed, and the two fixes.
function renderNotSecure() {
  document.title = "Secure connection needed · Harvest Jobs";
  const port = location.port ? `:${location.port}` : "";
  const local = `http://localhost${port}${location.pathname}`;
  const tunnelPort = location.port || "80";
  replaceChildren(
    main,
    h(
      "section",
      { className: "card notice", role: "alert", "aria-labelledby": "not-secure-title" },
      h("h1", { id: "not-secure-title" }, "This page needs a secure connection"),
      h(
        "p",
        {},
        `You opened ${location.origin}, which is plain HTTP to another machine. Browsers only let secure ` +
          "pages (https://, or localhost on the machine itself) use WebCrypto, which this console needs " +
          "to sign your requests, so it cannot sign in from here. Two ways to fix it:",
      ),
      h(
        "ol",
        {},
        h(
          "li",
          {},
          h("strong", {}, "Serve it over HTTPS: "),
          "start the server with ",
          h("code", {}, "harvest serve --tls-cert FILE --tls-key FILE"),
          " (or ",
          h("code", {}, "--tls-self-signed"),
          " to try it out), or put an HTTPS reverse proxy such as nginx in front; then open ",
          h("code", {}, `https://${location.host}${location.pathname}`),
          ".",
        ),
        h(
          "li",
          {},
          h("strong", {}, "Open it as localhost: "),
          "on the server itself, or through an SSH tunnel from your machine (",
          h("code", {}, `ssh -L ${tunnelPort}:localhost:${tunnelPort} ${location.hostname}`),
          "), then open ",
          h("code", {}, local),
          ".",
        ),
      ),
    ),
  );
}

async function start() {
  if (!webCryptoAvailable()) {
    renderNotSecure();
    return;
  }
  const config = await (await fetch("config.json", { cache: "no-store" })).json();
  const api = new Api(config.api, config.region);
  signOut.addEventListener("click", () => {
    session.clear();
    location.hash = "#/sign-in";
  });
  window.addEventListener("hashchange", () => render(config, api));
  await render(config, api);
}

start();
