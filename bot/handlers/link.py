"""/link: bank → scopes → duration → disclosure → "Approve at <bank>".

```mermaid
stateDiagram-v2
    [*] --> BANK: /link, "link my bank"
    [*] --> SCOPES: Renew button
    BANK --> SCOPES: bank button
    SCOPES --> SCOPES: toggle a scope
    SCOPES --> DURATION: Next
    DURATION --> CONFIRM: 30/90/180/365 days
    CONFIRM --> [*]: I agree → URL button to the bank's page
    BANK --> [*]: Cancel, /cancel
    SCOPES --> [*]: Cancel, /cancel
    DURATION --> [*]: Cancel, /cancel
    CONFIRM --> [*]: Cancel, /cancel
    BANK --> [*]: no answer for BOT_LINK_TIMEOUT_S (told, buttons removed)
```

A digression (/balance, "what's my balance?") in any state is answered and the step is shown
again. The broker reports the outcome later through its webhook (see :mod:`bot.events`).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram import Bot, Update
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from bot import views
from bot.broker import Bank, BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers import basics, reading, text
from bot.handlers.common import answer_button, report, say
from bot.intents import classify
from bot.store import repo
from bot.store.repo import Sessions
from bot.store.tables import ChatUser

BANK, SCOPES, DURATION, CONFIRM = "bank", "scopes", "duration", "confirm"
END = ConversationHandler.END


async def _draft(update: Update, context: ChatContext) -> dict[str, Any]:
    user = update.effective_user
    assert user is not None
    return dict((await repo.load_state(context.services.sessions, user.id)).get("link") or {})


async def _keep(update: Update, context: ChatContext, draft: dict[str, Any]) -> None:
    user = update.effective_user
    assert user is not None
    await repo.save_state(context.services.sessions, user.id, {"link": draft})


async def _bank(context: ChatContext, bank_id: str) -> Bank | None:
    return (await context.services.known_banks()).get(bank_id)


async def start(update: Update, context: ChatContext) -> str | int:
    """/link: list the banks; next: BANK."""
    await answer_button(update)
    t = await texts(update, context)
    try:
        banks = await context.services.known_banks(refresh=True)
    except BrokerError as e:
        await report(update, context, e)
        return END
    await _keep(update, context, {"step": BANK})
    text, keyboard = views.bank_picker(t, list(banks.values()))
    await say(update, text, keyboard, edit=False)
    return BANK


async def _show_scopes(update: Update, context: ChatContext, draft: dict[str, Any]) -> str:
    bank = await _bank(context, draft["bank"])
    assert bank is not None
    text, keyboard = views.scope_picker(
        await texts(update, context), bank, draft["scopes"], bool(draft.get("receipts"))
    )
    await say(update, text, keyboard)
    return SCOPES


async def pick_bank(update: Update, context: ChatContext) -> str | int:
    """A bank button (or Renew on an expiry notice): preselect what it allows; next: SCOPES."""
    await answer_button(update)
    assert update.callback_query is not None and update.callback_query.data
    data = update.callback_query.data
    bank_id = data.removeprefix("lk:bank:").removeprefix("rn:")
    try:
        bank = await context.services.known_banks(refresh=data.startswith("rn:"))
    except BrokerError as e:
        await report(update, context, e)
        return END
    if bank_id not in bank:
        return await start(update, context)
    draft = {"step": SCOPES, "bank": bank_id, "scopes": list(bank[bank_id].scopes)}
    await _keep(update, context, draft)
    return await _show_scopes(update, context, draft)


async def toggle_scope(update: Update, context: ChatContext) -> str:
    """A scope button: switch it on or off; stay in SCOPES."""
    await answer_button(update)
    assert update.callback_query is not None and update.callback_query.data
    scope = update.callback_query.data.removeprefix("lk:sc:")
    draft = await _draft(update, context)
    chosen: list[str] = draft.get("scopes", [])
    draft["scopes"] = [s for s in chosen if s != scope] if scope in chosen else [*chosen, scope]
    await _keep(update, context, draft)
    return await _show_scopes(update, context, draft)


async def toggle_receipts(update: Update, context: ChatContext) -> str:
    """The receipts button: new card payments come as receipts (needs transactions)."""
    await answer_button(update)
    draft = await _draft(update, context)
    draft["receipts"] = not draft.get("receipts")
    await _keep(update, context, draft)
    return await _show_scopes(update, context, draft)


async def _show_duration(update: Update, context: ChatContext, draft: dict[str, Any]) -> str:
    bank = await _bank(context, draft["bank"])
    assert bank is not None
    text, keyboard = views.duration_picker(await texts(update, context), bank)
    await say(update, text, keyboard)
    return DURATION


async def scopes_done(update: Update, context: ChatContext) -> str:
    """Next: ask for how long; next: DURATION."""
    await answer_button(update)
    draft = await _draft(update, context)
    if not draft.get("scopes"):
        return await _show_scopes(update, context, draft)
    draft["step"] = DURATION
    await _keep(update, context, draft)
    return await _show_duration(update, context, draft)


async def _show_disclosure(update: Update, context: ChatContext, draft: dict[str, Any]) -> str:
    bank = await _bank(context, draft["bank"])
    assert bank is not None
    t = await texts(update, context)
    text, keyboard = views.disclosure(
        t, bank, draft["scopes"], draft["days"], context.services.clock()
    )
    await say(update, text, keyboard)
    return CONFIRM


async def pick_duration(update: Update, context: ChatContext) -> str:
    """A duration button: show the authorization disclosure; next: CONFIRM."""
    await answer_button(update)
    assert update.callback_query is not None and update.callback_query.data
    draft = await _draft(update, context)
    bank = await _bank(context, draft.get("bank", ""))
    raw = update.callback_query.data.removeprefix("lk:days:")
    if bank is None or not raw.isdigit() or int(raw) not in views.duration_options(bank):
        return await _show_duration(update, context, draft)
    draft.update(step=CONFIRM, days=int(raw))
    await _keep(update, context, draft)
    return await _show_disclosure(update, context, draft)


async def confirm(update: Update, context: ChatContext) -> int:
    """I agree: the broker creates the consent at the bank; show the bank's approval link."""
    await answer_button(update)
    draft = await _draft(update, context)
    bank = await _bank(context, draft.get("bank", ""))
    if bank is None:
        return END
    tr = await texts(update, context)
    try:
        subject = await subject_of(update, context, create=True)
        assert subject is not None
        started = await context.services.broker.start_link(
            subject,
            bank.bank_id,
            draft["scopes"],
            draft["days"],
            tr.language,
            receipts=bool(draft.get("receipts")) and "transactions" in draft["scopes"],
        )
    except BrokerError as e:
        await report(update, context, e)
        return END
    await _keep(update, context, {})
    text, keyboard = views.approve_at_bank(tr, bank, started.authorization_url)
    shown = await say(update, text, keyboard)
    message = shown or (update.callback_query.message if update.callback_query else None)
    user = update.effective_user
    if message is not None and user is not None:
        await repo.remember_approval(
            context.services.sessions, user.id, started.consent_id, message.message_id
        )
    return END


async def close_approval(bot: Bot, sessions: Sessions, user: ChatUser, consent_id: str) -> None:
    """The link has ended one way or another: its "Approve at …" button goes, as a finished
    flow's buttons do in Telegram after an edit."""
    message_id = await repo.take_approval(sessions, user.telegram_user_id, consent_id)
    if message_id is None:
        return
    with contextlib.suppress(TelegramError):  # deleted by the user, or already without buttons
        await bot.edit_message_reply_markup(user.chat_id, message_id, reply_markup=None)


STEPS: dict[str, Callable[[Update, ChatContext, dict[str, Any]], Awaitable[str]]] = {
    SCOPES: _show_scopes,
    DURATION: _show_duration,
    CONFIRM: _show_disclosure,
}


async def _resume(update: Update, context: ChatContext) -> None:
    """Show the current step again as a new message, after a digression."""
    draft = await _draft(update, context)
    step = draft.get("step", BANK)
    t = await texts(update, context)
    await say(update, t.message(t._("Back to linking your bank:")), edit=False)
    if step == BANK:
        banks = await context.services.known_banks()
        text, keyboard = views.bank_picker(t, list(banks.values()))
        await say(update, text, keyboard, edit=False)
    else:
        # say() edits when there is a pressed button; here there is none, so it sends
        await STEPS[step](update, context, draft)


def _digression(
    answer: Callable[[Update, ChatContext], Awaitable[Any]],
) -> Callable[[Update, ChatContext], Coroutine[Any, Any, None]]:
    async def handle(update: Update, context: ChatContext) -> None:
        await answer(update, context)
        await _resume(update, context)

    handle.__doc__ = f"{answer.__doc__} Then resume /link."
    return handle


async def text_inside(update: Update, context: ChatContext) -> int | None:
    """Free text while linking: cancel, answer a digression, or point at the buttons."""
    message = update.effective_message
    assert message is not None and message.text is not None
    t = await texts(update, context)
    intent = classify(message.text, t.language, today=context.services.clock().date())
    if intent.name == "cancel":
        return await basics.cancel(update, context)
    if intent.name in text.DIGRESSIONS:
        await text.route(update, context, intent)
    else:
        await say(update, t.message(t._("Please use the buttons, or /cancel.")), edit=False)
    await _resume(update, context)
    return None


async def timed_out(update: Update, context: ChatContext) -> None:
    """No answer for too long: forget the draft, take the buttons away, say so."""
    user = update.effective_user
    if user is not None:
        await repo.save_state(context.services.sessions, user.id, {})
    query = update.callback_query
    if query is not None and query.message is not None:
        with contextlib.suppress(TelegramError):  # already gone or already without buttons
            await query.edit_message_reply_markup(None)
    t = await texts(update, context)
    text = t._("Linking stopped because it waited too long. Start again with /link.")
    await say(update, t.message(text), edit=False)


def conversation(
    entry_text: filters.BaseFilter, timeout_s: float | None = None
) -> ConversationHandler[ChatContext]:
    digressions: list[BaseHandler[Update, ChatContext, Any]] = [
        CommandHandler("balance", _digression(reading.balance)),
        CommandHandler("transactions", _digression(reading.transactions)),
        CommandHandler("help", _digression(basics.help_command)),
    ]
    with warnings.catch_warnings():
        # buttons are tracked per chat and user, not per message: the flow edits one message
        warnings.filterwarnings("ignore", category=PTBUserWarning, message=".*per_message.*")
        return ConversationHandler(
            entry_points=[
                CommandHandler("link", start),
                CallbackQueryHandler(pick_bank, pattern=r"^rn:"),
                MessageHandler(entry_text, start),
            ],
            states={
                BANK: [CallbackQueryHandler(pick_bank, pattern=r"^lk:bank:")],
                SCOPES: [
                    CallbackQueryHandler(toggle_scope, pattern=r"^lk:sc:"),
                    CallbackQueryHandler(toggle_receipts, pattern=r"^lk:rc$"),
                    CallbackQueryHandler(scopes_done, pattern=r"^lk:next$"),
                ],
                DURATION: [CallbackQueryHandler(pick_duration, pattern=r"^lk:days:")],
                CONFIRM: [CallbackQueryHandler(confirm, pattern=r"^lk:ok$")],
                ConversationHandler.TIMEOUT: [TypeHandler(Update, timed_out)],
            },
            fallbacks=[
                CommandHandler("cancel", basics.cancel),
                CallbackQueryHandler(basics.cancel, pattern=r"^lk:cancel$"),
                CommandHandler("link", start),
                *digressions,
                MessageHandler(filters.TEXT & ~filters.COMMAND, text_inside),
            ],
            name="link",
            persistent=True,
            conversation_timeout=timeout_s,
        )
