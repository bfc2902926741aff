"""Talk to a person at the bank (an extension outside OBIE): the bank's side of the support chat.

A customer's app (through the consent broker) posts messages under a consent granted the
``support`` OAuth scope; OBIE has no permission for a conversation, so the scope is the bank's
extension, like ``cards``. The bank opens one conversation per consent at a time, queues it for
its staff (:mod:`bank_mock.agent` is their console), and tells the app what happens next:
an agent joined, wrote, is typing, left. Those go out as signed Security Event Tokens
(``urn:chatbank:events:support``), like fraud alerts, carrying the bank's message id.

Only the conversation's handle, the agent's display name and the message text ever leave the
bank, and the text only after :mod:`bank_mock.dlp` masked card and account numbers. The
customer's profile, the staff ids and internal notes stay here.

Outside business hours (``BANK_SUPPORT_HOURS`` on ``BANK_SUPPORT_DAYS`` in the bank's own time
zone), or with no agent at the console, the message is kept and the answer says when someone
will reply. Everything is written through to the bank's SQLite (``BANK_DATA_DIR``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel, Field

from bank_mock import dlp
from bank_mock.auth.grants import require_grant
from bank_mock.disk import Disk
from bank_mock.errors import BankError
from bank_mock.keys import BANKS, CLOCK, EVENTS, GRANTS, SETTINGS, bank_of
from bank_mock.models import Consent
from bank_mock.obie.serialize import iso
from bank_mock.sandbox import parse_body
from bank_mock.settings import BankSettings
from bank_mock.state import BankState

BASE = "/banks/{bank_id}/support/v1"
SCOPE = "support"
SUPPORT_EVENT = "urn:chatbank:events:support"
CONVERSATION, MESSAGE = "support_conversation", "support_message"
PRESENT_S = 60  # an agent whose console asked for news this recently is at the console
MAX_TEXT = 2000
SESSION = timedelta(hours=8)  # a staff sign-in lasts a working day
routes = web.RouteTableDef()

# staff of every bank: (username, display name); the password is BANK_STAFF_PASSWORD
STAFF: dict[str, tuple[tuple[str, str], ...]] = {
    "northwind": (("agent1", "Sarah"), ("agent2", "James")),
    "libertas": (("agent1", "Maria"), ("agent2", "Dan")),
    "wisla": (("agent1", "Katarzyna"), ("agent2", "Piotr")),
    "nakheel": (("agent1", "ليلى"), ("agent2", "Omar")),
}

CANNED: tuple[str, ...] = (
    "Hello, thank you for contacting us. How can I help?",
    "I can see your account here. One moment while I check.",
    "For your safety, never share your full card number or passwords in a chat.",
    "Is there anything else I can help you with?",
)


@dataclass(slots=True)
class Staff:
    staff_id: str  # internal; never leaves the bank
    bank_id: str
    username: str
    display_name: str  # what the customer sees


@dataclass(slots=True)
class Conversation:
    conversation_id: str
    bank_id: str
    consent_id: str
    customer_id: str
    opened_at: datetime
    status: str = "waiting"  # waiting → active → closed
    language: str = "en"
    agent_id: str | None = None
    agent_name: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None  # "agent" | "customer"
    rating: int | None = None


@dataclass(slots=True)
class Message:
    message_id: str
    conversation_id: str
    role: str  # customer | agent | note (internal, never leaves) | system
    text: str  # as stored: masked
    at: datetime
    agent_name: str | None = None
    masked: list[str] = field(default_factory=list)  # what DLP masked in it
    client_message_id: str | None = None  # the app's id, for retries


class Desk:
    """Every bank's conversations, staff and who is at the console (app-wide)."""

    def __init__(self, settings: BankSettings, banks: dict[str, BankState], disk: Disk | None):
        self.settings = settings
        self.disk = disk
        self.conversations: dict[str, Conversation] = {}
        self.messages: dict[str, list[Message]] = {}
        self.staff: dict[str, Staff] = {}
        self.sessions: dict[str, tuple[str, str, datetime]] = {}  # token → staff, csrf, expiry
        self.seen: dict[str, datetime] = {}  # staff id → last console request
        self.typing_sent: dict[str, datetime] = {}  # conversation → last typing event
        for bank_id in banks:
            for i, (username, name) in enumerate(STAFF.get(bank_id, STAFF["northwind"]), 1):
                sid = f"stf-{bank_id}-{i}"
                self.staff[sid] = Staff(sid, bank_id, username, name)
        if disk is not None:
            for _, conv in disk.load(CONVERSATION, Conversation):
                self.conversations[conv.conversation_id] = conv
            for _, msg in disk.load(MESSAGE, Message):
                self.messages.setdefault(msg.conversation_id, []).append(msg)

    # --- records -------------------------------------------------------------------------
    def save(self, conv: Conversation) -> None:
        if self.disk is not None:
            self.disk.put(CONVERSATION, conv.conversation_id, conv)

    def add(self, msg: Message) -> Message:
        self.messages.setdefault(msg.conversation_id, []).append(msg)
        if self.disk is not None:
            self.disk.put(MESSAGE, msg.message_id, msg)
        return msg

    def open_for(self, bank_id: str, consent_id: str) -> Conversation | None:
        for conv in self.conversations.values():
            mine = conv.bank_id == bank_id and conv.consent_id == consent_id
            if mine and conv.status != "closed":
                return conv
        return None

    def of_bank(self, bank_id: str) -> list[Conversation]:
        return sorted(
            (c for c in self.conversations.values() if c.bank_id == bank_id),
            key=lambda c: c.opened_at,
        )

    # --- staff ---------------------------------------------------------------------------
    def login(self, bank_id: str, username: str, password: str, now: datetime) -> str | None:
        self.sessions = {k: s for k, s in self.sessions.items() if now - s[2] <= SESSION}
        expected = self.settings.staff_password.encode()
        ok = secrets.compare_digest(password.encode(), expected)
        for staff in self.staff.values():
            if staff.bank_id == bank_id and staff.username == username and ok:
                token = secrets.token_urlsafe(24)
                self.sessions[token] = (staff.staff_id, secrets.token_urlsafe(16), now)
                self.seen[staff.staff_id] = now
                return token
        return None

    def session(self, token: str, bank_id: str, now: datetime) -> tuple[Staff, str] | None:
        found = self.sessions.get(token)
        if found is None or now - found[2] > SESSION:
            return None
        staff = self.staff[found[0]]
        if staff.bank_id != bank_id:
            return None
        self.seen[staff.staff_id] = now
        return staff, found[1]

    def agents_free(self, bank_id: str, now: datetime, most: int) -> int:
        """Agents at the console (a request in the last minute) with fewer than ``most``
        conversations of their own open."""
        busy: dict[str, int] = {}
        for conv in self.conversations.values():
            if conv.status == "active" and conv.agent_id is not None:
                busy[conv.agent_id] = busy.get(conv.agent_id, 0) + 1
        return sum(
            1
            for sid, at in self.seen.items()
            if self.staff[sid].bank_id == bank_id
            and now - at <= timedelta(seconds=PRESENT_S)
            and busy.get(sid, 0) < most
        )


DESK = web.AppKey("support_desk", Desk)


# --- business hours ----------------------------------------------------------------------
def _hours(settings: BankSettings) -> tuple[time, time, frozenset[int]]:
    start, _, end = settings.support_hours.partition("-")
    first, _, last = settings.support_days.partition("-")
    days = frozenset(range(int(first), int(last or first) + 1))
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip()), days


def is_open(settings: BankSettings, zone: str, now: datetime) -> bool:
    start, end, days = _hours(settings)
    local = now.astimezone(ZoneInfo(zone))
    return local.isoweekday() in days and start <= local.time() < end


def next_opening(settings: BankSettings, zone: str, now: datetime) -> datetime:
    """When the desk next opens after ``now`` (``now`` itself when it is open)."""
    if is_open(settings, zone, now):
        return now
    start, _, days = _hours(settings)
    local = now.astimezone(ZoneInfo(zone))
    for ahead in range(8):
        day = (local + timedelta(days=ahead)).date()
        opening = datetime.combine(day, start, tzinfo=ZoneInfo(zone))
        if day.isoweekday() in days and opening > local:
            return opening.astimezone(now.tzinfo)
    return now + timedelta(days=1)


def expected_reply(app: web.Application, bank: BankState, now: datetime) -> datetime | None:
    """When someone will answer: None if an agent is free now."""
    settings = app[SETTINGS]
    if not is_open(settings, bank.profile.timezone, now):
        return next_opening(settings, bank.profile.timezone, now)
    free = app[DESK].agents_free(bank.profile.bank_id, now, settings.support_chats_per_agent)
    if free == 0:
        return now + timedelta(minutes=settings.support_wait_minutes)
    return None


# --- what goes to the app ----------------------------------------------------------------
def push(app: web.Application, conv: Conversation, kind: str, msg: Message | None = None) -> None:
    """Tell the conversation's app (signed SET): joined, message, typing, left."""
    bank = app[BANKS][conv.bank_id]
    consent = bank.consents.get(conv.consent_id)
    if consent is None:
        return
    payload: dict[str, Any] = {
        "consent_id": conv.consent_id,
        "conversation_id": conv.conversation_id,
        "type": kind,
        "agent_name": conv.agent_name,
        "sent_at": iso(msg.at if msg else app[CLOCK]()),
    }
    if msg is not None:
        payload["message_id"] = msg.message_id
        if kind == "message":
            payload["text"] = msg.text  # masked when it was stored
    app[EVENTS].support_event(bank, consent, payload)


def new_message(conv: Conversation, role: str, text: str, now: datetime, **kw: Any) -> Message:
    masked = dlp.mask(text)
    return Message(
        message_id="msg-" + secrets.token_hex(8),
        conversation_id=conv.conversation_id,
        role=role,
        text=masked.text,
        at=now,
        masked=list(masked.found),
        **kw,
    )


# --- the app's API -----------------------------------------------------------------------
def _consent(request: web.Request, bank: BankState) -> Consent:
    now = request.app[CLOCK]()
    grant = require_grant(
        request, request.app[GRANTS], bank, scope=SCOPE, consent_bound=True, now=now
    )
    assert grant.consent_id is not None
    return bank.consents[grant.consent_id]


def _conversation(request: web.Request, bank: BankState, consent: Consent) -> Conversation:
    conv = request.app[DESK].conversations.get(request.match_info["conversation_id"])
    if conv is None or (conv.bank_id, conv.consent_id) != (
        bank.profile.bank_id,
        consent.consent_id,
    ):
        raise BankError(404, "Conversation not found for this consent", path="ConversationId")
    return conv


class CustomerMessage(BaseModel):
    Text: str = Field(min_length=1, max_length=MAX_TEXT)
    MessageId: str | None = Field(default=None, min_length=1, max_length=64)
    Language: str | None = Field(default=None, pattern=r"^(en|ar|pl)$")


def _conversation_json(conv: Conversation) -> dict[str, Any]:
    return {
        "ConversationId": conv.conversation_id,
        "Status": conv.status.capitalize(),
        "AgentName": conv.agent_name,
        "OpenedDateTime": iso(conv.opened_at),
        "Rating": conv.rating,
    }


@routes.post(BASE + "/messages")
async def customer_message(request: web.Request) -> web.Response:
    """The customer writes: into the open conversation under this consent, or a new one."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    body: CustomerMessage = parse_body(CustomerMessage, await request.read())
    if not body.Text.strip():
        raise BankError(400, "Text: must not be blank", path="Text")
    desk, now = request.app[DESK], request.app[CLOCK]()
    conv = desk.open_for(bank.profile.bank_id, consent.consent_id)
    opened = conv is None
    if conv is None:
        conv = Conversation(
            conversation_id="cnv-" + secrets.token_hex(8),
            bank_id=bank.profile.bank_id,
            consent_id=consent.consent_id,
            customer_id=consent.customer_id or "",
            opened_at=now,
            language=body.Language or "en",
        )
        desk.conversations[conv.conversation_id] = conv
        desk.save(conv)
    existing = next(
        (
            m
            for m in desk.messages.get(conv.conversation_id, [])
            if body.MessageId and m.client_message_id == body.MessageId
        ),
        None,
    )
    msg = existing or desk.add(
        new_message(conv, "customer", body.Text, now, client_message_id=body.MessageId)
    )
    expected = expected_reply(request.app, bank, now) if conv.status == "waiting" else None
    data = {
        **_conversation_json(conv),
        "MessageId": msg.message_id,
        "Opened": opened and existing is None,
        "ExpectedReplyDateTime": iso(expected) if expected else None,
        "OutsideBusinessHours": not is_open(request.app[SETTINGS], bank.profile.timezone, now),
    }
    return web.json_response({"Data": data}, status=201 if existing is None else 200)


class Rating(BaseModel):
    Rating: int = Field(ge=1, le=5)


@routes.post(BASE + "/conversations/{conversation_id}/rating")
async def rate(request: web.Request) -> web.Response:
    """The customer's 1-5 rating of a closed conversation (the latest answer counts)."""
    bank = bank_of(request)
    conv = _conversation(request, bank, _consent(request, bank))
    body: Rating = parse_body(Rating, await request.read())
    if conv.status != "closed":
        raise BankError(409, "Only a closed conversation can be rated", path="ConversationId")
    conv.rating = body.Rating
    request.app[DESK].save(conv)
    return web.json_response({"Data": _conversation_json(conv)})


@routes.post(BASE + "/conversations/{conversation_id}/close")
async def close(request: web.Request) -> web.Response:
    """The customer ends the conversation (idempotent)."""
    bank = bank_of(request)
    conv = _conversation(request, bank, _consent(request, bank))
    desk, now = request.app[DESK], request.app[CLOCK]()
    if conv.status != "closed":
        conv.status, conv.closed_at, conv.closed_by = "closed", now, "customer"
        desk.save(conv)
        left = Message("msg-" + secrets.token_hex(8), conv.conversation_id, "system", "", now)
        left.text = "customer_left"
        desk.add(left)
    return web.json_response({"Data": _conversation_json(conv)})


def setup(app: web.Application, disk: Disk | None) -> None:
    app[DESK] = Desk(app[SETTINGS], app[BANKS], disk)
    app.router.add_routes(routes)
