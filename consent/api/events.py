"""``POST /events/{bank_id}``: the banks push signed events here (RFC 8935 style, 202)."""

from __future__ import annotations

from typing import Any

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
    token = (await request.read()).decode("ascii", errors="replace").strip()

    async def verify(audience: str) -> dict[str, Any]:
        return await verify_set(
            token,
            jwks=request.app[JWKS],
            jwks_uri=bank.info.jwks_uri,
            issuer=bank.info.issuer,
            audience=audience,
            now=broker.clock(),
        )

    # The audience is the broker's client id at the bank: remembered from the last event that
    # verified, read again (registering if need be) when there is none or the token names
    # another (the registration was healed, here or by another broker process). A token
    # accepted is always for a client id the broker holds or held at that bank, signed by it.
    known = broker.event_audiences.get(bank_id)
    try:
        claims = await verify(known or (await broker.credentials(bank_id)).client_id)
    except BrokerError:
        if known is None or known == (fresh := (await broker.credentials(bank_id)).client_id):
            raise
        claims = await verify(fresh)
        known = fresh
    if known is None:
        known = str(claims["aud"])
    broker.event_audiences[bank_id] = known
    outcome = await ingest(broker, bank_id, claims)
    if outcome == "processed":
        request.app[RELAY].wake.set()
    return web.json_response({"status": outcome}, status=202)
