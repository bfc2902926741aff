"""The last word on an intent: spending or a list of transactions (or spending by category with
a chart: insights), a transfer we can't make,
what a bit of small talk is, an emoji on its own, and which entities go with which intent."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.intents.entities import _compile, _find
from bot.intents.normalize import normalize

if TYPE_CHECKING:
    from bot.intents import Intent

# "how much" / "what did I spend" asks for a total; a list word (or "show") asks for the rows:
# "show me what I spent at Tesco" lists the payments, with their total under them
SPENDING_WORDS: dict[str, tuple[str, ...]] = {
    "spending": (
        "how much",
        "total*",
        "sum",
        "in total",
        "altogether",
        "spend*",
        "spent",
        "expens*",
        "cost me",
        "ile",
        "suma",
        "sume",
        "lacznie",
        "razem",
        "w sumie",
        "wydal*",
        "wydaj*",
        "wydat*",
        "wydan*",
        "kosztowal*",
        "كم",
        "قديش",
        "كام",
        "مجموع",
        "اجمالي",
        "الاجمالي",
        "صرفت",
        "صرف*",
        "مصروف*",
        "مصاريف*",
    ),
}
LIST_WORDS: dict[str, tuple[str, ...]] = {
    "list": (
        "transaction*",
        "history",
        "list",
        "show",
        "display",
        "pokaz",
        "wyswietl",
        "اعرض",
        "وريني",
        "ورني",
        "فرجيني",
        "statement*",
        "show me each",
        "each payment",
        "every payment",
        "which payments",
        "what did i buy",
        "transakc*",
        "histori*",
        "liste",
        "lista",
        "wyciag*",
        "operacj*",
        "معاملات*",
        "المعاملات",
        "حركات*",
        "الحركات",
        "كشف*",
        "سجل",
        "العمليات",
        "عمليات*",
    ),
}
# asking how the money was spent, by category, with a chart: "where does my money go",
# "how did I spend last month", "na co wydaję", "وين راحت فلوسي"
INSIGHT_WORDS: dict[str, tuple[str, ...]] = {
    "insights": (
        "insight*",
        "breakdown",
        "break down",
        "broken down",
        "by category",
        "per category",
        "each category",
        "categories",
        "where does my money go",
        "where does all my money go",
        "where did my money go",
        "where did all my money go",
        "where my money goes",
        "where my money went",
        "where is my money going",
        "money going",
        "been going",
        "where has my money",
        "where has all my money",
        "how did i spend",
        "how do i spend",
        "what do i spend most on",
        "what did i spend most on",
        "what do i spend my money on",
        "what did i spend my money on",
        "spending summary",
        "summary of my spending",
        "spending habits",
        "spending chart",
        "spending report",
        "spending overview",
        "spending analysis",
        "analyse my spending",
        "analyze my spending",
        "chart",
        "graph",
        "pie",
        "podsumowanie wydatkow",
        "podsumow*",
        "podsumuj wydatki",
        "podsumuj moje wydatki",
        "analiza wydatkow",
        "analiza moich wydatkow",
        "analizuj*",
        "przeanalizuj*",
        "struktura wydatkow",
        "wedlug kategorii",
        "wg kategorii",
        "na kategorie",
        "kategori*",
        "na co wydaje*",
        "na co wydal*",
        "na co wydaw*",
        "na co ida",
        "gdzie ida",
        "gdzie uciekaja",
        "gdzie sie podzialy",
        "gdzie podzialy sie",
        "jak wydawal*",
        "jak wydal*",
        "jak wydaje*",
        "wykres*",
        "statystyk*",
        "تحليل*",
        "ملخص مصاريف*",
        "ملخص المصاريف",
        "ملخص الانفاق",
        "توزيع مصاريف*",
        "توزيع المصاريف",
        "توزيع الانفاق",
        "حسب الفئه",
        "حسب الفئات",
        "حسب التصنيف",
        "وين راحت",
        "وين تروح",
        "فين راحت",
        "فين بتروح",
        "اين تذهب",
        "اين ذهبت",
        "كيف صرفت",
        "كيف انفقت",
        "كيف اصرف",
        "على ايش صرفت",
        "على شو صرفت",
        "على ماذا انفقت",
        "فيم انفقت",
        "رسم بياني",
        "مخطط",
        "احصائيات",
    ),
}
# asking to move money, which chat can't do: "can I transfer money to Bob", "przelej 50 zł"
TRANSFER_WORDS: dict[str, tuple[str, ...]] = {
    "transfer": (
        "transfer money",
        "transfer to",
        "transfer 1*",
        "transfer 2*",
        "transfer 3*",
        "transfer 4*",
        "transfer 5*",
        "transfer 6*",
        "transfer 7*",
        "transfer 8*",
        "transfer 9*",
        "make a transfer",
        "make a payment",
        "send money",
        "send 1*",
        "send 2*",
        "send 3*",
        "send 4*",
        "send 5*",
        "send 6*",
        "send 7*",
        "send 8*",
        "send 9*",
        "wire money",
        "pay back",
        "pay my",
        "pay the",
        "pay bob",
        "przelej",
        "przelac",
        "zrob przelew",
        "zrobic przelew",
        "wyslij pieniadze",
        "wyslij kase",
        "wyslac pieniadze",
        "zaplac",
        "oddaj",
        "حول فلوس",
        *(f"حول {d}*" for d in "123456789"),
        "احول",
        "حول ل*",
        "حولي",
        "ابعث فلوس",
        "ارسل فلوس",
        "ارسل مبلغ",
        "ابي احول",
        "ابغى احول",
        "بدي حول",
        "ادفع",
    ),
}
_PAST = frozenset({"did", "have", "has", "was", "were", "czy", "هل"})
THANKS_WORDS: dict[str, tuple[str, ...]] = {
    "thanks": (
        "thank*",
        "you rock",
        "legend",
        "love it",
        "well done",
        "good job",
        "amazing",
        "brilliant",
        "اوكي",
        "اوك",
        "طيب",
        "زين",
        "يسلمو",
        "ميرسي",
        "thx",
        "ty",
        "cheers",
        "great",
        "awesome",
        "perfect",
        "cool",
        "nice",
        "ok",
        "okay",
        "got it",
        "dzieki",
        "dziekuje*",
        "dzieks",
        "super",
        "swietnie",
        "fajnie",
        "okej",
        "spoko",
        "jasne",
        "شكرا*",
        "مشكور*",
        "يعطيك العافيه",
        "تسلم*",
        "ممتاز",
        "تمام",
        "حلو",
        "جميل",
        "جزاك الله خير",
    ),
    "bye": (
        "bye",
        "goodbye",
        "see you",
        "see ya",
        "good night",
        "do widzenia",
        "na razie",
        "pa",
        "papa",
        "dobranoc",
        "مع السلامه",
        "باي",
        "الي اللقاء",
        "تصبح علي خير",
    ),
}
_SPENDING, _LIST = _compile(SPENDING_WORDS), _compile(LIST_WORDS)
_TRANSFER, _THANKS = _compile(TRANSFER_WORDS), _compile(THANKS_WORDS)
_INSIGHTS = _compile(INSIGHT_WORDS)
POSITIVE_EMOJI = frozenset("👍👌🙏❤♥😊🙂😀😃😄😁🥰😍🤝💪✅👏🎉🙌💯⭐")

# which entities an intent keeps
_KEEPS = {
    "transactions": {
        "merchant",
        "category",
        "bank",
        "date_from",
        "date_to",
        "limit",
        "amount_min",
        "amount_max",
    },
    "spending": {
        "merchant",
        "category",
        "bank",
        "date_from",
        "date_to",
        "amount_min",
        "amount_max",
    },
    "insights": {"bank", "date_from", "date_to"},
    "balance": {"bank"},
    "freeze_card": {"bank"},
    "unfreeze_card": {"bank"},
    "support": {"bank"},
    "receipts": {"bank"},
    "consents": {"bank"},
    "link": {"bank"},
}
_ENTITIES = (
    "merchant",
    "category",
    "bank",
    "date_from",
    "date_to",
    "limit",
    "amount_min",
    "amount_max",
)


def _emoji_only(text: str) -> bool:
    symbols = [c for c in text if not c.isspace()]
    return bool(symbols) and all(
        unicodedata.category(c) in ("So", "Sk", "Mn", "Cf") or c in "\ufe0f\u200d!.?"
        for c in symbols
    )


def refine(text: str, rest: str, language: str, intent: Intent) -> Intent:
    """``intent`` with spending told apart from transactions, transfers and small talk said
    what they are, and only the entities its name uses."""
    name, topic = intent.name, None
    if not rest and _emoji_only(text):
        positive = any(c in POSITIVE_EMOJI for c in text)
        return replace(
            intent, name="smalltalk", confidence=1.0, topic="thanks" if positive else None
        )
    words = rest.split()
    if (
        name in ("transactions", "unknown", "help")
        and _find(_TRANSFER, rest)[0] is not None
        and not intent.date_from
        and not (words and words[0] in _PAST)
    ):
        return replace(
            intent,
            name="unknown",
            confidence=1.0,
            topic="transfer",
            candidates=(),
            **dict.fromkeys(_ENTITIES),
        )
    if (
        name == "transactions"
        and _find(_LIST, rest)[0] is None
        and (_find(_SPENDING, rest)[0] is not None or intent.category is not None)
    ):
        name = "spending"
    if (
        name in ("transactions", "spending", "unknown", "balance", "help")
        and intent.category is None
        and _find(_INSIGHTS, rest)[0] is not None
        and (intent.merchant is None or _find(_INSIGHTS, normalize(intent.merchant))[0])
    ):
        name = "insights"  # totals by category with a chart, not a list nor one total
    if name == "smalltalk":
        topic = _find(_THANKS, rest)[0] or "greeting"
    keeps = _KEEPS.get(name, set())
    cleared: dict[str, Any] = {k: None for k in _ENTITIES if k not in keeps}
    return replace(intent, name=name, topic=topic, **cleared)
