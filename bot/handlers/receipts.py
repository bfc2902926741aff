"""Real-time receipts in the chat: showing (and editing) what the broker pushes, /receipts to
switch them per account, /quiet for quiet hours.

The bot keeps no receipt: the broker pushes each message whole (one payment, a burst of them,
or the summary after quiet hours) and pushes it again, same message key, when a pending payment
books or is reversed; the bot keeps only which chat message shows which key (ids, not money).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation

from telegram import Bot, Update
from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup as Keyboard
from telegram.error import BadRequest

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.i18n import Tr
from bot.store.repo import Sessions
from bot.store.tables import ReceiptMessage

MAX_LINES = 20
# whole commands with their arguments, kept left-to-right inside Arabic text
QUIET_EXAMPLE = "/quiet 22:00-07:00 Europe/London"
QUIET_OFF = "/quiet off"


def _money(tr: Tr, view: Mapping[str, object]) -> str:
    amount, currency = view.get("amount"), view.get("currency")
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return "—"
    return tr.money(value, str(currency)) if amount is not None and currency else "—"


def _time(tr: Tr, view: Mapping[str, object]) -> str | None:
    when = view.get("time")
    if not isinstance(when, str):
        return None
    try:
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    return tr.moment(moment) if moment.tzinfo else None


def _line(tr: Tr, view: Mapping[str, object]) -> str:
    """One payment: amount at merchant, then card, category and pending/reversed."""
    money = _money(tr, view)
    merchant = tr.esc(str(view.get("merchant") or "—"))
    head = tr._("%(amount)s at %(merchant)s", amount=f"<b>{money}</b>", merchant=merchant)
    if view.get("status") == "reversed":
        head = f"<s>{head}</s>"
    details = []
    if view.get("card_last4"):
        details.append(tr._("Card ending %(last4)s", last4=tr.ltr(str(view["card_last4"]))))
    if isinstance(view.get("category"), str):
        details.append(views.category_name(tr, str(view["category"])))
    status = view.get("status")
    if status == "pending":
        details.append(tr._("pending"))
    elif status == "reversed":
        details.append(tr._("reversed: no money was taken"))
    return head + ("\n" + " · ".join(details) if details else "")


def receipt_text(tr: Tr, receipts: Sequence[Mapping[str, object]]) -> str:
    """One receipt, or a burst: "3 payments at …" and one line each."""
    if len(receipts) == 1:
        view = receipts[0]
        when = _time(tr, view)
        return tr.message("🧾 " + _line(tr, view) + (f"\n{when}" if when else ""))
    when = _time(tr, receipts[0]) or "—"
    head = tr.n_(
        "%(n)s payment at %(time)s", "%(n)s payments at %(time)s", len(receipts), time=when
    )
    lines = ["🧾 <b>" + head + "</b>"] + ["• " + _line(tr, v) for v in receipts[:MAX_LINES]]
    return tr.message("\n".join(lines))


def summary_text(
    tr: Tr, receipts: Sequence[Mapping[str, object]], count: int, totals: Mapping[str, object]
) -> str:
    """The receipts held through quiet hours, as one message."""
    head = tr.n_(
        "While your quiet hours lasted: %(n)s payment",
        "While your quiet hours lasted: %(n)s payments",
        count,
    )
    lines = ["🌙 <b>" + head + "</b>"]
    spent = []
    for currency, total in totals.items():
        try:
            spent.append(tr.money(Decimal(str(total)), str(currency)))
        except InvalidOperation:
            continue
    if spent:
        lines.append(tr._("In total: %(amount)s", amount=", ".join(spent)))
    lines += ["• " + _line(tr, v) for v in receipts[:MAX_LINES]]
    return tr.message("\n".join(lines))


async def show(
    bot: Bot,
    sessions: Sessions,
    source: str,
    chat_id: int,
    tr: Tr,
    kind: str,
    data: Mapping[str, object],
    now: int,
) -> None:
    """Send a receipt message, or edit the one that shows its key (``now``: Unix seconds)."""
    raw = data.get("receipts")
    receipts = [r for r in raw if isinstance(r, dict)] if isinstance(raw, list) else []
    if not receipts:
        return
    if kind == "receipt_summary":
        count = data.get("count")
        totals = data.get("totals")
        text = summary_text(
            tr,
            receipts,
            count if isinstance(count, int) else len(receipts),
            totals if isinstance(totals, dict) else {},
        )
    else:
        text = receipt_text(tr, receipts)
    key = f"{source}:{data.get('message')}"[:120]
    async with sessions() as session:
        shown = await session.get(ReceiptMessage, key)
    if shown is not None and data.get("edit"):
        try:
            await bot.edit_message_text(text, chat_id=shown.chat_id, message_id=shown.message_id)
        except BadRequest as e:
            if "not modified" not in str(e).lower():
                raise
        return
    if shown is not None:
        return  # shown before: a repeat of the first delivery
    sent = await bot.send_message(chat_id, text)
    async with sessions() as session:
        await session.merge(
            ReceiptMessage(key=key, chat_id=chat_id, message_id=sent.message_id, shown_at=now)
        )
        await session.commit()


# --- /receipts ------------------------------------------------------------------------------


async def _offer(update: Update, context: ChatContext, *, edit: bool) -> None:
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    broker = context.services.broker
    try:
        accounts = await broker.accounts(subject) if subject else []
        settings = await broker.receipt_settings(subject) if subject else None
    except BrokerError as e:
        await report(update, context, e)
        return
    on = {a.account_handle: a.enabled for a in settings.accounts} if settings else {}
    eligible = [a for a in accounts if "transactions" in a.actions]
    if not eligible:
        text = t._("No account shares its transactions yet: /link a bank to get receipts.")
        await say(update, t.message(text), edit=False)
        return
    rows = []
    for account in eligible[:10]:
        enabled = on.get(account.account_handle, False)
        mark = "✅" if enabled else "⬜"
        label = f"{mark} {views.account_label(account)}"
        flip = "off" if enabled else "on"
        rows.append([Button(label, callback_data=f"rc:{flip}:{account.account_handle}")])
    lines = [t._("<b>Receipts</b> for new card payments. Tap an account to switch them.")]
    quiet = settings.quiet_hours if settings else None
    if quiet is not None:
        lines.append(
            t._(
                "Quiet hours: %(start)s to %(end)s (%(zone)s). %(off)s ends them.",
                start=t.ltr(quiet.start),
                end=t.ltr(quiet.end),
                zone=t.ltr(t.esc(quiet.timezone)),
                off=t.ltr(QUIET_OFF),
            )
        )
    else:
        lines.append(t._("No quiet hours. %(example)s sets them.", example=t.ltr(QUIET_EXAMPLE)))
    await say(update, t.message("\n".join(lines)), Keyboard(rows), edit=edit)


async def command(update: Update, context: ChatContext) -> None:
    """/receipts: every account that shares transactions, with its receipts on or off."""
    await _offer(update, context, edit=False)


async def button(update: Update, context: ChatContext) -> None:
    """rc:on|off:<account handle>: switch, then show the list again (edited)."""
    await answer_button(update)
    query = update.callback_query
    assert query is not None and query.data
    parts = query.data.split(":", 2)
    subject = await subject_of(update, context, create=False)
    if len(parts) != 3 or parts[1] not in ("on", "off") or subject is None:
        return
    t = await texts(update, context)
    try:
        await context.services.broker.set_receipts(subject, parts[2], parts[1] == "on")
    except BrokerError as e:
        await say(update, views.problem(t, e))
        return
    await _offer(update, context, edit=True)


_QUIET = re.compile(
    r"^\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})(?:\s+([A-Za-z_+\-/0-9]{1,64}))?\s*$"
)


async def quiet(update: Update, context: ChatContext) -> None:
    """/quiet 22:00-07:00 [Europe/London] sets quiet hours; /quiet off ends them."""
    t = await texts(update, context)
    args = " ".join(context.args or [])
    subject = await subject_of(update, context, create=False)
    usage = t._("Send %(example)s, or %(off)s.", example=t.ltr(QUIET_EXAMPLE), off=t.ltr(QUIET_OFF))
    if subject is None:
        await say(update, t.message(t._("To link a bank, send /link.")), edit=False)
        return
    hours: tuple[str, str, str] | None
    if args.strip().lower() in ("off", "none", "wyłącz", "إيقاف"):
        hours = None
    else:
        match = _QUIET.match(args)
        if match is None:
            await say(update, t.message(usage), edit=False)
            return
        start, end = (v.zfill(5) for v in match.group(1, 2))
        hours = (start, end, match.group(3) or t.zone_name)
    try:
        set_to = await context.services.broker.set_quiet_hours(subject, hours)
    except BrokerError as e:
        if e.status == 400:  # a time or zone the broker does not take
            await say(update, t.message(usage), edit=False)
        else:
            await report(update, context, e)
        return
    if set_to is None:
        text = t._("Quiet hours are off: receipts come as they happen.")
    else:
        text = t._(
            "Quiet hours set: %(start)s to %(end)s (%(zone)s). Receipts wait and come as one "
            "summary.",
            start=t.ltr(set_to.start),
            end=t.ltr(set_to.end),
            zone=t.ltr(t.esc(set_to.timezone)),
        )
    await say(update, t.message(text), edit=False)
