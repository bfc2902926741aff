"""The bot's tables. By design they hold no financial value: a Telegram user id, the broker's
opaque subject handle, a language, conversation state (which step of a flow, which bank and
scopes were picked) and ids used to refuse duplicates. A test scans the database to prove it."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class ChatUser(SQLModel, table=True):
    """A Telegram user and the broker's opaque handle for them."""

    __tablename__ = "chat_users"
    telegram_user_id: int = Field(primary_key=True, sa_type=BigInteger)
    chat_id: int = Field(sa_type=BigInteger)
    subject_id: str | None = Field(default=None, max_length=64, index=True, unique=True)
    language: str | None = Field(default=None, max_length=5)  # chosen with /language
    time_zone: str | None = Field(default=None, max_length=64)  # IANA name, set with /timezone


class ConversationState(SQLModel, table=True):
    """A ConversationHandler's current state for one key (chat, user)."""

    __tablename__ = "conversation_states"
    name: str = Field(primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=80)
    state: str = Field(max_length=40)


class UserState(SQLModel, table=True):
    """A user's flow state as JSON (picked bank, scopes, list position), never a value."""

    __tablename__ = "user_states"
    telegram_user_id: int = Field(primary_key=True, sa_type=BigInteger)
    data: str = Field(max_length=4000)


class SeenDelivery(SQLModel, table=True):
    """Something already handled, keyed ``delivery:<id>``, ``nonce:<nonce>`` or
    ``alert:<alert_id>``: replays and duplicate alerts are refused. Old rows are pruned."""

    __tablename__ = "seen_deliveries"
    id: str = Field(primary_key=True, max_length=120)
    seen_at: int = Field(index=True, sa_type=BigInteger)  # Unix seconds


class ReceiptMessage(SQLModel, table=True):
    """Which chat message shows a receipt message (``<source>:<message key>``), so a payment
    that books or is reversed edits it. Ids only: the receipt itself is never stored here."""

    __tablename__ = "receipt_messages"
    key: str = Field(primary_key=True, max_length=120)
    chat_id: int = Field(index=True, sa_type=BigInteger)
    message_id: int = Field(sa_type=BigInteger)
    shown_at: int = Field(index=True, sa_type=BigInteger)  # Unix seconds; pruned with the rest
