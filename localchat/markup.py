"""Telegram's checks on message text: the HTML parse mode, length, emptiness and button data.

``parse_html`` accepts exactly Telegram's tag set (b strong i em u ins s strike del, span with
class="tg-spoiler", tg-spoiler, a href, code, pre, blockquote, tg-emoji) and only the entities
&lt; &gt; &amp; &quot; and numeric ones, and refuses anything else with Telegram's wording and
the UTF-8 byte offset of the offending construct. One deliberate difference: Telegram passes a
bare ``&`` through as text, while localchat refuses it (Telegram's documentation asks for it to
be escaped, and a bot that relies on the leniency is a bot with an escaping bug).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, NoReturn
from urllib.parse import urlsplit

JSON = dict[str, Any]
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:#[0-9]{1,7};|#[xX][0-9a-fA-F]{1,6};|(lt|gt|amp|quot);)")
_TAG_START = re.compile(r"<[a-zA-Z/]")


class TextError(ValueError):
    """Telegram refuses the text; ``description`` is the Bot API's ``description``."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _entities_error(detail: str) -> TextError:
    return TextError(f"Bad Request: can't parse entities: {detail}")


class _Checker(HTMLParser):
    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.text = text
        self.plain: list[str] = []
        self.open: list[tuple[str, int]] = []
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def _index(self, extra: int = 0) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column + extra

    def byte_offset(self, extra: int = 0) -> int:
        return len(self.text[: self._index(extra)].encode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        at = self.byte_offset()
        if tag not in ALLOWED_TAGS:
            raise _entities_error(f'Unsupported start tag "{tag}" at byte offset {at}')
        values = dict(attrs)
        if tag == "span" and values.get("class") != "tg-spoiler":
            raise _entities_error('Tag "span" must have class "tg-spoiler"')
        if tag == "tg-emoji" and not values.get("emoji-id"):
            detail = f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {at}'
            raise _entities_error(detail)
        self.open.append((tag, at))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        at = self.byte_offset()
        if not self.open:
            raise _entities_error(f"Unexpected end tag at byte offset {at}")
        expected, _ = self.open.pop()
        if expected != tag:
            raise _entities_error(
                f'Unmatched end tag at byte offset {at}, expected "</{expected}>", found "</{tag}>"'
            )

    def handle_data(self, data: str) -> None:
        for index, char in enumerate(data):
            if char == "<":
                at = self.byte_offset(index)
                if _TAG_START.match(self.text, self._index(index)):
                    raise _entities_error(f"Unclosed start tag at byte offset {at}")
                raise _entities_error(f'Unsupported start tag "" at byte offset {at}')
            if char == "&":
                self._bad_entity(data[index : index + 8], index)
        self.plain.append(data)

    def _entity(self, extra: int = 0) -> None:
        start = self._index(extra)
        match = _ENTITY.match(self.text, start)
        if match is None:
            self._bad_entity(self.text[start : start + 8], extra)
        name = match.group(1)
        if name is not None:
            self.plain.append(NAMED_ENTITIES[name])
            return
        digits = match.group(0)[2:-1]
        code = int(digits[1:], 16) if digits[0] in "xX" else int(digits)
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            self._bad_entity(match.group(0), extra)
        self.plain.append(chr(code))

    def _bad_entity(self, raw: str, extra: int) -> NoReturn:
        shown = raw.split(";", 1)[0] + (";" if ";" in raw else "")
        shown = re.split(r"[\s<]", shown, maxsplit=1)[0]
        raise _entities_error(
            f'Unsupported HTML entity "{shown}" at byte offset {self.byte_offset(extra)}'
        )

    def handle_entityref(self, name: str) -> None:
        self._entity()

    def handle_charref(self, name: str) -> None:
        self._entity()

    def handle_comment(self, data: str) -> None:
        raise _entities_error(f'Unsupported start tag "" at byte offset {self.byte_offset()}')

    def handle_decl(self, decl: str) -> None:
        self.handle_comment(decl)

    def handle_pi(self, data: str) -> None:
        self.handle_comment(data)

    def unknown_decl(self, data: str) -> None:
        self.handle_comment(data)

    def finish(self) -> str:
        self.close()
        if self.open:
            tag, _ = self.open[-1]
            raise _entities_error(f'Can\'t find end tag corresponding to start tag "{tag}"')
        return "".join(self.plain)


def parse_html(text: str) -> str:
    """The text Telegram would show for ``text`` in parse mode HTML, or ``TextError``."""
    checker = _Checker(text)
    checker.feed(text)
    return checker.finish()


def check_text(text: str, parse_mode: str | None) -> str:
    """Validate a message's text as sendMessage/editMessageText do; return the visible text."""
    plain = parse_html(text) if (parse_mode or "").upper() == "HTML" else text
    if not plain.strip():
        raise TextError("Bad Request: message text is empty")
    if len(plain) > MAX_TEXT_LENGTH:
        raise TextError("Bad Request: message is too long")
    return plain


URL_SCHEMES = frozenset({"http", "https", "tg"})
BUTTON_ACTIONS = ("callback_data", "url", "login_url", "switch_inline_query", "web_app", "pay")


def _check_url(url: object) -> None:
    """Telegram accepts http(s) URLs with a host and tg:// links; anything else is refused."""
    parsed = urlsplit(url) if isinstance(url, str) else None
    good = (
        parsed is not None
        and parsed.scheme.lower() in URL_SCHEMES
        and (parsed.scheme.lower() == "tg" or bool(parsed.hostname))
        and not any(c.isspace() for c in str(url))
    )
    if not good:
        raise TextError(
            f"Bad Request: inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
        )


def check_markup(markup: Any) -> JSON | None:
    """Validate an inline keyboard as Telegram does and return what the message keeps: ``None``
    when there is no button (``{}`` and ``{"inline_keyboard": []}`` show no keyboard, so the
    message carries no ``reply_markup``). Refused: a markup that is not an object, rows that are
    not arrays, buttons without text or action, callback_data empty or over 64 bytes, bad URLs."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise TextError("Bad Request: object expected as reply markup")
    rows = markup.get("inline_keyboard", [])
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise TextError(
            'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup '
            "should be an Array of Arrays"
        )
    for row in rows:
        for button in row:
            if not isinstance(button, dict) or not str(button.get("text", "")).strip():
                raise TextError("Bad Request: can't parse inline keyboard button: Text is empty")
            if not any(key in button for key in BUTTON_ACTIONS):
                raise TextError(
                    "Bad Request: can't parse inline keyboard button: "
                    "Text buttons are unallowed in the inline keyboard"
                )
            if "url" in button:
                _check_url(button["url"])
            if "callback_data" not in button:
                continue
            data = button["callback_data"]
            if not isinstance(data, str) or not 0 < len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                raise TextError("Bad Request: BUTTON_DATA_INVALID")
    kept = [row for row in rows if row]
    return {"inline_keyboard": kept} if kept else None
