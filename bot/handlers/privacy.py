"""/privacy: what the platform holds (handles only), the access log with its integrity check,
export, and delete."""

from __future__ import annotations

import html
import json

from telegram import Update

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, chat_user, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.store import repo

CHUNK = 3500  # characters per message, under Telegram's 4096 after escaping


async def show(update: Update, context: ChatContext) -> None:
    """/privacy: the handles I keep, and buttons for the log, export and delete."""
    row = await chat_user(update, context)
    t = await texts(update, context)
    text, keyboard = views.privacy(t, row.subject_id, row.language or "en")
    await say(update, text, keyboard, edit=False)


async def button(update: Update, context: ChatContext) -> None:
    """pv:log / pv:export / pv:del → pv:delok / pv:keep."""
    await answer_button(update)
    query, user = update.callback_query, update.effective_user
    assert query is not None and query.data and user is not None
    action = query.data.removeprefix("pv:")
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    broker = context.services.broker
    try:
        if action == "log":
            if subject is None:
                await say(
                    update, t.message(t._("Nothing has been read about you yet.")), edit=False
                )
                return
            await say(update, views.access_log(t, await broker.access_log(subject)), edit=False)
        elif action == "export":
            held = {"telegram_user_id": user.id, "subject_id": subject, "language": t.language}
            broker_part = await broker.export(subject) if subject else {}
            body = json.dumps({"bot": held, "broker": broker_part}, indent=2, ensure_ascii=False)
            await say(
                update,
                t.message(t._("Everything held about you, by me and by the consent broker:")),
                edit=False,
            )
            for start in range(0, len(body), CHUNK):
                part = html.escape(body[start : start + CHUNK], quote=False)
                await say(update, f"<pre>{part}</pre>", edit=False)
        elif action == "del":
            text, keyboard = views.delete_confirm(t)
            await say(update, text, keyboard)
        elif action == "delok":
            if subject is not None:
                await broker.delete_subject(subject)
            await repo.forget_user(context.services.sessions, user.id)
            await say(update, t.message(t._("Done: every link is revoked and I forgot you.")))
        elif action == "keep":
            await say(update, t.message(t._("Nothing was deleted.")))
    except BrokerError as e:
        await report(update, context, e)
