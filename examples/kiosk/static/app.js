// The kiosk page: everything through the local JSON API; no third-party code, no network.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null;
// The token the kiosk put in this page: a request that changes state must carry it, which
// a page from another origin cannot read (nor send as JSON without the kiosk's consent).
const token = document.querySelector('meta[name="kiosk-token"]').content;

async function api(method, path, body) {
  const init = { method, headers: { "X-Kiosk-Token": token }, credentials: "same-origin" };
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  const response = await fetch(path, init);
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // never innerHTML: titles are data
  if (cls) node.className = cls;
  return node;
}

function say(text) { $("message").textContent = text || ""; }

function renderState(next) {
  const versionChanged = !state || state.model_version !== next.model_version;
  const visitorChanged = !state || state.visitor !== next.visitor;
  state = next;
  $("model-version").textContent = next.model_version === null ? "none" : "v" + next.model_version;
  $("synthetic").hidden = !next.synthetic_feed;
  const u = next.updates;
  $("update-status").textContent = !u.enabled ? "updates off"
    : u.last_error ? "last update check failed (" + u.last_error + ")"
    : u.last_check ? "checked for updates " + new Date(u.last_check * 1000).toLocaleTimeString() : "";
  $("lobby").hidden = next.visitor !== null;
  $("session").hidden = next.visitor === null;
  $("visitor").textContent = next.visitor || "";
  $("guest-note").hidden = !next.guest;
  $("erase-profile").hidden = next.guest; // a guest has nothing stored to erase
  const list = $("profiles");
  list.replaceChildren();
  for (const name of next.profiles) {
    const li = el("li");
    const button = el("button", name, "profile");
    button.type = "button";
    button.dataset.name = name;
    button.addEventListener("click", () => choose(name));
    li.append(button);
    list.append(li);
  }
  for (const b of document.querySelectorAll("button.read")) b.disabled = next.visitor === null;
  return versionChanged || visitorChanged;
}

function renderArticles(articles) {
  const list = $("articles");
  list.replaceChildren();
  for (const a of articles) {
    const li = el("li");
    li.dataset.id = a.id;
    const button = el("button", "Read", "read");
    button.type = "button";
    button.disabled = !state || state.visitor === null;
    button.addEventListener("click", () => read(a.id));
    li.append(button, el("div", a.title, "title"), el("div", [a.category, a.source].filter(Boolean).join(" · "), "meta"));
    list.append(li);
  }
}

async function refreshLists() {
  const [recs, recent] = await Promise.all([api("GET", "/api/recommendations"), api("GET", "/api/recent")]);
  const list = $("recommendations");
  list.replaceChildren();
  for (const r of recs) {
    const li = el("li");
    li.dataset.id = r.id;
    li.append(el("span", r.title, "title"), el("div", [r.category, r.source].filter(Boolean).join(" · "), "meta"));
    const reasons = el("div", undefined, "reasons");
    for (const reason of r.reasons) reasons.append(el("span", reason, "reason"));
    li.append(reasons);
    list.append(li);
  }
  const readList = $("recent");
  readList.replaceChildren();
  for (const e of recent) readList.append(el("li", e.title));
  document.body.dataset.ready = String(Date.now());
}

async function act(method, path, body) {
  try {
    say("");
    renderState(await api(method, path, body));
    await refreshLists();
  } catch (err) {
    say(err.message);
  }
}

function choose(name) { return act("POST", "/api/profile", { name }); }
function read(id) { return act("POST", "/api/read", { id }); }

$("new-profile").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("profile-name").value;
  $("profile-name").value = "";
  choose(name);
});
$("guest").addEventListener("click", () => act("POST", "/api/guest", {}));
$("switch-profile").addEventListener("click", () => act("POST", "/api/leave", {}));
$("erase-profile").addEventListener("click", () => {
  if (!state || state.visitor === null) return;
  if (!window.confirm("Erase the profile " + state.visitor + " and its reading history for good?")) return;
  act("POST", "/api/erase", { name: state.visitor });
});

async function poll() {
  try {
    if (renderState(await api("GET", "/api/state"))) await refreshLists();
  } catch (err) {
    say("kiosk offline: " + err.message);
  }
}

(async () => {
  renderState(await api("GET", "/api/state"));
  renderArticles(await api("GET", "/api/articles"));
  await refreshLists();
  setInterval(poll, 1000);
})();
