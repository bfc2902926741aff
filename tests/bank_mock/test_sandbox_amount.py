"""One amount grammar for the sandbox: what bank_mock/openapi.json calls a valid amount is
booked, what it calls invalid is refused with a 400 (schemathesis found ``540994362012``: valid by
the file's old pattern, refused by the code)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bank_mock.errors import BankError
from bank_mock.sandbox_events import AMOUNT_PATTERN, MAX_AMOUNT, parse_amount

SPEC = Path(__file__).resolve().parents[2] / "bank_mock" / "openapi.json"
# schemathesis anchors a closing ``$`` at the very end of the string and reads \d as ASCII
GRAMMAR = re.compile(AMOUNT_PATTERN.removesuffix("$") + r"\Z", re.ASCII)


def sandbox_amount_schemas() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "amount" and isinstance(value, dict) and value.get("type") == "string":
                    found.append((path, value))
                walk(value, key if key.startswith("/") else path)
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    paths = json.loads(SPEC.read_text())["paths"]
    walk({p: v for p, v in paths.items() if p.startswith("/sandbox/")}, "")
    return found


def test_every_sandbox_amount_in_the_spec_states_the_code_s_grammar() -> None:
    schemas = sandbox_amount_schemas()
    assert {path for path, _ in schemas} >= {
        "/sandbox/banks/{bank_id}/transactions",
        "/sandbox/banks/{bank_id}/transactions/batch",
        "/sandbox/banks/{bank_id}/payments",
    }
    for path, schema in schemas:
        assert schema["pattern"] == AMOUNT_PATTERN, path


@given(st.from_regex(GRAMMAR))
def test_every_amount_the_spec_allows_is_booked_to_the_cent(raw: str) -> None:
    minor = parse_amount(raw)
    assert 1 <= minor <= int(MAX_AMOUNT * 100)
    assert Decimal(minor) / 100 == Decimal(raw)


DECIMALISH = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="0123456789.-+eE ", max_size=20),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.integers(min_value=-(10**15), max_value=10**15).map(str),
)


@given(DECIMALISH)
def test_an_amount_is_accepted_exactly_when_the_spec_allows_it(raw: str) -> None:
    if GRAMMAR.match(raw):
        parse_amount(raw)
    else:
        with pytest.raises(BankError) as refused:
            parse_amount(raw)
        assert refused.value.status == 400


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("540994362012", "between 0.01 and 1000000"),
        ("0", "between 0.01 and 1000000"),
        ("1000000.01", "between 0.01 and 1000000"),
        ("1.234", "more than two decimal places"),
        ("1e3", "plain decimal string"),
        ("-5", "between 0.01 and 1000000"),
        ("٥", "plain decimal string"),
    ],
)
def test_a_refused_amount_says_why(raw: str, why: str) -> None:
    with pytest.raises(BankError) as refused:
        parse_amount(raw)
    assert why in str(refused.value)
