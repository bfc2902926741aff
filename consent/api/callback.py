"""Where the bank sends the user's browser after the approval page; in the user's language."""

from __future__ import annotations

import html

from aiohttp import web

from consent.api.keys import BROKER, RELAY
from consent.api.page_language import RTL, from_accept_language, language_of_state, translations
from consent.domain.ids import is_id
from consent.service import linking
from consent.service.errors import BrokerError, not_found

routes = web.RouteTableDef()

_PAGE = """<!doctype html><html lang="{lang}" dir="{dir}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f3f4f6;display:grid;place-items:center}}
main{{background:#fff;border-radius:12px;padding:28px 32px;max-width:420px}}
</style>
</head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>"""


def _page(request: web.Request, title: str, text: str, status: int) -> web.Response:
    """A page in the language the link was started in, else the browser's, else English."""
    state = request.query.get("state", "")
    language = (
        language_of_state(state)
        or from_accept_language(request.headers.get("Accept-Language"))
        or "en"
    )
    t = translations(language)
    body = _PAGE.format(
        lang=language,
        dir="rtl" if language in RTL else "ltr",
        title=html.escape(t.gettext(title)),
        text=html.escape(t.gettext(text)),
    )
    headers = {"Cache-Control": "no-store", "Content-Language": language}
    return web.Response(text=body, status=status, content_type="text/html", headers=headers)


@routes.get("/callback/{bank_id}")
async def callback(request: web.Request) -> web.Response:
    """Finish the link: exchange the code, then tell the user to go back to the chat."""
    state = request.query.get("state", "")
    if not state:
        return _page(
            request, "Link not found", "This link is incomplete. Start again from the chat.", 400
        )
    try:
        if not is_id(state) or not is_id(request.match_info["bank_id"]):
            raise not_found("pending link")  # no link was ever issued with this shape
        row = await linking.complete_link(
            request.app[BROKER],
            request.match_info["bank_id"],
            state,
            request.query.get("code"),
            request.query.get("error"),
        )
    except BrokerError as e:
        if e.status == 404:
            return _page(
                request,
                "Link not found",
                "This link was already used or has expired. Start again from the chat.",
                404,
            )
        return _page(
            request,
            "The bank did not answer",
            "Nothing was linked. Please try again in a minute.",
            e.status,
        )
    request.app[RELAY].wake.set()  # tell the platform now, not at the next poll
    if row.status == "rejected":
        return _page(
            request,
            "Nothing was shared",
            "You declined at your bank. You can close this page.",
            200,
        )
    return _page(
        request, "Your bank is linked", "You can close this page and return to the chat.", 200
    )
