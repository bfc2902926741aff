"use strict";
const userSelect = document.getElementById("user");
const log = document.getElementById("log");
const composer = document.getElementById("composer");
const input = document.getElementById("text");
let users = [];

function currentUser() {
  return users.find((u) => String(u.id) === userSelect.value);
}

// Bot HTML is parsed in an inert document (no scripts run, nothing loads) and rebuilt node by
// node in the page: only Telegram's tags survive, with only the attributes Telegram knows;
// anything else contributes its text only. User text is always plain text.
const ALLOWED = new Set(["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
  "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji"]);
const SAFE_SCHEMES = new Set(["http:", "https:", "tg:"]);
const DROPPED = new Set(["script", "style", "template", "noscript", "title"]);  // not even text

function safeHref(value) {
  try {
    const url = new URL(value);
    return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
  } catch (e) {
    return null;
  }
}

function cleanElement(source) {
  const tag = source.localName;
  if (!ALLOWED.has(tag)) return null;
  if (tag === "tg-spoiler" || (tag === "span" && source.getAttribute("class") === "tg-spoiler")) {
    const el = document.createElement("span");
    el.className = "tg-spoiler";
    return el;
  }
  if (tag === "span" || tag === "tg-emoji") return document.createElement("span");
  const el = document.createElement(tag);
  if (tag === "a") {
    const href = safeHref(source.getAttribute("href") || "");
    if (href === null) return document.createElement("span");
    el.href = href;
    el.rel = "noopener noreferrer";
    el.target = "_blank";
  } else if (tag === "code") {
    const cls = source.getAttribute("class") || "";
    if (/^language-[\w+-]+$/.test(cls)) el.className = cls;
  } else if (tag === "blockquote" && source.hasAttribute("expandable")) {
    el.className = "expandable";
  }
  return el;
}

function cleanChildren(source, target) {
  for (const node of source.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) {
      target.appendChild(document.createTextNode(node.data));
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      if (DROPPED.has(node.localName)) continue;
      const el = cleanElement(node);
      if (el === null) {
        cleanChildren(node, target);  // an unknown tag: keep its text, drop the tag
      } else {
        cleanChildren(node, el);
        target.appendChild(el);
      }
    }
  }
  return target;
}

function sanitize(html) {
  const parsed = new DOMParser().parseFromString(html, "text/html");
  return cleanChildren(parsed.body, document.createDocumentFragment());
}
window.localchatSanitize = sanitize;

function keyboardFor(message) {
  const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
  const box = document.createElement("div");
  box.className = "keyboard";
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "row";
    for (const button of row) {
      let el;
      if (button.url && safeHref(button.url)) {
        el = document.createElement("a");
        el.href = safeHref(button.url);
        el.target = "_blank";
        el.rel = "noopener noreferrer";
      } else {
        el = document.createElement("button");
        el.type = "button";
        el.addEventListener("click", () => press(message.message_id, button.callback_data));
      }
      el.textContent = button.text;
      line.appendChild(el);
    }
    box.appendChild(line);
  }
  return box;
}

function render(messages) {
  log.replaceChildren();
  for (const m of messages) {
    const bubble = document.createElement("div");
    bubble.className = m.from_bot ? "bubble" : "bubble mine";
    bubble.id = "m" + m.message_id;
    const text = document.createElement("div");
    text.className = "text";
    if (m.from_bot && m.parse_mode === "HTML") {
      text.appendChild(sanitize(m.text));
    } else {
      text.textContent = m.text;
      // what a person typed ("/start" on the Arabic page) takes its direction from its own
      // first strong character, as Telegram's clients do; the bot's messages follow the page
      text.dir = "auto";
    }
    bubble.appendChild(text);
    if (m.edit_count > 0) {
      const edited = document.createElement("span");
      edited.className = "edited";
      edited.textContent = "edited";
      bubble.appendChild(edited);
    }
    bubble.appendChild(keyboardFor(m));
    log.appendChild(bubble);
  }
  log.scrollTop = log.scrollHeight;
}

async function refresh() {
  const user = currentUser();
  if (!user) return;
  document.documentElement.dir = user.dir;
  document.documentElement.lang = user.language_code;
  log.dir = user.dir;
  const response = await fetch("/api/messages/" + user.id);
  render(await response.json());
}

async function press(messageId, data) {
  await fetch("/api/press", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: currentUser().id, message_id: messageId, data }),
  });
}

composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  await fetch("/api/send", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: currentUser().id, text }),
  });
});

userSelect.addEventListener("change", refresh);

async function boot() {
  users = await (await fetch("/api/users")).json();
  for (const u of users) {
    const option = document.createElement("option");
    option.value = String(u.id);
    option.textContent = u.first_name + " (" + u.language_code + ")";
    userSelect.appendChild(option);
  }
  new EventSource("/api/events").onmessage = refresh;
  await refresh();
}

boot();
