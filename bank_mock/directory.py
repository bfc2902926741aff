"""``GET /banks``: the directory of simulated banks (no authentication)."""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from bank_mock.keys import BANKS, SETTINGS

routes = web.RouteTableDef()


def api_base(request: web.Request, public: str) -> str:
    """Where callers reach the APIs: the way they reached this directory (a broker next to the
    bank calls it directly, not through the public tunnel), or the public URL when they came
    through it."""
    pub = URL(public)
    if request.host in {pub.raw_host, f"{pub.raw_host}:{pub.port}"}:
        return public
    return str(request.url.origin())


@routes.get("/banks")
async def list_banks(request: web.Request) -> web.Response:
    """Every bank with its endpoints: the customer's pages (authorization, dashboard) at the
    public URL (``BANK_PUBLIC_URL``), which a phone can open; the APIs as the caller came."""
    public = request.app[SETTINGS].base_url()
    api = api_base(request, public)
    banks = []
    for bank in request.app[BANKS].values():
        p = bank.profile
        root, pages = f"{api}/banks/{p.bank_id}", f"{public}/banks/{p.bank_id}"
        banks.append(
            {
                "bank_id": p.bank_id,
                "name": p.name,
                "country": p.country,
                "currency": p.currency,
                "issuer": pages,  # the SETs' "iss": a name, the same however it is reached
                "registration_endpoint": f"{root}/register",
                "token_endpoint": f"{root}/token",
                "authorization_endpoint": f"{pages}/authorize",
                "dashboard_url": f"{pages}/dashboard",
                "jwks_uri": f"{root}/.well-known/jwks.json",
                "aisp_base": f"{root}/open-banking/v3.1/aisp",
                "card_controls_base": f"{root}/card-controls/v1",
                "support_base": f"{root}/support/v1",
            }
        )
    return web.json_response({"banks": banks})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
