"use strict";
const userSelect = document.getElementById("user");
const log = document.getElementById("log");
const composer = document.getElementById("composer");
const input = document.getElementById("text");
const typing = document.getElementById("typing");
const TYPING_S = 5;  // Telegram shows a chat action for about five seconds
let typingTimer = null;
let users = [];
// presses waiting for the bot: "<message id>:<edit count>:<data>" → callback query id; a press
// ends when the bot answers the callback query or edits the message (the key no longer fits)
const pending = new Map();
const toasted = new Set();

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
        // as in Telegram's clients: a pressed button waits (disabled) until the bot answers
        // or edits the message; the next render draws the message as it then stands
        const key = message.message_id + ":" + message.edit_count + ":" + button.callback_data;
        el.disabled = pending.has(key);
        el.addEventListener("click", async () => {
          el.disabled = true;
          pending.set(key, null);
          const id = await press(message.message_id, button.callback_data);
          if (id === null) pending.delete(key);
          else pending.set(key, id);
          await refresh();
        });
      }
      el.textContent = button.text;
      line.appendChild(el);
    }
    box.appendChild(line);
  }
  return box;
}

// the first-visit hint, in the chosen person's language
const HINTS = {
  en: ["Nobody has written here yet.", "Say hello: send /start, or tap below."],
  ar: ["لم يكتب أحد هنا بعد.", "ابدأ بإرسال /start، أو اضغط أدناه."],
  pl: ["Nikt jeszcze tu nie pisał.", "Przywitaj się: wyślij /start albo stuknij poniżej."],
};

function hint(user) {
  const [title, line] = HINTS[user.language_code] || HINTS.en;
  const box = document.createElement("div");
  box.className = "hint";
  box.id = "hint";
  const strong = document.createElement("strong");
  strong.textContent = title;
  const text = document.createElement("p");
  text.textContent = line;
  text.dir = "auto";
  const start = document.createElement("button");
  start.type = "button";
  start.textContent = "/start";
  start.addEventListener("click", () => send("/start"));
  box.append(strong, text, start);
  return box;
}

function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function attachment(m) {
  if (m.document) {
    const link = document.createElement("a");
    link.className = "document";
    link.href = "/api/files/" + encodeURIComponent(m.document.file_id);
    link.download = m.document.file_name || "file";
    link.textContent = "📄 " + (m.document.file_name || "file");
    const size = document.createElement("span");
    size.className = "size";
    size.textContent = " " + Math.max(1, Math.round(m.document.file_size / 1024)) + " KB";
    link.appendChild(size);
    return link;
  }
  if (m.photo) {
    const img = document.createElement("img");
    img.className = "photo";
    img.alt = "photo";
    img.src = "/api/files/" + encodeURIComponent(m.photo.file_id);
    return img;
  }
  return null;
}

function render(messages) {
  log.replaceChildren();
  if (messages.length === 0) log.appendChild(hint(currentUser()));
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
    const file = attachment(m);
    if (file) bubble.appendChild(file);
    if (m.text) bubble.appendChild(text);
    const meta = document.createElement("span");
    meta.className = "meta";
    const time = document.createElement("time");
    time.dateTime = new Date(m.date * 1000).toISOString();
    time.textContent = clock(m.date);
    time.dir = "ltr";  // "05:31 AM" reads the same on a right-to-left page
    if (m.edit_count > 0) {
      const edited = document.createElement("span");
      edited.className = "edited";
      edited.textContent = "edited";
      meta.append(edited, " ");
    }
    meta.appendChild(time);
    bubble.appendChild(meta);
    bubble.appendChild(keyboardFor(m));
    log.appendChild(bubble);
  }
  log.scrollTop = log.scrollHeight;
}

function toast(text) {
  const box = document.createElement("div");
  box.className = "toast";
  box.textContent = text;
  box.dir = "auto";
  document.body.appendChild(box);
  setTimeout(() => box.remove(), 3000);
}

function settle(answers) {
  const answered = new Map(answers.map((a) => [a.callback_query_id, a]));
  for (const [key, id] of pending) {
    const answer = id === null ? undefined : answered.get(id);
    if (answer === undefined) continue;
    pending.delete(key);
    if (answer.text && !toasted.has(id)) {
      toasted.add(id);
      toast(answer.text);
    }
  }
}

async function refresh() {
  const user = currentUser();
  if (!user) return;
  document.documentElement.dir = user.dir;
  document.documentElement.lang = user.language_code;
  log.dir = user.dir;
  const [messages, answers] = await Promise.all([
    fetch("/api/messages/" + user.id).then((r) => r.json()),
    pending.size ? fetch("/api/callback-answers").then((r) => r.json()) : [],
  ]);
  settle(answers);
  render(messages);
  showTyping(user, messages, await fetch("/api/chat-actions").then((r) => r.json()));
}

// "typing…" beside the chat's name while the bot's last sendChatAction is fresh and no message
// of the bot has come since (a message ends it, as in Telegram)
function showTyping(user, messages, actions) {
  const mine = actions.filter((a) => a.chat_id === user.id);
  const last = mine.length ? mine[mine.length - 1] : null;
  const left = last ? last.date + TYPING_S - Date.now() / 1000 : 0;
  const answered = last && messages.some((m) => m.from_bot && m.date > last.date);
  typing.hidden = !(last && last.action === "typing" && left > 0 && !answered);
  clearTimeout(typingTimer);
  if (!typing.hidden) typingTimer = setTimeout(() => { typing.hidden = true; }, left * 1000);
}

async function press(messageId, data) {
  const response = await fetch("/api/press", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: currentUser().id, message_id: messageId, data }),
  });
  return response.ok ? (await response.json()).callback_query_id : null;
}

async function send(text) {
  await fetch("/api/send", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_id: currentUser().id, text }),
  });
}

composer.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  await send(text);
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
