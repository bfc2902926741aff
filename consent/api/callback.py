"""Where the bank sends the user's browser after the approval page."""

from __future__ import annotations

import html

from aiohttp import web

from consent.api.keys import BROKER, RELAY
from consent.service import linking
from consent.service.errors import BrokerError

routes = web.RouteTableDef()

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;background:#f3f4f6;display:grid;place-items:center}}
main{{background:#fff;border-radius:12px;padding:28px 32px;max-width:420px}}
</style>
</head><body><main><h1>{title}</h1><p>{text}</p></main></body></html>"""


def _page(title: str, text: str, status: int) -> web.Response:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text))
    return web.Response(
        text=body, status=status, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


@routes.get("/callback/{bank_id}")
async def callback(request: web.Request) -> web.Response:
    """Finish the link: exchange the code, then tell the user to go back to the chat."""
    state = request.query.get("state", "")
    if not state:
        return _page("Link not found", "This link is incomplete. Start again from the chat.", 400)
    try:
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
                "Link not found",
                "This link was already used or has expired. Start again from the chat.",
                404,
            )
        return _page(
            "The bank did not answer", "Nothing was linked. Please try again in a minute.", e.status
        )
    request.app[RELAY].wake.set()  # tell the platform now, not at the next poll
    if row.status == "rejected":
        return _page(
            "Nothing was shared", "You declined at your bank. You can close this page.", 200
        )
    return _page("Your bank is linked", "You can close this page and return to the chat.", 200)
