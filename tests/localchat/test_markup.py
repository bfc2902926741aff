"""Telegram's HTML parse mode, text length and button data checks, as localchat applies them."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localchat.markup import (
    ALLOWED_TAGS,
    TextError,
    check_markup,
    check_text,
    parse_html,
)

PREFIX = "Bad Request: can't parse entities: "


def _refusal(text: str) -> str:
    with pytest.raises(TextError) as caught:
        parse_html(text)
    return caught.value.description


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("ünï\n<img src=x onerror=alert(1)>", 'Unsupported start tag "img" at byte offset 6'),
        ("<br/>", 'Unsupported start tag "br" at byte offset 0'),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("é <b", "Unclosed start tag at byte offset 3"),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("a & b", 'Unsupported HTML entity "&" at byte offset 2'),
        ("x &nbsp; y", 'Unsupported HTML entity "&nbsp;" at byte offset 2'),
        ("&#65 without a semicolon", 'Unsupported HTML entity "&#65" at byte offset 0'),
        ("&#xD800;", 'Unsupported HTML entity "&#xD800;" at byte offset 0'),
        ("<!-- a comment -->", 'Unsupported start tag "" at byte offset 0'),
    ],
)
def test_markup_outside_telegrams_html_is_refused_with_telegrams_words(
    text: str, detail: str
) -> None:
    assert _refusal(text) == PREFIX + detail


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<b>Welcome</b>", "Welcome"),
        ("<B>loud</B> and <strong>strong</strong>", "loud and strong"),
        ("&lt;&gt;&amp;&quot;&#65;&#x42;", '<>&"AB'),
        ('<a href="https://example.org">link</a>', "link"),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st"),
        ('<pre><code class="language-python">x = 1</code></pre>', "x = 1"),
        ("<blockquote expandable>q</blockquote>", "q"),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍"),
        ("<i><u><s>all</s></u></i>", "all"),
    ],
)
def test_telegrams_own_tags_and_entities_are_accepted(text: str, shown: str) -> None:
    assert parse_html(text) == shown


def test_the_length_limit_counts_the_text_after_entity_parsing() -> None:
    assert check_text("<b>" + "x" * 4096 + "</b>", "HTML") == "x" * 4096
    with pytest.raises(TextError, match=r"^Bad Request: message is too long$"):
        check_text("x" * 4097, None)
    with pytest.raises(TextError, match=r"^Bad Request: message text is empty$"):
        check_text("<b> </b>", "HTML")
    with pytest.raises(TextError, match=r"^Bad Request: message text is empty$"):
        check_text("", None)
    assert check_text("<div> is fine without a parse mode", None).startswith("<div>")


@pytest.mark.parametrize("data", ["", "x" * 65, "é" * 33])
def test_callback_data_must_be_1_to_64_bytes(data: str) -> None:
    markup = {"inline_keyboard": [[{"text": "ok", "callback_data": "fine"}]]}
    check_markup(markup)
    markup["inline_keyboard"].append([{"text": "bad", "callback_data": data}])
    with pytest.raises(TextError, match=r"^Bad Request: BUTTON_DATA_INVALID$"):
        check_markup(markup)


def test_64_bytes_of_callback_data_is_the_most_allowed() -> None:
    check_markup({"inline_keyboard": [[{"text": "ok", "callback_data": "é" * 32}]]})
    check_markup({"inline_keyboard": [[{"text": "link", "url": "https://example.org"}]]})


simple_tags = st.sampled_from(sorted(ALLOWED_TAGS - {"span", "a", "tg-emoji"}))


@given(pieces=st.lists(st.tuples(simple_tags, st.text()), max_size=6))
def test_any_escaped_text_in_allowed_tags_parses_back_to_that_text(
    pieces: list[tuple[str, str]],
) -> None:
    markup = "".join(f"<{tag}>{html.escape(text)}</{tag}>" for tag, text in pieces)
    assert parse_html(markup) == "".join(text for _, text in pieces)


@given(prefix=st.text(), tag=st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True))
def test_an_unsupported_tag_is_reported_at_its_utf8_byte_offset(prefix: str, tag: str) -> None:
    escaped = html.escape(prefix, quote=False)
    if tag in ALLOWED_TAGS:
        return
    detail = f'Unsupported start tag "{tag}" at byte offset {len(escaped.encode())}'
    assert _refusal(f"{escaped}<{tag}>x</{tag}>") == PREFIX + detail


@given(text=st.text(), data=st.data())
def test_a_bare_ampersand_anywhere_in_escaped_text_is_refused_where_it_stands(
    text: str, data: st.DataObject
) -> None:
    escaped = html.escape(text, quote=False)
    assert parse_html(escaped) == text
    cut = data.draw(st.integers(0, len(text)))
    head, tail = html.escape(text[:cut], quote=False), html.escape(text[cut:], quote=False)
    detail = f'Unsupported HTML entity "&" at byte offset {len(head.encode())}'
    assert _refusal(f"{head}& {tail}") == PREFIX + detail
