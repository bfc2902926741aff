"""``GET /banks``: the directory of simulated banks (no authentication)."""

from __future__ import annotations

from aiohttp import web

from bank_mock.keys import BANKS, SETTINGS

routes = web.RouteTableDef()


@routes.get("/banks")
async def list_banks(request: web.Request) -> web.Response:
    """Every bank with its base URL, JWKS and authorization endpoints."""
    base = request.app[SETTINGS].base_url()
    banks = []
    for bank in request.app[BANKS].values():
        p = bank.profile
        root = f"{base}/banks/{p.bank_id}"
        banks.append(
            {
                "bank_id": p.bank_id,
                "name": p.name,
                "country": p.country,
                "currency": p.currency,
                "issuer": root,
                "registration_endpoint": f"{root}/register",
                "token_endpoint": f"{root}/token",
                "authorization_endpoint": f"{root}/authorize",
                "jwks_uri": f"{root}/.well-known/jwks.json",
                "aisp_base": f"{root}/open-banking/v3.1/aisp",
                "card_controls_base": f"{root}/card-controls/v1",
            }
        )
    return web.json_response({"banks": banks})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
