// OpenWatch UI: plain JavaScript over the JSON API; text is always inserted as text, never as HTML.
"use strict";

const PAGE_SIZE = 20;
let offset = 0;

const $ = (id) => document.getElementById(id);

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  return { status: response.status, body };
}

function setBadge(element, text, ok) {
  element.textContent = text;
  element.classList.toggle("ok", ok);
  element.classList.toggle("bad", !ok);
}

async function loadStatus() {
  try {
    const version = await getJSON("/api/v1/version");
    if (version.status === 200 && version.body) {
      $("version").textContent = `${version.body.version} (${version.body.commit})`;
    }
    const health = await getJSON("/api/v1/health");
    const h = health.body;
    if (!h || !h.schema) {
      setBadge($("database"), "unknown", false);
      setBadge($("schema"), "unknown", false);
      return;
    }
    setBadge($("database"), h.db_connected ? "connected" : "unreachable", h.db_connected);
    const { current, expected } = h.schema;
    if (current === expected) {
      setBadge($("schema"), `up to date (version ${current})`, true);
    } else if (current === null) {
      setBadge($("schema"), `unknown (expected ${expected})`, false);
    } else {
      setBadge($("schema"), `version ${current}, expected ${expected}`, false);
    }
  } catch (err) {
    setBadge($("database"), "server unreachable", false);
  }
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function loadHosts() {
  const error = $("hosts-error");
  try {
    const { status, body } = await getJSON(`/api/v1/hosts?limit=${PAGE_SIZE}&offset=${offset}`);
    if (status !== 200) {
      error.textContent = body && body.error ? body.error.message : `error ${status}`;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    const tbody = $("hosts").querySelector("tbody");
    const rows = body.items.map((host) => {
      const tr = document.createElement("tr");
      tr.dataset.id = host.id;
      tr.append(
        cell(host.hostname),
        cell(host.address),
        cell(String(host.port)),
        cell(new Date(host.created_at).toLocaleString()),
      );
      return tr;
    });
    tbody.replaceChildren(...rows);
    $("hosts-empty").hidden = body.total !== 0;
    $("host-total").textContent = `(${body.total})`;
    const pages = Math.max(1, Math.ceil(body.total / PAGE_SIZE));
    $("page").textContent = `page ${Math.floor(offset / PAGE_SIZE) + 1} of ${pages}`;
    $("prev").disabled = offset === 0;
    $("next").disabled = offset + PAGE_SIZE >= body.total;
  } catch (err) {
    error.textContent = "the server is unreachable";
    error.hidden = false;
  }
}

function clearInvalid(form) {
  for (const input of form.querySelectorAll("input")) {
    input.removeAttribute("aria-invalid");
  }
}

async function register(event) {
  event.preventDefault();
  const form = event.target;
  const message = $("form-message");
  clearInvalid(form);
  const payload = {
    hostname: form.hostname.value.trim(),
    address: form.address.value.trim(),
  };
  const port = form.port.value.trim();
  if (port !== "") {
    payload.port = /^[0-9]+$/.test(port) ? Number(port) : port;
  }
  $("submit").disabled = true;
  try {
    const response = await fetch("/api/v1/hosts", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(payload),
    });
    const body = await response.json();
    if (response.status === 201) {
      message.className = "ok";
      message.textContent = `Registered ${body.hostname}.`;
      form.reset();
      offset = 0;
      await loadHosts();
    } else {
      const err = body.error || { message: `error ${response.status}` };
      message.className = "error";
      message.textContent = err.message;
      if (err.field && form.elements[err.field]) {
        form.elements[err.field].setAttribute("aria-invalid", "true");
        form.elements[err.field].focus();
      }
    }
  } catch (err) {
    message.className = "error";
    message.textContent = "the server is unreachable";
  } finally {
    $("submit").disabled = false;
  }
}

// The session is an HttpOnly cookie the script never sees: the server says who is logged in.
function showLoggedIn(user) {
  $("whoami").textContent = `${user.username} (${user.roles.join(", ")})`;
  $("session").hidden = false;
  $("login-section").hidden = true;
  $("app").hidden = false;
  loadStatus();
  loadHosts();
}

function showLoggedOut(text) {
  $("session").hidden = true;
  $("app").hidden = true;
  $("login-section").hidden = false;
  $("login-message").textContent = text || "";
  $("username").focus();
}

async function checkSession() {
  try {
    const { status, body } = await getJSON("/api/v1/auth/me");
    if (status === 200 && body && body.user) {
      showLoggedIn(body.user);
    } else {
      showLoggedOut("");
    }
  } catch (err) {
    showLoggedOut("the server is unreachable");
  }
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  $("login-submit").disabled = true;
  try {
    const response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username: form.username.value, password: form.password.value }),
    });
    const body = await response.json();
    form.password.value = "";
    if (response.status === 200) {
      showLoggedIn(body.user);
    } else {
      showLoggedOut(body.error ? body.error.message : `error ${response.status}`);
    }
  } catch (err) {
    showLoggedOut("the server is unreachable");
  } finally {
    $("login-submit").disabled = false;
  }
}

async function logout() {
  try {
    await fetch("/api/v1/auth/logout", { method: "POST", headers: { Accept: "application/json" } });
  } finally {
    $("hosts").querySelector("tbody").replaceChildren();
    showLoggedOut("Logged out.");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("register").addEventListener("submit", register);
  $("prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE_SIZE);
    loadHosts();
  });
  $("next").addEventListener("click", () => {
    offset += PAGE_SIZE;
    loadHosts();
  });
  checkSession();
  setInterval(() => {
    if (!$("app").hidden) {
      loadStatus();
    }
  }, 15000);
});
