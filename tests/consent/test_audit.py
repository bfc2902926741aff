"""The hash-chained access log detects any edit, removal, insertion or reordering."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.domain.audit import AuditEntry, append_entry, verify_chain

T0 = datetime(2026, 11, 20, tzinfo=UTC)
entry_args = st.tuples(
    st.sampled_from(["read", "consent.create", "consent.revoke"]),
    st.sampled_from([None, "balances", "transactions"]),
    st.sampled_from(["chat-service", "advertising"]),
    st.lists(st.sampled_from(["amount", "merchant", "available"]), max_size=3),
    st.sampled_from(["allowed", "denied"]),
)


def chain(args: list[tuple[str, str | None, str, list[str], str]]) -> list[AuditEntry]:
    out: list[AuditEntry] = []
    for i, (action, scope, purpose, fields, outcome) in enumerate(args):
        out.append(
            append_entry(
                out[-1] if out else None,
                subject_id="sub_1",
                client_id="bot",
                action=action,
                scope=scope,
                purpose=purpose,
                fields=fields,
                outcome=outcome,
                reason="ok" if outcome == "allowed" else "purpose_not_permitted",
                at=T0 + timedelta(seconds=i),
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(entry_args, max_size=12))
def test_any_sequence_of_appends_verifies(
    args: list[tuple[str, str | None, str, list[str], str]],
) -> None:
    report = verify_chain(chain(args))
    assert report.ok
    assert report.checked == len(args)


@settings(max_examples=200, deadline=None)
@given(st.lists(entry_args, min_size=1, max_size=10), st.data())
def test_editing_any_field_of_any_entry_is_detected(
    args: list[tuple[str, str | None, str, list[str], str]], data: st.DataObject
) -> None:
    entries = chain(args)
    i = data.draw(st.integers(0, len(entries) - 1))
    edit = data.draw(
        st.sampled_from(
            [
                {"outcome": "allowed" if entries[i].outcome == "denied" else "denied"},
                {"purpose": entries[i].purpose + "x"},
                {"fields": (*entries[i].fields, "iban")},
                {"at": entries[i].at + timedelta(seconds=1)},
                {"client_id": "someone-else"},
            ]
        )
    )
    entries[i] = replace(entries[i], **edit)  # type: ignore[arg-type]
    report = verify_chain(entries)
    assert not report.ok
    assert report.first_bad_seq == i + 1


@settings(max_examples=200, deadline=None)
@given(st.lists(entry_args, min_size=2, max_size=10), st.data())
def test_removing_or_swapping_entries_is_detected(
    args: list[tuple[str, str | None, str, list[str], str]], data: st.DataObject
) -> None:
    entries = chain(args)
    i = data.draw(st.integers(0, len(entries) - 2))
    removed = entries[:i] + entries[i + 1 :]
    assert not verify_chain(removed).ok
    swapped = list(entries)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    report = verify_chain(swapped)
    assert not report.ok
    assert report.first_bad_seq == swapped[i].seq


def test_an_inserted_forged_entry_is_detected_even_with_a_recomputed_hash() -> None:
    entries = chain([("read", "balances", "chat-service", ["available"], "allowed")] * 3)
    forged = append_entry(
        entries[0],
        subject_id="sub_1",
        client_id="bot",
        action="read",
        scope="balances",
        purpose="chat-service",
        fields=[],
        outcome="allowed",
        reason="ok",
        at=T0,
    )
    report = verify_chain([entries[0], forged, *entries[1:]])
    assert not report.ok
    assert report.first_bad_seq == 2
