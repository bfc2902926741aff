"""Multi-bank and strict-bank flows through localchat, in English, Arabic and Polish: only what
the consent and the bank policy allow is offered, spending totals a whole period, a bank named
in free text narrows the answer, and small talk, support, transfers and typos get answers."""

from __future__ import annotations

from decimal import Decimal

from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, buttons
from tests.bot.test_conversations import link_bank


async def test_transactions_skip_a_strict_bank_and_open_the_one_that_shares_them(
    system: System,
) -> None:
    await link_bank(system, ALICE, "wisla", drop=("fraud_alerts",))
    await link_bank(system, ALICE, "libertas")
    listed = await system.say(ALICE, "/transactions", lambda t: "Transactions" in t)
    assert "Libertas" in listed["text"] and "Wisła" not in listed["text"]
    assert "did not share" not in listed["text"]
    labels = [b["text"] for b in buttons(listed) if b["callback_data"].startswith("tx:a:")]
    assert all("Wisła" not in label for label in labels)
    other = [b for b in buttons(listed) if b["callback_data"].startswith("tx:a:")]
    if other:  # switching accounts stays at Libertas
        moved = await system.press(
            ALICE, listed, other[-1]["callback_data"], lambda t: "Transactions" in t
        )
        assert "Libertas" in moved["text"]
    wisla = await system.say(ALICE, "/transactions wisla", lambda t: "Wisła" in t)
    assert "shares transactions" in wisla["text"] and "at wisla" not in wisla["text"]
    only = await system.say(ALICE, "balance at libertas", lambda t: "balances" in t.lower())
    assert "Libertas" in only["text"] and "Wisła" not in only["text"]


async def test_a_strict_bank_alone_says_it_shares_no_transactions_in_polish(
    system: System,
) -> None:
    await link_bank(system, ZOFIA, "wisla", drop=("fraud_alerts",))
    listed = await system.say(ZOFIA, "/transactions", lambda t: "Wisła" in t)
    assert "nie udostępnia" in listed["text"] and "/link" in listed["text"]
    assert not [b for b in buttons(listed) if b["callback_data"].startswith("tx:")]
    spent = await system.say(ZOFIA, "ile wydałam w Biedronce", lambda t: "Wisła" in t)
    assert "nie udostępnia" in spent["text"]
    saldo = await system.say(ZOFIA, "saldo w Libertas", lambda t: "Libertas" in t)
    assert "Nie udostępniasz sald" in saldo["text"]


async def test_a_transactions_only_link_lists_transactions(system: System) -> None:
    await link_bank(system, ALICE, "northwind", drop=("balances", "fraud_alerts"))
    listed = await system.say(ALICE, "/transactions", lambda t: "Transactions" in t)
    assert "Northwind" in listed["text"] and button(listed, "tx:next")
    few = await system.say(ALICE, "my last 2 transactions", lambda t: "Transactions" in t)
    rows = [
        line
        for line in few["text"].splitlines()
        if line.count(" · ") >= 2 and not line.startswith("<b>")
    ]
    assert len(rows) == 2


async def test_spending_totals_in_arabic_and_polish_find_merchants_at_the_broker(
    system: System,
) -> None:
    await link_bank(system, OMAR, "nakheel")
    ar = await system.say(OMAR, "كم صرفت في كارفور الشهر الماضي", lambda t: "صرفت" in t)
    assert ar["text"].startswith("\u200f") and "كارفور" in ar["text"]
    assert button(ar, "sp:list")
    listed = await system.press(OMAR, ar, "sp:list", lambda t: "Carrefour" in t)
    assert "كارفور" in listed["text"]
    await link_bank(system, ZOFIA, "libertas")
    pl = await system.say(
        ZOFIA, "ile wydałam na Amazonie w zeszłym miesiącu", lambda t: "Wydatki" in t
    )
    assert "Wydano" in pl["text"] and "nic nie wydano" not in pl["text"]
    groceries = await system.say(
        ALICE, "how much did I spend on groceries", lambda t: "link a bank" in t.lower()
    )
    assert "groceries" not in groceries["text"].lower()  # Alice has nothing linked yet
    await link_bank(system, ALICE, "libertas")
    groceries = await system.say(
        ALICE, "how much did I spend on groceries", lambda t: "Spending" in t
    )
    assert "groceries" in groceries["text"] and "You spent" in groceries["text"]
    since = await system.say(  # longer than the broker adds up at once: the last year
        ALICE, "how much did I spend since 1 January 2025", lambda t: "Spending" in t
    )
    assert "2025" in since["text"] and "went wrong" not in since["text"]


async def test_small_talk_support_transfers_cards_and_typos_get_polite_answers(
    system: System,
) -> None:
    await link_bank(system, ALICE, "libertas")
    for text, expected in (
        ("thanks!", "You're welcome"),
        ("👍", "You're welcome"),
        ("can I transfer money to Bob", "can't move money"),
        ("freeze my card", "Which card should I freeze?"),  # the cards flow, from free text
        ("I lost my card", "Which card should I freeze?"),
        ("unfreeze my card", "None of your cards is frozen."),
        ("/balanse", "Did you mean /balance?"),
    ):
        await system.say(ALICE, text, lambda t, e=expected: e in t)  # type: ignore[misc]
    support = await system.say(ALICE, "I want to talk to a real person", lambda t: "🏦" in t)
    assert "Libertas Federal" in support["text"]
    ar = await system.say(OMAR, "شكرا", lambda t: "الرحب" in t)
    assert ar["text"].startswith("\u200f")
    pl = await system.say(ZOFIA, "przelej 50 zł Ani", lambda t: "przelewy" in t)
    assert "Nie mogę" in pl["text"]


async def test_free_text_filters_transactions_by_category_and_amount(system: System) -> None:
    await link_bank(system, ALICE, "northwind")
    big = await system.say(ALICE, "show transactions over 40 pounds", lambda t: "Transactions" in t)
    assert "from 40" in big["text"] and button(big, "tx:all")
    amounts = [
        line.rsplit("£", 1)[1].rstrip(" ⏳").replace(",", "")
        for line in big["text"].splitlines()
        if "£" in line and not line.startswith("<b>")
    ]
    assert amounts and all(Decimal(a) >= 40 for a in amounts), big["text"]
    fuel = await system.say(ALICE, "fuel transactions", lambda t: "Transactions" in t)
    assert "fuel" in fuel["text"] and "Tesco" not in fuel["text"]
