"""/start, /help, /language, /timezone and /cancel."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ConversationHandler

from bot import views
from bot.context import ChatContext, chat_user, texts
from bot.handlers.common import answer_button, say
from bot.i18n import LANGUAGES, tr
from bot.store import repo
from bot.zones import find_zone, suggest


async def start(update: Update, context: ChatContext) -> None:
    """/start: welcome, what I do, the privacy promise; the language comes from Telegram."""
    await say(update, views.welcome(await texts(update, context)))


async def help_command(update: Update, context: ChatContext) -> None:
    """/help: the commands, and that free text works too."""
    await say(update, views.help_text(await texts(update, context)), edit=False)


async def language(update: Update, context: ChatContext) -> None:
    """/language: offer the three languages as buttons; next: choose_language."""
    t = await texts(update, context)
    await say(update, t.message(t._("Choose your language:")), views.languages_keyboard())


async def choose_language(update: Update, context: ChatContext) -> None:
    """A language button: remember the choice and confirm in the new language."""
    await answer_button(update)
    assert update.callback_query is not None and update.callback_query.data
    code = update.callback_query.data.removeprefix("lang:")
    if code not in LANGUAGES:
        return
    row = await chat_user(update, context)
    row.language = code
    await repo.save_user(context.services.sessions, row)
    t = tr(code)
    await say(update, t.message(t._("I will speak English with you now.")))


async def timezone(update: Update, context: ChatContext) -> None:
    """/timezone [zone or city]: the time zone of every time I show (UTC until set)."""
    t = await texts(update, context)
    wanted = " ".join(context.args or []).strip()[:80]
    now = context.services.clock()
    if not wanted:
        await say(update, views.time_zone(t, now), edit=False)
        return
    zone = find_zone(wanted)
    if zone is None:
        await say(update, views.unknown_time_zone(t, wanted, suggest(wanted)), edit=False)
        return
    row = await chat_user(update, context)
    row.time_zone = None if zone == "UTC" else zone
    await repo.save_user(context.services.sessions, row)
    await say(update, views.time_zone(tr(t.language, row.time_zone), now, changed=True), edit=False)


async def cancel(update: Update, context: ChatContext) -> int:
    """/cancel (anywhere): drop the current flow."""
    await answer_button(update)
    user = update.effective_user
    assert user is not None
    await repo.save_state(context.services.sessions, user.id, {})
    t = await texts(update, context)
    await say(update, t.message(t._("Cancelled. What next? /help lists everything.")))
    return ConversationHandler.END
