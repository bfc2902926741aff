"""Pure rendering: views from the broker → message text (HTML) and inline keyboards.

No I/O here; every string goes through the user's :class:`~bot.i18n.Tr`, and every value from
outside is escaped. Callback data stays under Telegram's 64-byte limit.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import groupby

from babel.dates import format_datetime
from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup as Keyboard

from bot.broker import (
    AccessLog,
    Account,
    Balance,
    Bank,
    BrokerError,
    Consent,
    Spending,
    SupportSent,
    TransactionPage,
    Unavailable,
)
from bot.i18n import FSI, NAMES, PDI, Tr

DURATIONS = (30, 90, 180, 365)
SCOPES = ("balances", "transactions", "fraud_alerts", "card_controls", "support")


def scope_name(tr: Tr, scope: str) -> str:
    names = {
        "balances": tr._("Balances"),
        "transactions": tr._("Transactions"),
        "fraud_alerts": tr._("Fraud alerts"),
        "card_controls": tr._("Card freeze"),
        "support": tr._("Chat with the bank's staff"),
    }
    return names.get(scope, scope)


def welcome(tr: Tr) -> str:
    return tr.message(
        tr._("<b>Welcome to chatbank.</b>")
        + "\n"
        + tr._(
            "I show balances and transactions from the banks you link, and warn you about "
            "suspicious card payments."
        )
        + "\n\n🔒 "
        + tr._(
            "Your bank approves every link on its own page, and I receive only what you allowed, "
            "never account numbers or passwords."
        )
        + "\n"
        + tr._("Nothing is ever used for advertising. /privacy shows what I hold.")
        + "\n\n"
        + tr._("Start with /link, or ask me: “what's my balance?”")
    )


def help_text(tr: Tr) -> str:
    lines = [
        tr._("<b>What I can do</b>"),
        "/link — " + tr._("link a bank"),
        "/balance — " + tr._("balances of your linked accounts"),
        "/transactions — " + tr._("recent transactions, with filters"),
        "/insights — " + tr._("spending by category, with a chart"),
        "/support — " + tr._("talk to a person at your bank"),
        "/receipts — " + tr._("receipts for card payments, quiet hours"),
        "/quiet — "
        + tr._("quiet hours for receipts, e.g. %(example)s", example=tr.ltr("/quiet 22:00-07:00")),
        "/consents — " + tr._("what you shared, and revoke it"),
        "/privacy — " + tr._("what I hold, the access log, export or delete"),
        "/language — " + tr._("change language"),
        "/timezone — "
        + tr._("show times on your clock, e.g. %(example)s", example=tr.ltr("/timezone Warsaw")),
        "/cancel — " + tr._("stop what we are doing"),
        "",
        tr._("You can also write, e.g. “what did I spend at Tesco last month?”"),
    ]
    return tr.message("\n".join(lines))


TIME_ZONE_EXAMPLES = ("/timezone Europe/Warsaw", "/timezone Riyadh")


def time_zone(tr: Tr, now: datetime, *, changed: bool = False) -> str:
    """Which time zone the times I show are in, and how to change it."""
    zone, clock = tr.ltr(tr.esc(tr.zone_name)), tr.clock(now)
    if changed:
        return tr.message(
            "🕘 "
            + tr._("Times are now shown in %(zone)s (it is %(time)s there).", zone=zone, time=clock)
        )
    lines = [
        "🕘 " + tr._("Times are shown in %(zone)s (it is %(time)s there).", zone=zone, time=clock),
        tr._(
            "To change it, send a time zone or your city, e.g. %(first)s or %(second)s.",
            first=tr.ltr(TIME_ZONE_EXAMPLES[0]),
            second=tr.ltr(TIME_ZONE_EXAMPLES[1]),
        ),
    ]
    return tr.message("\n".join(lines))


def unknown_time_zone(tr: Tr, wanted: str, close: Sequence[str]) -> str:
    lines = [tr._("I don't know the time zone “%(text)s”.", text=tr.esc(wanted))]
    if close:
        names = ", ".join(tr.ltr(f"/timezone {z}") for z in close)
        lines.append(tr._("Did you mean %(zones)s?", zones=names))
    lines.append(
        tr._(
            "To change it, send a time zone or your city, e.g. %(first)s or %(second)s.",
            first=tr.ltr(TIME_ZONE_EXAMPLES[0]),
            second=tr.ltr(TIME_ZONE_EXAMPLES[1]),
        )
    )
    return tr.message("\n".join(lines))


def languages_keyboard() -> Keyboard:
    return Keyboard([[Button(name, callback_data=f"lang:{code}")] for code, name in NAMES.items()])


def bank_picker(tr: Tr, banks: Sequence[Bank]) -> tuple[str, Keyboard]:
    rows = [[Button(b.name, callback_data=f"lk:bank:{b.bank_id}")] for b in banks]
    rows.append([Button(tr._("Cancel"), callback_data="lk:cancel")])
    return tr.message(tr._("Which bank would you like to link?")), Keyboard(rows)


def scope_picker(
    tr: Tr, bank: Bank, chosen: Sequence[str], receipts: bool = False
) -> tuple[str, Keyboard]:
    rows = []
    for scope in SCOPES:
        if scope in bank.scopes:
            mark = "✅" if scope in chosen else "⬜"
            rows.append([Button(f"{mark} {scope_name(tr, scope)}", callback_data=f"lk:sc:{scope}")])
    if "transactions" in chosen:  # receipts are the transactions view, pushed as it happens
        mark = "✅" if receipts else "⬜"
        rows.append([Button(f"{mark} 🧾 {tr._('Real-time receipts')}", callback_data="lk:rc")])
    nav = [Button(tr._("Cancel"), callback_data="lk:cancel")]
    if chosen:
        nav.append(Button(tr._("Next"), callback_data="lk:next"))
    rows.append(nav)
    text = tr._("<b>%(bank)s</b>: what may I see? Tap to choose.", bank=tr.esc(bank.name))
    missing = [s for s in SCOPES if s not in bank.scopes]
    if missing:
        names = ", ".join(scope_name(tr, s) for s in missing)
        text += "\n" + tr._(
            "%(bank)s does not share through chat: %(scopes)s.",
            bank=tr.esc(bank.name),
            scopes=names,
        )
    return tr.message(text), Keyboard(rows)


def duration_options(bank: Bank) -> list[int]:
    options = [d for d in DURATIONS if d <= bank.max_duration_days]
    return options or [bank.max_duration_days]


def duration_picker(tr: Tr, bank: Bank) -> tuple[str, Keyboard]:
    row = [
        Button(tr.n_("%(n)s day", "%(n)s days", d), callback_data=f"lk:days:{d}")
        for d in duration_options(bank)
    ]
    text = tr._("For how long? %(bank)s allows at most:", bank=tr.esc(bank.name)) + " "
    text += tr.n_("%(n)s day", "%(n)s days", bank.max_duration_days) + "."
    return tr.message(text), Keyboard([row, [Button(tr._("Cancel"), callback_data="lk:cancel")]])


def disclosure(
    tr: Tr, bank: Bank, scopes: Sequence[str], days: int, now: datetime
) -> tuple[str, Keyboard]:
    """The authorization disclosure (12 CFR 1033 style): who, what, why, how long, how to stop."""
    until = tr.day((now + timedelta(days=days)).date())
    lines = [
        tr._("<b>Before you approve</b>"),
        "• "
        + tr._(
            "Who receives the data: chatbank, this chat service, through its consent "
            "broker; %(bank)s sends it.",
            bank=tr.esc(bank.name),
        ),
        "• " + tr._("What: %(scopes)s.", scopes=", ".join(scope_name(tr, s) for s in scopes)),
        "• " + tr._("Why: to answer you in this chat and to warn you about fraud; nothing else."),
        "• "
        + tr._(
            "How long: %(days)s, until %(date)s; then I ask again.",
            days=tr.n_("%(n)s day", "%(n)s days", days),
            date=until,
        ),
        "• " + tr._("Stop any time with /consents or at your bank: as easy as granting."),
        "• " + tr._("Never used for advertising or cross-selling, never sold."),
        "",
        tr._(
            "Next you approve at %(bank)s's own page. Never type a password in this chat.",
            bank=tr.esc(bank.name),
        ),
    ]
    keyboard = Keyboard(
        [
            [Button(tr._("I agree, continue"), callback_data="lk:ok")],
            [Button(tr._("Cancel"), callback_data="lk:cancel")],
        ]
    )
    return tr.message("\n".join(lines)), keyboard


def approve_at_bank(tr: Tr, bank: Bank, url: str) -> tuple[str, Keyboard]:
    text = tr._(
        "Open %(bank)s to approve. I will tell you here when it is done.", bank=tr.esc(bank.name)
    )
    button = Button(tr._("Approve at %(bank)s", bank=bank.name), url=url)
    return tr.message(text), Keyboard([[button]])


def _kind(tr: Tr, kind: str | None) -> str:
    names = {
        "current": tr._("Current account"),
        "savings": tr._("Savings"),
        "credit_card": tr._("Credit card"),
    }
    return names.get(kind or "", kind or "")


def balances(
    tr: Tr,
    views: Sequence[Balance],
    unavailable: Sequence[Unavailable] = (),
    now: datetime | None = None,
) -> str:
    """Balances grouped by bank; a balance the bank did not just confirm says "as of 10:32",
    and every bank that did not answer is named."""
    if not views and not unavailable:
        return tr.message(tr._("No balances yet: link a bank with /link."))
    lines = [tr._("<b>Your balances</b>")]
    for bank_name, grouped in groupby(views, key=lambda b: b.bank_name or ""):
        group = list(grouped)
        lines.append(f"\n🏦 <b>{tr.esc(bank_name)}</b>")
        if any(b.status == "last_known" for b in group):
            lines.append(
                "⏳ "
                + tr._(
                    "%(bank)s did not answer in time: these are the last balances I read.",
                    bank=tr.esc(bank_name),
                )
            )
        for b in group:
            name = b.nickname or _kind(tr, b.account_type)
            ending = tr._("ending %(last4)s", last4=tr.ltr(b.last4)) if b.last4 else ""
            lines.append(f"• {tr.esc(name)} {ending}".rstrip())
            lines.append(
                "  " + tr._("Available: %(amount)s", amount=tr.money(b.available, b.currency))
            )
            if b.current is not None and b.current != b.available:
                lines.append(
                    "  " + tr._("Current: %(amount)s", amount=tr.money(b.current, b.currency))
                )
            if b.status == "last_known" and b.read_at is not None:
                lines.append("  " + tr._("as of %(time)s", time=as_of(tr, b.read_at, now)))
    for gone in unavailable:
        lines.append("\n⚠️ " + _not_answering(tr, gone))
    return tr.message("\n".join(lines))


def as_of(tr: Tr, read_at: datetime, now: datetime | None = None) -> str:
    """When a balance was read, in the user's locale and time zone: the time today, else date
    and time."""
    when = tr.local(read_at)
    if when.date() == tr.local(now or datetime.now(UTC)).date():
        return tr.clock(when)
    return tr.ltr(format_datetime(when, "short", tzinfo=tr.zone, locale=tr.locale))


def _not_answering(tr: Tr, gone: Unavailable) -> str:
    bank = tr.esc(gone.bank_name)
    if gone.reason == "reauthorization_needed":
        return tr._("%(bank)s needs you to link it again: /link", bank=bank)
    if gone.reason in ("bank_timeout", "bank_unavailable"):
        return tr._(
            "%(bank)s is not answering right now, so I can't show its balances. "
            "Please try again in a minute.",
            bank=bank,
        )
    return tr._("%(bank)s did not give me its balances. Please try again in a minute.", bank=bank)


def left_out(tr: Tr, unavailable: Sequence[Unavailable], *, others: bool) -> list[str]:
    """One line per bank whose part is missing from an answer: "Northwind Bank did not answer;
    showing the others." when something else is shown, else that it is not answering."""
    lines = []
    for gone in unavailable:
        bank = tr.esc(gone.bank_name)
        if gone.reason == "reauthorization_needed":
            text = tr._("%(bank)s needs you to link it again: /link", bank=bank)
        elif others:
            text = tr._("%(bank)s did not answer; showing the others.", bank=bank)
        else:
            text = tr._(
                "%(bank)s is not answering right now. Please try again in a minute.", bank=bank
            )
        lines.append("⚠️ " + text)
    return lines


def none_answered(tr: Tr, unavailable: Sequence[Unavailable]) -> str:
    """A whole message for an answer with nothing in it: which banks did not answer, and why."""
    return tr.message("\n".join(left_out(tr, unavailable, others=False)))


def with_left_out(tr: Tr, text: str, unavailable: Sequence[Unavailable]) -> str:
    """``text`` (a whole message) followed by the banks left out of it."""
    if not unavailable:
        return text
    return text + "\n\n" + tr.message("\n".join(left_out(tr, unavailable, others=True)))


PERIODS = ("7d", "30d", "month", "last_month")


@dataclass(frozen=True)
class TxFilters:
    """A transactions list's filters besides the merchant: a category and amount bounds."""

    category: str | None = None
    amount_min: str | None = None
    amount_max: str | None = None

    @property
    def active(self) -> bool:
        return any((self.category, self.amount_min, self.amount_max))


def period_name(tr: Tr, period: str) -> str:
    names = {
        "7d": tr._("7 days"),
        "30d": tr._("30 days"),
        "month": tr._("This month"),
        "last_month": tr._("Last month"),
    }
    return names.get(period, period)


def transactions(
    tr: Tr,
    page: TransactionPage,
    *,
    account: str,
    period: str,
    merchant: str | None,
    page_no: int,
    accounts: Sequence[str],
    filters: TxFilters | None = None,
) -> tuple[str, Keyboard]:
    head = tr._(
        "<b>Transactions</b> · %(account)s · %(period)s",
        account=tr.esc(account),
        period=period_name(tr, period),
    )
    if merchant:
        head += " · " + tr._("at %(merchant)s", merchant=tr.esc(merchant))
    filters = filters or TxFilters()
    if filters.category:
        head += " · " + category_name(tr, filters.category)
    if filters.amount_min:
        head += " · " + tr._("from %(amount)s", amount=tr.number(Decimal(filters.amount_min)))
    if filters.amount_max:
        head += " · " + tr._("up to %(amount)s", amount=tr.number(Decimal(filters.amount_max)))
    lines = [head]
    if not page.transactions:
        lines.append(tr._("Nothing in this period."))
    for t in page.transactions:
        sign = "+" if t.direction == "in" else "−"
        amount = tr.money(t.amount, t.currency, sign)
        pending = " ⏳" if t.status == "pending" else ""
        who = tr.esc(t.merchant or t.category or "—")
        lines.append(f"{tr.day(t.booking_date)} · {who} · {amount}{pending}")
    if page.totals:
        lines.append("")
        for currency, sums in sorted(page.totals.items()):
            lines.append(
                tr._(
                    "On this page, %(currency)s: in %(in)s, out %(out)s",
                    currency=tr.ltr(currency),
                    **{
                        "in": tr.money(sums.get("in", Decimal(0)), currency),
                        "out": tr.money(sums.get("out", Decimal(0)), currency),
                    },
                )
            )
    nav = []
    if page_no > 0:
        nav.append(Button("◀ " + tr._("Newer"), callback_data="tx:prev"))
    if page.next_cursor:
        nav.append(Button(tr._("Older") + " ▶", callback_data="tx:next"))
    rows = [nav] if nav else []
    rows.append(
        [
            Button(("• " if p == period else "") + period_name(tr, p), callback_data=f"tx:p:{p}")
            for p in PERIODS
        ]
    )
    if len(accounts) > 1:
        rows.append(
            [Button(name, callback_data=f"tx:a:{i}") for i, name in enumerate(accounts)][:4]
        )
    if merchant or filters.active:
        rows.append([Button(tr._("All merchants"), callback_data="tx:all")])
    return tr.message("\n".join(lines)), Keyboard(rows)


def category_name(tr: Tr, category: str) -> str:
    """The broker's spending category in the user's words."""
    names = {
        "groceries": tr._("groceries"),
        "eating_out": tr._("eating out"),
        "transport": tr._("transport"),
        "fuel": tr._("fuel"),
        "shopping": tr._("shopping"),
        "health": tr._("health"),
        "travel": tr._("travel"),
        "utilities": tr._("bills and utilities"),
        "subscriptions": tr._("subscriptions"),
        "entertainment": tr._("entertainment"),
        "cash": tr._("cash"),
        "financial": tr._("financial services"),
        "services": tr._("services"),
        "education": tr._("education"),
        "government": tr._("government"),
        "home": tr._("home"),
        "transfers": tr._("transfers"),
        "other": tr._("other"),
    }
    return names.get(category, tr.esc(category))


def spending(
    tr: Tr,
    result: Spending,
    *,
    start: date,
    end: date,
    merchant: str | None,
    category: str | None,
) -> tuple[str, Keyboard]:
    """One total per currency over the whole period, then the biggest categories."""
    head = tr._("<b>Spending</b> · %(start)s – %(end)s", start=tr.day(start), end=tr.day(end))
    if merchant:
        head += " · " + tr._("at %(merchant)s", merchant=tr.esc(merchant))
    if category:
        head += " · " + category_name(tr, category)
    lines = [head]
    if not result.totals:
        lines.append(tr._("Nothing spent in this period."))
    for total in result.totals:
        lines.append(
            tr.n_(
                "You spent %(amount)s in %(n)s payment.",
                "You spent %(amount)s in %(n)s payments.",
                total.count,
                amount="<b>" + tr.money(total.total, total.currency) + "</b>",
            )
        )
    if not category and len(result.by_category) > 1:
        lines.append("")
        for item in result.by_category[:4]:
            name = category_name(tr, item.category)
            lines.append(f"• {name}: {tr.money(item.total, item.currency)}")
    if result.unavailable:
        lines.append("")
        for gone in result.unavailable:
            lines.append(
                "⚠️ "
                + (
                    tr._("%(bank)s needs you to link it again: /link", bank=tr.esc(gone.bank_name))
                    if gone.reason == "reauthorization_needed"
                    else tr._(
                        "%(bank)s did not answer, so this total leaves it out.",
                        bank=tr.esc(gone.bank_name),
                    )
                )
            )
    elif not result.complete:
        lines.append(
            tr._(
                "There is more history than I can add up at once: this is at least what you spent."
            )
        )
    keyboard = Keyboard([[Button(tr._("Show the payments"), callback_data="sp:list")]])
    return tr.message("\n".join(lines)), keyboard


def support(tr: Tr, banks: Sequence[str]) -> str:
    """How to reach a person at each linked bank, when no link allows a chat here."""
    lines = [
        tr._(
            "None of your links lets me put you through to a person at the bank. "
            "Link a bank with “Chat with the bank's staff” (/link) to talk to them here."
        )
    ]
    for bank in banks:
        lines.append(
            "🏦 "
            + tr._(
                "%(bank)s: use the help section of its app or website, or call the number on "
                "the back of your card.",
                bank="<b>" + tr.esc(bank) + "</b>",
            )
        )
    if not banks:
        lines.append(
            tr._("Your bank's app or website, or the back of your card, has its phone number.")
        )
    return tr.message("\n".join(lines))


def no_transactions(tr: Tr, banks: Sequence[str]) -> str:
    """No linked account shares transactions (a strict bank, or a balances-only link)."""
    text = tr._(
        "None of your accounts at %(banks)s shares transactions with me.",
        banks=", ".join(tr.esc(b) for b in banks),
    )
    return tr.message(
        text + "\n" + tr._("To see transactions, link a bank that shares them with /link.")
    )


def account_label(b: Balance | Account) -> str:
    """A short account name for buttons; no digits, because it is kept in the flow state."""
    return f"{b.bank_name or ''} · {b.nickname or b.account_type or ''}".strip(" ·")


ALERT_BUTTONS = {"it_was_me": "me", "freeze_card": "fz", "unfreeze_card": "uf"}


def alert(
    tr: Tr,
    view: Mapping[str, object],
    answer: str | None = None,
    card_status: str | None = None,
) -> tuple[str, Keyboard | None]:
    """A fraud alert: the payment's story (amount, merchant, time, card), then where it stands
    after the user's answers, and the buttons for what may still be done (from the broker)."""
    amount = view.get("amount")
    currency = view.get("currency")
    money = tr.money(Decimal(str(amount)), str(currency)) if amount and currency else "—"
    lines = [
        "⚠️ " + tr._("<b>Was this you?</b>"),
        tr._(
            "A card payment of %(amount)s at %(merchant)s looks unusual.",
            amount=money,
            merchant=tr.esc(str(view.get("merchant") or "—")),
        ),
    ]
    when = view.get("time")
    if isinstance(when, str):
        try:
            moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            lines.append(tr._("When: %(time)s", time=tr.moment(moment)))
    if view.get("card_last4"):
        lines.append(tr._("Card ending %(last4)s", last4=tr.ltr(str(view["card_last4"]))))
    status = alert_status(tr, answer, card_status)
    if status:
        lines += ["", status]
    alert_id = str(view.get("alert_id"))
    actions = view.get("actions")
    actions = actions if isinstance(actions, list) else []
    labels = {
        "it_was_me": tr._("It was me"),
        "freeze_card": tr._("Not me after all: freeze card")
        if answer == "it_was_me"
        else tr._("Not me: freeze card"),
        "unfreeze_card": tr._("Unfreeze card"),
    }
    row = [
        Button(labels[a], callback_data=f"al:{ALERT_BUTTONS[a]}:{alert_id}")
        for a in ALERT_BUTTONS
        if a in actions
    ]
    return tr.message("\n".join(lines)), Keyboard([row]) if row else None


def alert_status(tr: Tr, answer: str | None, card_status: str | None) -> str:
    """Where an answered alert stands: the card's state wins over the answer's."""
    if card_status == "Frozen":
        return "🧊 " + tr._("Your card is frozen. Unfreeze it here or with /unfreeze.")
    if answer == "freeze_card" or (answer is None and card_status == "Active"):
        return "🔓 " + tr._("Your card is active again.")
    if answer == "it_was_me":
        return "✅ " + tr._("Thanks, marked as yours. Nothing else to do.")
    return ""


def notice(tr: Tr, kind: str, data: Mapping[str, object], bank: str) -> tuple[str, Keyboard | None]:
    b = tr.esc(bank)
    if kind == "consent_authorized":
        return tr.message("✅ " + tr._("%(bank)s is linked. Try /balance.", bank=b)), None
    if kind == "consent_rejected":
        return tr.message(
            tr._("The link to %(bank)s was not approved. Nothing was shared.", bank=b)
        ), None
    if kind == "consent_revoked":
        return tr.message(
            tr._("Your link to %(bank)s has ended; I can no longer read it.", bank=b)
        ), None
    if kind == "consent_expired":
        return tr.message(
            tr._("Your link to %(bank)s expired. Link it again with /link.", bank=b)
        ), None
    if kind == "consent_expiring":
        days = int(str(data.get("days_left", 7)))
        text = tr._(
            "Your link to %(bank)s ends in %(days)s.",
            bank=b,
            days=tr.n_("%(n)s day", "%(n)s days", days),
        )
        bank_id = str(data.get("bank_id", ""))
        keyboard = Keyboard([[Button(tr._("Renew"), callback_data=f"rn:{bank_id}")]])
        return tr.message(text), keyboard
    if kind == "consent_needs_reauthorization":
        text = tr._(
            "%(bank)s no longer accepts your link, so I cannot read it. "
            "Tap Link again to approve it at your bank once more (or use /link).",
            bank=b,
        )
        bank_id = str(data.get("bank_id", ""))
        keyboard = Keyboard([[Button(tr._("Link again"), callback_data=f"rn:{bank_id}")]])
        return tr.message(text), keyboard
    return tr.message(tr._("A message from your bank link: %(kind)s", kind=tr.esc(kind))), None


def status_name(tr: Tr, status: str) -> str:
    names = {
        "awaiting_authorization": tr._("waiting for approval"),
        "authorized": tr._("active"),
        "rejected": tr._("not approved"),
        "revoked": tr._("revoked"),
        "expired": tr._("expired"),
    }
    return names.get(status, status)


def consents(
    tr: Tr, items: Sequence[Consent], names: dict[str, str]
) -> tuple[str, Keyboard | None]:
    live = [c for c in items if c.status in ("authorized", "awaiting_authorization")]
    if not live:
        return tr.message(tr._("You have no active links. Link a bank with /link.")), None
    lines = [tr._("<b>What you shared</b>")]
    rows = []
    for c in live:
        bank = names.get(c.bank_id, c.bank_id)
        scopes = ", ".join(scope_name(tr, s) for s in c.scopes)
        lines.append(f"\n🏦 <b>{tr.esc(bank)}</b> — {status_name(tr, c.status)}")
        lines.append(tr._("Shares: %(scopes)s", scopes=scopes))
        lines.append(tr._("Until %(date)s", date=tr.day(c.expires_at)))
        rows.append(
            [Button(tr._("Revoke %(bank)s", bank=bank), callback_data=f"cs:rv:{c.consent_id}")]
        )
    return tr.message("\n".join(lines)), Keyboard(rows)


def revoke_confirm(tr: Tr, bank: str, consent_id: str) -> tuple[str, Keyboard]:
    text = tr._(
        "Revoke the link to %(bank)s? I will no longer see anything from it.", bank=tr.esc(bank)
    )
    keyboard = Keyboard(
        [
            [Button(tr._("Yes, revoke"), callback_data=f"cs:ok:{consent_id}")],
            [Button(tr._("Keep it"), callback_data="cs:keep")],
        ]
    )
    return tr.message(text), keyboard


def privacy(tr: Tr, subject: str | None, language: str) -> tuple[str, Keyboard]:
    lines = [
        tr._("<b>What I hold about you</b>"),
        "• "
        + tr._(
            "your Telegram id and the broker's handle for you: %(handle)s",
            handle=f"<code>{tr.esc(subject or '—')}</code>",
        ),
        "• " + tr._("your language: %(language)s", language=NAMES.get(language, language)),
        "• " + tr._("where you are in a conversation, and ids of alerts already shown"),
        tr._(
            "No balances, transactions or account numbers: I fetch them when you ask and "
            "forget them."
        ),
    ]
    keyboard = Keyboard(
        [
            [Button(tr._("Access log"), callback_data="pv:log")],
            [Button(tr._("Export my data"), callback_data="pv:export")],
            [Button(tr._("Delete my data"), callback_data="pv:del")],
        ]
    )
    return tr.message("\n".join(lines)), keyboard


def action_name(tr: Tr, action: str) -> str:
    """The broker's audit action ("read.balances") in the user's words."""
    names = {
        "read.balances": tr._("balances read"),
        "read.transactions": tr._("transactions read"),
        "read.accounts": tr._("accounts listed"),
        "read.spending": tr._("spending totals read"),
        "read.insights": tr._("spending by category read"),
        "push.fraud_alert": tr._("fraud alert sent"),
        "alert.it_was_me": tr._("alert answered: it was me"),
        "alert.freeze_card": tr._("alert answered: card frozen"),
        "alert.unfreeze_card": tr._("card unfrozen from an alert"),
        "read.cards": tr._("cards listed"),
        "card.freeze": tr._("card frozen"),
        "card.unfreeze": tr._("card unfrozen"),
        "alert.answer": tr._("alert answer"),
        "consent.create": tr._("link started"),
        "consent.authorize": tr._("link approved at the bank"),
        "consent.revoke": tr._("link revoked"),
        "consent.revoked_at_bank": tr._("link revoked at the bank"),
        "consent.expire": tr._("link expired"),
        "consent.list": tr._("links listed"),
        "access_log.read": tr._("access log read"),
        "subject.create": tr._("handle created"),
        "subject.export": tr._("data exported"),
        "push.dead_letter": tr._("message could not be delivered"),
        "consent.needs_reauth": tr._("link needs approving again"),
        "push.receipt": tr._("receipt sent"),
        "push.receipt_summary": tr._("receipts summary sent"),
        "receipts.on": tr._("receipts turned on"),
        "receipts.off": tr._("receipts turned off"),
        "receipts.read": tr._("receipt settings read"),
        "receipts.set": tr._("receipts switched"),
        "receipts.quiet_hours": tr._("quiet hours changed"),
    }
    return names.get(action, tr.ltr(action))


def access_log(tr: Tr, log: AccessLog, limit: int = 10) -> str:
    lines = [tr._("<b>Access log</b> (newest first)")]
    for e in sorted(log.entries, key=lambda e: e.seq, reverse=True)[:limit]:
        when = tr.moment(datetime.fromisoformat(e.at))
        mark = "✅" if e.outcome == "allowed" else "⛔"
        lines.append(f"{mark} {when} · {action_name(tr, e.action)}")
    lines.append("")
    if log.integrity.ok:
        lines.append(
            "🔗 "
            + tr.n_(
                "Integrity verified: %(n)s entry, unbroken chain.",
                "Integrity verified: %(n)s entries, unbroken chain.",
                log.integrity.checked,
            )
        )
    else:
        lines.append(
            "❗ "
            + tr._(
                "The log's chain is broken at entry %(seq)s.",
                seq=tr.number(log.integrity.first_bad_seq or 0),
            )
        )
    return tr.message("\n".join(lines))


def delete_confirm(tr: Tr) -> tuple[str, Keyboard]:
    text = tr._(
        "Delete everything? Every bank link is revoked and I forget you. This cannot be undone."
    )
    keyboard = Keyboard(
        [
            [Button(tr._("Yes, delete everything"), callback_data="pv:delok")],
            [Button(tr._("Keep it"), callback_data="pv:keep")],
        ]
    )
    return tr.message(text), keyboard


def problem(tr: Tr, error: BrokerError) -> str:
    """A broker failure as a clear, localized message."""
    code = error.code
    if code in ("broker_unavailable", "broker_timeout", "broker_bad_answer"):
        text = tr._("I can't reach the bank link service right now. Please try again shortly.")
    elif code in ("bank_unavailable", "bank_timeout", "deadline_exceeded"):
        text = tr._("Your bank is not answering right now. Please try again in a minute.")
    elif code == "bank_refused":
        text = tr._("Your bank refused this request.")
    elif code == "rate_limited":
        seconds = int(error.retry_after or 60)
        text = tr.n_(
            "That's a lot of requests. Try again in %(n)s second.",
            "That's a lot of requests. Try again in %(n)s seconds.",
            seconds,
        )
    elif code in ("consent_not_authorized", "consent_expired"):
        text = tr._("That bank link has ended. Link it again with /link.")
    elif code == "scope_not_consented":
        text = tr._("You did not share that. Link again with /link to add it.")
    elif code == "already_answered":
        text = tr._("This alert was already answered.")
    elif error.status == 404:
        text = tr._("I couldn't find that any more.")
    else:
        text = tr._("Something went wrong on my side. Please try again.")
    return tr.message("⚠️ " + text)


def card_number_warning(tr: Tr) -> str:
    """After deleting a message that held a full card number."""
    return tr.message(
        "🛑 "
        + tr._(
            "I deleted your message: it held a full card number. Never share a card number "
            "in a chat, not even with your bank's staff; they will never ask for it."
        )
    )


def support_started(tr: Tr, bank: str) -> str:
    return tr.message(
        "🏦 "
        + tr._(
            "You're now writing to a person at %(bank)s. Type your message; I'll pass on what "
            "you write and show their answers here. Commands like /balance still work.",
            bank="<b>" + tr.esc(bank) + "</b>",
        )
        + "\n"
        + tr._("Never send card numbers or passwords.")
    )


def support_sent(tr: Tr, bank: str) -> str:
    return tr.message(
        "✉️ " + tr._("Sent to %(bank)s. Someone will answer here shortly.", bank=tr.esc(bank))
    )


def support_queued(tr: Tr, bank: str, sent: SupportSent) -> str:
    """Nobody at the bank now: the message is kept, and when someone will answer."""
    assert sent.expected_reply_at is not None
    when = tr.moment(sent.expected_reply_at)
    if sent.outside_hours:
        text = tr._(
            "%(bank)s's team is away now. Your message is kept, and someone will answer here "
            "from %(when)s.",
            bank=tr.esc(bank),
            when=when,
        )
    else:
        text = tr._(
            "Everyone at %(bank)s is busy. Your message is kept, and someone will answer here "
            "by %(when)s.",
            bank=tr.esc(bank),
            when=when,
        )
    return tr.message("🕘 " + text)


def support_ended(tr: Tr) -> str:
    return tr.message(tr._("The chat with your bank has ended. I'm back: ask me anything."))


def support_rated(tr: Tr, rating: int) -> str:
    stars = "★" * rating + "☆" * (5 - rating)
    return tr.message(tr._("Thank you for rating the chat: %(stars)s", stars=stars))


def _free(tr: Tr, text: str) -> str:
    """Words from a person (any script), safe for HTML; in Arabic each line is one first-strong
    isolate, so an English answer reads left to right and an Arabic one right to left."""
    escaped = html.escape(text, quote=False)
    if not tr.rtl:
        return escaped
    return "\n".join(f"{FSI}{line}{PDI}" if line else line for line in escaped.split("\n"))


def support_message(
    tr: Tr, bank: str, message: Mapping[str, object]
) -> tuple[str, Keyboard | None]:
    """A message from the bank's side: joined, a representative's words, or left (then a
    rating keyboard)."""
    kind = str(message.get("kind", "message"))
    name = _free(tr, str(message.get("display_name") or tr._("An agent")))
    b = tr.esc(bank)
    if kind == "joined":
        text = "👤 " + tr._(
            "%(name)s from %(bank)s joined the chat.", name=f"<b>{name}</b>", bank=b
        )
        return tr.message(text), None
    if kind == "left":
        conversation = str(message.get("conversation", ""))
        text = tr._("%(name)s left the chat. I'm back: ask me anything.", name=f"<b>{name}</b>")
        text += "\n" + tr._("How was your chat with %(bank)s?", bank=b)
        stars = [Button("★" * n, callback_data=f"hs:r:{n}:{conversation}") for n in range(1, 6)]
        return tr.message("👋 " + text), Keyboard([stars[:3], stars[3:]])
    label = tr._("%(name)s · %(bank)s representative", name=name, bank=b)
    body = _free(tr, str(message.get("text") or ""))
    return tr.message(f"🏦 <b>{label}</b>\n{body}"), None
