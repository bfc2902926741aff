"""What is not a banking question: thanks and greetings, how to reach the bank, money transfers
(not something chat can do), and mistyped commands."""

from __future__ import annotations

from rapidfuzz import fuzz, process
from telegram import Update

from bot.context import ChatContext, texts
from bot.handlers import basics
from bot.handlers.common import say

# what /help lists; a mistyped command is read as the nearest of these
COMMANDS = (
    "start",
    "help",
    "link",
    "balance",
    "transactions",
    "consents",
    "privacy",
    "language",
    "support",
    "receipts",
    "quiet",
)
COMMAND_MIN = 70  # rapidfuzz ratio for "/balanse" to be "/balance"


async def smalltalk(update: Update, context: ChatContext, topic: str | None) -> None:
    """Thanks, a greeting, a goodbye: a polite answer and what I can do."""
    t = await texts(update, context)
    if topic == "thanks":
        text = t._("You're welcome! Ask me about your balance or your spending any time.")
    elif topic == "bye":
        text = t._("Goodbye! I'm here whenever you need me.")
    else:
        text = t._("Hello! Ask me about your balance or your spending, or send /help.")
    await say(update, t.message(text), edit=False)


async def transfer(update: Update, context: ChatContext) -> None:
    """Money can't be moved from the chat: say so, and where it can be."""
    t = await texts(update, context)
    text = t._(
        "I can't move money: transfers and payments are not possible in this chat. "
        "Please use your bank's own app or website. Here I can show balances and spending."
    )
    await say(update, t.message(text), edit=False)


def nearest_command(typed: str) -> str | None:
    """The command ``typed`` ("/balanse@chatbank_bot") most likely meant, or None."""
    name = typed.lstrip("/").split("@", 1)[0].split()[0].casefold() if typed.strip("/ ") else ""
    if not name:
        return None
    found = process.extractOne(name, COMMANDS, scorer=fuzz.ratio, score_cutoff=COMMAND_MIN)
    return f"/{found[0]}" if found else None


async def unknown_command(update: Update, context: ChatContext) -> None:
    """A command I don't know: "did you mean /balance?", or the list of the ones I do."""
    message = update.effective_message
    guess = nearest_command(message.text or "") if message else None
    if guess is None:
        await basics.help_command(update, context)
        return
    t = await texts(update, context)
    text = t._("Did you mean %(command)s?", command=guess) + " " + t._("/help lists everything.")
    await say(update, t.message(text), edit=False)
