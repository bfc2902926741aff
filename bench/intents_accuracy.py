"""Free-text intent classifier: accuracy per language (intent and entities) and speed.

Runs every labelled phrase in ``tests/bot/data/intents.yaml`` (or ``--dataset``), checks the
intent, and each labelled entity (merchant, category, bank, date_from, date_to, limit,
amount_min, amount_max) on its own: entity accuracy is right entity values / labelled entity
values, counting an entity wrong when the intent is wrong. Dates are ISO dates relative to the
dataset's ``today:``; a merchant compares case-insensitively (a list of spellings accepts any
of them: the span as typed, or the merchant's own name), amounts as decimals. Held-out "test"
phrases (never used to tune the lexicon) are reported apart from "dev" ones, and every miss is
printed. A split with no phrases shows "n/a"; an unseen set is measured with ``--dataset``.

Targets: at least 95% intent accuracy and 90% entity accuracy per language; exits 1 when a
language misses either.

    python -m bench.intents_accuracy [--dataset PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.intents import classify

DATASET = Path(__file__).resolve().parents[1] / "tests" / "bot" / "data" / "intents.yaml"
TARGET = 0.95
ENTITY_TARGET = 0.90
ENTITIES = (
    "merchant",
    "category",
    "bank",
    "date_from",
    "date_to",
    "limit",
    "amount_min",
    "amount_max",
)


def load(path: Path = DATASET) -> tuple[date, list[dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return date.fromisoformat(str(data["today"])), list(data.get("phrases") or [])


def entity_checks(phrase: dict[str, Any], got: Any) -> dict[str, bool]:
    """Each entity the phrase labels → whether ``got`` has it right."""
    checks = {}
    for name in ENTITIES:
        if name not in phrase:
            continue
        wanted, value = phrase[name], getattr(got, name, None)
        if name == "merchant":
            spellings = wanted if isinstance(wanted, list) else [wanted]
            ok = (value or "").casefold() in {str(w).casefold() for w in spellings}
        elif name in ("date_from", "date_to"):
            ok = value == (date.fromisoformat(str(wanted)) if wanted is not None else None)
        elif name in ("amount_min", "amount_max"):
            ok = value is not None and Decimal(str(value)) == Decimal(str(wanted))
        else:
            ok = value == wanted
        checks[name] = ok
    return checks


def entity_ok(phrase: dict[str, Any], got: Any) -> bool | None:
    """None when the phrase labels no entity; else whether every labelled one matches."""
    checks = entity_checks(phrase, got)
    return all(checks.values()) if checks else None


def _share(results: list[bool], width: int, percent: str) -> str:
    """Right/total and accuracy, right-aligned in ``width`` columns; "n/a" for no phrases (a
    dataset without a "test" split, say)."""
    if not results:
        return f"{'n/a':>{width}}"
    text = f"{sum(results)}/{len(results)} {sum(results) / len(results):{percent}}"
    return f"{text:>{width}}"


def main(dataset: Path = DATASET) -> int:
    today, phrases = load(dataset)
    hits: dict[tuple[str, str], list[bool]] = defaultdict(list)
    entities: dict[str, list[bool]] = defaultdict(list)
    misses = []
    started = time.perf_counter()
    for p in phrases:
        got = classify(str(p["text"]), str(p["language"]), today=today)
        ok = got.name == p["intent"]
        hits[(p["language"], p.get("split", "dev"))].append(ok)
        checks = entity_checks(p, got)
        results = [ok and right for right in checks.values()]
        entities[p["language"]] += results
        if not ok or not all(results):
            misses.append((p, got))
    elapsed = time.perf_counter() - started
    print(f"{len(phrases)} labelled phrases, {len(phrases) / elapsed:.0f} classified per second\n")
    print(f"{'language':<9}{'all':>15}{'held-out test':>16}{'dev':>15}{'entities':>14}")
    failed = False
    for language in ("en", "ar", "pl"):
        test, dev = hits[(language, "test")], hits[(language, "dev")]
        both = test + dev
        failed |= bool(both) and sum(both) / len(both) < TARGET
        ents = entities[language]
        failed |= bool(ents) and sum(ents) / len(ents) < ENTITY_TARGET
        print(
            f"{language:<9}{_share(both, 15, '6.1%')}{_share(test, 16, '6.1%')}"
            f"{_share(dev, 15, '5.0%')}{_share(entities[language], 14, '5.0%')}"
        )
    verdict = "MISSED" if failed else "met"
    print(
        f"\ntargets: ≥ {TARGET:.0%} intent and ≥ {ENTITY_TARGET:.0%} entity accuracy per"
        f" language — {verdict}"
    )
    print(f"\nmisses ({len(misses)}):")
    for p, got in misses:
        wanted = " ".join(f"{k}={p[k]}" for k in ENTITIES if k in p)
        where = f"{p['language']}/{p.get('split', 'dev')}"
        print(
            f"  [{where}] {p['text']!r}: expected {p['intent']} {wanted}"
            f"\n      got {got.name} "
            + " ".join(f"{k}={getattr(got, k)}" for k in ENTITIES if getattr(got, k) is not None)
            + f" candidates={got.candidates}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="labelled phrases (YAML)")
    sys.exit(main(parser.parse_args().dataset))
