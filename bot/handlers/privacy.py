"""/privacy: what the platform holds (handles only), the access log with its integrity check,
export, and delete."""

from __future__ import annotations

import json

from telegram import InputFile, Update

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, chat_user, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.store import repo

EXPORT_NAME = "chatbank-export.json"


async def show(update: Update, context: ChatContext) -> None:
    """/privacy: the handles I keep, and buttons for the log, export and delete."""
    row = await chat_user(update, context)
    t = await texts(update, context)
    text, keyboard = views.privacy(t, row.subject_id, row.language or "en")
    await say(update, text, keyboard, edit=False)


async def export(update: Update, context: ChatContext, user_id: int, subject: str | None) -> None:
    """Everything held about the user as one JSON file, with a short summary as its caption."""
    t = await texts(update, context)
    held = {"telegram_user_id": user_id, "subject_id": subject, "language": t.language}
    broker_part = await context.services.broker.export(subject) if subject else {}
    body = json.dumps({"bot": held, "broker": broker_part}, indent=2, ensure_ascii=False)
    links = broker_part.get("consents") or []
    entries = broker_part.get("access_log") or []
    chats = broker_part.get("support_conversations") or []
    summary = "\n".join(
        [
            t._("Everything held about you, by me and by the consent broker, is in this file:"),
            "• " + t.n_("%(n)s bank link", "%(n)s bank links", len(links)),
            "• " + t.n_("%(n)s access log entry", "%(n)s access log entries", len(entries)),
            "• " + t.n_("%(n)s chat with your bank", "%(n)s chats with your bank", len(chats)),
            "• " + t._("no balances, transactions or account numbers"),
        ]
    )
    chat = update.effective_chat
    assert chat is not None
    await chat.send_document(
        InputFile(body.encode(), filename=EXPORT_NAME),
        caption=t.message(summary),
    )


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
            await export(update, context, user.id, subject)
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
