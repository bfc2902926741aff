"use strict";
const userSelect = document.getElementById("user");
const log = document.getElementById("log");
const composer = document.getElementById("composer");
const input = document.getElementById("text");
let users = [];

function currentUser() {
  return users.find((u) => String(u.id) === userSelect.value);
}

function keyboardFor(message) {
  const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
  const box = document.createElement("div");
  box.className = "keyboard";
  for (const row of rows) {
    const line = document.createElement("div");
    line.className = "row";
    for (const button of row) {
      let el;
      if (button.url) {
        el = document.createElement("a");
        el.href = button.url;
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
    if (m.parse_mode === "HTML") {
      text.innerHTML = m.text;  // the bot's own HTML subset, as Telegram renders it
    } else {
      text.textContent = m.text;
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
