"""Free-text intent classifier: accuracy per language (intent, merchant, dates) and speed.

Runs every labelled phrase in ``tests/bot/data/intents.yaml`` (or ``--dataset``), checks the
intent, and the entities (merchant, dates) where labelled; held-out "test" phrases (never used to
tune the lexicon) are reported apart from "dev" ones, and every miss is printed. A split with no
phrases shows "n/a": every phrase in the bundled file is "dev" now, since all of them were used
for tuning; an unseen set is measured by passing it as ``--dataset``.

Target: at least 90% intent accuracy per language; exits 1 when a language misses it.

    python -m bench.intents_accuracy [--dataset PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.intents import classify

DATASET = Path(__file__).resolve().parents[1] / "tests" / "bot" / "data" / "intents.yaml"
TARGET = 0.90


def load(path: Path = DATASET) -> tuple[date, list[dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return date.fromisoformat(str(data["today"])), list(data.get("phrases") or [])


def entity_ok(phrase: dict[str, Any], got: Any) -> bool | None:
    """None when the phrase labels no entity; else whether every labelled one matches."""
    checks = []
    if "merchant" in phrase:
        checks.append((got.merchant or "").casefold() == str(phrase["merchant"]).casefold())
    for name in ("date_from", "date_to"):
        if name in phrase:
            checks.append(getattr(got, name) == date.fromisoformat(str(phrase[name])))
    return all(checks) if checks else None


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
        ent = entity_ok(p, got) if ok else (False if "merchant" in p or "date_from" in p else None)
        if ent is not None:
            entities[p["language"]].append(ent)
        if not ok or ent is False:
            misses.append((p, got))
    elapsed = time.perf_counter() - started
    print(f"{len(phrases)} labelled phrases, {len(phrases) / elapsed:.0f} classified per second\n")
    print(f"{'language':<9}{'all':>15}{'held-out test':>16}{'dev':>15}{'entities':>14}")
    failed = False
    for language in ("en", "ar", "pl"):
        test, dev = hits[(language, "test")], hits[(language, "dev")]
        both = test + dev
        failed |= bool(both) and sum(both) / len(both) < TARGET
        print(
            f"{language:<9}{_share(both, 15, '6.1%')}{_share(test, 16, '6.1%')}"
            f"{_share(dev, 15, '5.0%')}{_share(entities[language], 14, '5.0%')}"
        )
    print(
        f"\ntarget: ≥ {TARGET:.0%} intent accuracy per language — {'MISSED' if failed else 'met'}"
    )
    print(f"\nmisses ({len(misses)}):")
    for p, got in misses:
        wanted = " ".join(f"{k}={p[k]}" for k in ("merchant", "date_from", "date_to") if k in p)
        where = f"{p['language']}/{p.get('split', 'dev')}"
        print(
            f"  [{where}] {p['text']!r}: expected {p['intent']} {wanted}"
            f"\n      got {got.name} merchant={got.merchant!r} {got.date_from}..{got.date_to}"
            f" candidates={got.candidates}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=DATASET, help="labelled phrases (YAML)")
    sys.exit(main(parser.parse_args().dataset))
