"""The blind split (written from the contract alone, never tuned on) keeps meeting the targets:
≥ 95% intent and ≥ 90% entity accuracy in each language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import intents_accuracy

BLIND = Path(__file__).with_name("data") / "intents_blind.yaml"


def test_the_blind_split_has_at_least_forty_phrases_per_language() -> None:
    _, phrases = intents_accuracy.load(BLIND)
    for language in ("en", "ar", "pl"):
        mine = [p for p in phrases if p["language"] == language]
        assert len(mine) >= 40
        assert all(p["split"] == "test" for p in mine)


def test_the_blind_split_meets_the_intent_and_entity_targets(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert intents_accuracy.main(BLIND) == 0, capsys.readouterr().out
