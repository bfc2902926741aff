"""The agent console: where the bank's staff answer customers who asked for a person in the chat.

``/banks/{bank_id}/agent``: a staff login of its own (never a customer's), the queue (waiting,
mine, others', recently closed), and a conversation page with the customer's bank-side profile
beside it (the bank's own records: it stays here), canned answers, a typing indicator (the
page posts "typing" while the agent writes; the app shows it as Telegram's "typing…") and
closing (the app then asks the customer for a rating). New customer messages appear by polling
a small JSON view every second and a half. Every form carries the session's CSRF token.

What an agent writes is masked by :mod:`bank_mock.dlp` before it is stored or sent: the agent
sees the masked text and a note saying so. Internal notes never leave the bank.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bank_mock import support
from bank_mock.errors import BankError, read_form
from bank_mock.i18n import page_text
from bank_mock.identifiers import mask_pan
from bank_mock.keys import CLOCK, SETTINGS, bank_of
from bank_mock.pages import language_of, render
from bank_mock.state import BankState
from bank_mock.support import CANNED, DESK, Conversation, Staff

COOKIE = "bank_staff"
routes = web.RouteTableDef()
TYPING_EVERY_S = 4  # at most one typing event per conversation this often


def _base(bank: BankState) -> str:
    return f"/banks/{bank.profile.bank_id}/agent"


def _page(request: web.Request, bank: BankState, template: str, **context: Any) -> web.Response:
    """A console page: the bank's page headers, plus its one inline script (by nonce)."""
    nonce = secrets.token_urlsafe(12)
    response = render(request, bank, template, nonce=nonce, base=_base(bank), **context)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    return response


def _staff(request: web.Request, bank: BankState) -> tuple[Staff, str] | None:
    return request.app[DESK].session(
        request.cookies.get(COOKIE, ""), bank.profile.bank_id, request.app[CLOCK]()
    )


def _login_page(
    request: web.Request, bank: BankState, error: str | None, status: int
) -> web.Response:
    return _page(request, bank, "agent_login.html", error=error, status=status)


async def _checked(request: web.Request, bank: BankState) -> tuple[Staff, dict[str, str]]:
    """The signed-in agent and the posted form, its CSRF token checked."""
    who = _staff(request, bank)
    if who is None:
        raise BankError(401, "Sign in to the agent console", path="session")
    form = {k: v for k, v in (await read_form(request)).items() if isinstance(v, str)}
    token = form.get("csrf") or request.headers.get("X-CSRF-Token") or ""
    if not hmac.compare_digest(token.encode(), who[1].encode()):
        raise BankError(403, "This form has expired. Reload the page.", path="csrf")
    return who[0], form


def _conversation(request: web.Request, bank: BankState) -> Conversation:
    conv = request.app[DESK].conversations.get(request.match_info["conversation_id"])
    if conv is None or conv.bank_id != bank.profile.bank_id:
        raise BankError(404, "No such conversation", path="conversation_id")
    return conv


@routes.get("/banks/{bank_id}/agent")
async def console(request: web.Request) -> web.Response:
    """The queue, or the staff login."""
    bank = bank_of(request)
    who = _staff(request, bank)
    if who is None:
        return _login_page(request, bank, None, 200)
    staff, csrf = who
    desk, now = request.app[DESK], request.app[CLOCK]()
    convs = desk.of_bank(bank.profile.bank_id)
    recent = now - timedelta(days=1)
    return _page(
        request,
        bank,
        "agent_queue.html",
        staff=staff,
        csrf=csrf,
        waiting=[c for c in convs if c.status == "waiting"],
        mine=[c for c in convs if c.status == "active" and c.agent_id == staff.staff_id],
        others=[c for c in convs if c.status == "active" and c.agent_id != staff.staff_id],
        closed=[c for c in convs if c.status == "closed" and (c.closed_at or now) >= recent][-10:],
        customer_name=lambda cid: bank.customers[cid].full_name if cid in bank.customers else cid,
        last_text=lambda c: _last_customer_text(desk, c),
        open_now=support.is_open(request.app[SETTINGS], bank.profile.timezone, now),
    )


def _last_customer_text(desk: support.Desk, conv: Conversation) -> str:
    for msg in reversed(desk.messages.get(conv.conversation_id, [])):
        if msg.role == "customer":
            return msg.text[:80]
    return ""


@routes.post("/banks/{bank_id}/agent/login")
async def login(request: web.Request) -> web.StreamResponse:
    bank = bank_of(request)
    form = await read_form(request)
    username, password = form.get("username"), form.get("password")
    token = None
    if isinstance(username, str) and isinstance(password, str):
        token = request.app[DESK].login(
            bank.profile.bank_id, username, password, request.app[CLOCK]()
        )
    if token is None:
        t = page_text(language_of(request))
        return _login_page(request, bank, t._("Wrong username or password."), 401)
    response = web.HTTPSeeOther(_base(bank))
    response.set_cookie(COOKIE, token, path=_base(bank), httponly=True, samesite="Strict")
    raise response


@routes.post("/banks/{bank_id}/agent/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    bank = bank_of(request)
    await _checked(request, bank)
    request.app[DESK].sessions.pop(request.cookies.get(COOKIE, ""), None)
    response = web.HTTPSeeOther(_base(bank))
    response.del_cookie(COOKIE, path=_base(bank))
    raise response


def _profile(bank: BankState, conv: Conversation) -> dict[str, Any]:
    """The customer as the bank knows them (shown to staff only; it never leaves the bank)."""
    customer = bank.customers.get(conv.customer_id)
    if customer is None:
        return {}
    consent = bank.consents.get(conv.consent_id)
    accounts = []
    for account_id in customer.account_ids:
        account = bank.accounts[account_id]
        cards = [bank.cards[c] for c in account.card_ids]
        accounts.append(
            {
                "nickname": account.nickname,
                "kind": account.kind.value,
                "identification": account.identification,
                "currency": account.currency,
                "shared": bool(consent and account_id in consent.account_ids),
                "cards": [f"{mask_pan(c.pan)} · {c.status.value}" for c in cards],
            }
        )
    return {
        "customer_id": customer.customer_id,
        "name": customer.full_name,
        "email": customer.email,
        "phone": customer.phone,
        "address": customer.address,
        "born": customer.date_of_birth.isoformat(),
        "accounts": accounts,
    }


def _message_json(msg: support.Message) -> dict[str, Any]:
    return {
        "id": msg.message_id,
        "role": msg.role,
        "text": msg.text,
        "at": msg.at.strftime("%H:%M"),
        "agent_name": msg.agent_name,
        "masked": bool(msg.masked),
    }


@routes.get("/banks/{bank_id}/agent/conversations/{conversation_id}")
async def conversation(request: web.Request) -> web.Response:
    bank = bank_of(request)
    who = _staff(request, bank)
    if who is None:
        return _login_page(request, bank, None, 401)
    staff, csrf = who
    conv = _conversation(request, bank)
    messages = [_message_json(m) for m in request.app[DESK].messages.get(conv.conversation_id, [])]
    return _page(
        request,
        bank,
        "agent_conversation.html",
        staff=staff,
        csrf=csrf,
        conv=conv,
        messages=messages,
        profile=_profile(bank, conv),
        canned=CANNED,
        notice=request.query.get("notice", ""),
    )


def _back(bank: BankState, conv: Conversation, notice: str = "") -> web.HTTPSeeOther:
    url = f"{_base(bank)}/conversations/{conv.conversation_id}"
    return web.HTTPSeeOther(url + (f"?notice={notice}" if notice else ""))


def _join(request: web.Request, conv: Conversation, staff: Staff, now: datetime) -> None:
    """``staff`` takes the conversation; the customer sees that they joined."""
    if conv.status == "closed":
        raise BankError(409, "This conversation is closed", path="conversation_id")
    if conv.agent_id == staff.staff_id:
        return
    if conv.status == "active" and conv.agent_id is not None:
        raise BankError(409, "Another agent has this conversation", path="conversation_id")
    conv.status, conv.agent_id, conv.agent_name = "active", staff.staff_id, staff.display_name
    request.app[DESK].save(conv)
    support.push(request.app, conv, "joined")


@routes.post("/banks/{bank_id}/agent/conversations/{conversation_id}/assign")
async def assign(request: web.Request) -> web.StreamResponse:
    """Take the conversation (the customer is told who joined)."""
    bank = bank_of(request)
    staff, _ = await _checked(request, bank)
    conv = _conversation(request, bank)
    _join(request, conv, staff, request.app[CLOCK]())
    raise _back(bank, conv)


@routes.post("/banks/{bank_id}/agent/conversations/{conversation_id}/messages")
async def send(request: web.Request) -> web.StreamResponse:
    """Answer the customer (masked first), or keep an internal note (``internal=1``)."""
    bank = bank_of(request)
    staff, form = await _checked(request, bank)
    conv = _conversation(request, bank)
    text = form.get("text", "").strip()
    if not text or len(text) > support.MAX_TEXT:
        raise BankError(400, f"text must be 1 to {support.MAX_TEXT} characters", path="text")
    desk, now = request.app[DESK], request.app[CLOCK]()
    if form.get("internal") == "1":
        desk.add(support.new_message(conv, "note", text, now, agent_name=staff.display_name))
        raise _back(bank, conv)
    _join(request, conv, staff, now)
    msg = desk.add(support.new_message(conv, "agent", text, now, agent_name=staff.display_name))
    support.push(request.app, conv, "message", msg)
    desk.typing_sent.pop(conv.conversation_id, None)
    raise _back(bank, conv, "masked" if msg.masked else "")


@routes.post("/banks/{bank_id}/agent/conversations/{conversation_id}/typing")
async def typing(request: web.Request) -> web.Response:
    """The agent is writing: the customer's chat shows "typing…" (throttled)."""
    bank = bank_of(request)
    staff, _ = await _checked(request, bank)
    conv = _conversation(request, bank)
    desk, now = request.app[DESK], request.app[CLOCK]()
    last = desk.typing_sent.get(conv.conversation_id)
    sent = False
    mine = conv.status == "active" and conv.agent_id == staff.staff_id
    if mine and (last is None or now - last >= timedelta(seconds=TYPING_EVERY_S)):
        desk.typing_sent[conv.conversation_id] = now
        support.push(request.app, conv, "typing")
        sent = True
    return web.json_response({"sent": sent})


@routes.post("/banks/{bank_id}/agent/conversations/{conversation_id}/close")
async def close(request: web.Request) -> web.StreamResponse:
    """End the conversation: the customer sees the agent left and is asked for a rating."""
    bank = bank_of(request)
    staff, _ = await _checked(request, bank)
    conv = _conversation(request, bank)
    if conv.status != "closed":
        if conv.agent_id not in (None, staff.staff_id):
            raise BankError(409, "Another agent has this conversation", path="conversation_id")
        if conv.agent_name is None:
            conv.agent_id, conv.agent_name = staff.staff_id, staff.display_name
        now = request.app[CLOCK]()
        conv.status, conv.closed_at, conv.closed_by = "closed", now, "agent"
        request.app[DESK].save(conv)
        support.push(request.app, conv, "left")
    raise web.HTTPSeeOther(_base(bank))


@routes.get("/banks/{bank_id}/agent/conversations/{conversation_id}/poll")
async def poll(request: web.Request) -> web.Response:
    """Messages after ``?after=<count>`` and the conversation's status (the page's polling)."""
    bank = bank_of(request)
    if _staff(request, bank) is None:
        raise BankError(401, "Sign in to the agent console", path="session")
    conv = _conversation(request, bank)
    raw = request.query.get("after", "0")
    after = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 0
    messages = request.app[DESK].messages.get(conv.conversation_id, [])
    return web.json_response(
        {
            "status": conv.status,
            "count": len(messages),
            "messages": [_message_json(m) for m in messages[after:]],
            "rating": conv.rating,
        }
    )


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
