"""``POST /events/{bank_id}``: the banks push signed events here (RFC 8935 style, 202)."""

from __future__ import annotations

from aiohttp import web

from consent.api.keys import BROKER, JWKS, RELAY
from consent.events.ingest import ingest
from consent.events.verify import verify_set
from consent.service.errors import BrokerError

routes = web.RouteTableDef()


@routes.post("/events/{bank_id}")
async def bank_event(request: web.Request) -> web.Response:
    """Verify the SET, handle it once, and wake the relay if it queued a message."""
    broker = request.app[BROKER]
    bank_id = request.match_info["bank_id"]
    if request.content_type != "application/jwt":
        raise BrokerError(415, "unsupported_media_type", "send application/jwt")
    bank = await broker.bank(bank_id)
    cred = await broker.credentials(bank_id)
    token = (await request.read()).decode("ascii", errors="replace").strip()
    claims = await verify_set(
        token,
        jwks=request.app[JWKS],
        jwks_uri=bank.info.jwks_uri,
        issuer=bank.info.issuer,
        audience=cred.client_id,
        now=broker.clock(),
    )
    outcome = await ingest(broker, bank_id, claims)
    if outcome == "processed":
        request.app[RELAY].wake.set()
    return web.json_response({"status": outcome}, status=202)
