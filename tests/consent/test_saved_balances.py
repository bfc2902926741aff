"""The in-memory throttle of last-known balance writes (:class:`consent.store.last_known.Saved`):
a view is due when new, changed in anything but its as-of time, or last written long ago."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import given
from hypothesis import strategies as st

from consent.domain.views import View
from consent.store.last_known import Saved

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
KEYS = ["available", "current", "currency", "last4", "nickname", "as_of", "flags"]
values = st.one_of(
    st.none(),
    st.sampled_from(["", "1", "1.0", "GBP", "-2.50"]),
    st.lists(st.sampled_from(["a", "b"]), max_size=2),
)
views = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))


def _digest(view: View) -> bytes:
    """What the throttle compared before: a hash of the view's JSON without its as-of time."""
    content = {k: v for k, v in view.items() if k != "as_of"}
    return hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).digest()


@given(views, views)
def test_a_view_is_due_exactly_when_its_content_changed(first: View, second: View) -> None:
    saved = Saved()
    assert saved.due("acc_1", first, T0)  # never written
    saved.mark("acc_1", first, T0)
    soon = T0 + timedelta(seconds=5)
    assert saved.due("acc_1", second, soon) == (_digest(first) != _digest(second))
    assert not saved.due("acc_1", first, soon)


@given(views)
def test_an_unchanged_view_is_due_again_after_the_refresh_period(view: View) -> None:
    saved = Saved(refresh=timedelta(seconds=60))
    saved.mark("acc_1", view, T0)
    assert not saved.due("acc_1", {**view, "as_of": "later"}, T0 + timedelta(seconds=59))
    assert saved.due("acc_1", view, T0 + timedelta(seconds=60))
    saved.forget(["acc_1"])
    assert saved.due("acc_1", view, T0 + timedelta(seconds=61))


def test_a_view_changed_after_it_was_marked_does_not_change_what_was_saved() -> None:
    view: View = {"available": "1.00", "as_of": "t0"}
    saved = Saved()
    saved.mark("acc_1", view, T0)
    view["available"] = "2.00"  # the caller's dict, changed afterwards
    assert saved.due("acc_1", view, T0 + timedelta(seconds=1))
