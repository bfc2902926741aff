"""OBIE v3.1.11 account-access-consents: create, read and delete, with client credentials."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from bank_mock.auth.grants import require_grant
from bank_mock.auth.permissions import permission_problem
from bank_mock.errors import BankError
from bank_mock.keys import CLOCK, GRANTS, SETTINGS, bank_of
from bank_mock.models import Consent, ConsentStatus
from bank_mock.obie.accounts import BASE
from bank_mock.obie.serialize import iso
from bank_mock.state import BankState

routes = web.RouteTableDef()


def _client_id(request: web.Request, bank: BankState) -> str:
    grant = require_grant(
        request,
        request.app[GRANTS],
        bank,
        scope="accounts",
        consent_bound=False,
        now=request.app[CLOCK](),
    )
    return grant.client_id


def consent_json(request: web.Request, consent: Consent) -> dict[str, Any]:
    """An ``OBReadConsentResponse1`` document."""
    data: dict[str, Any] = {
        "ConsentId": consent.consent_id,
        "CreationDateTime": iso(consent.created_at),
        "Status": consent.status.value,
        "StatusUpdateDateTime": iso(consent.status_updated_at),
        "Permissions": list(consent.permissions),
    }
    for key, value in (
        ("ExpirationDateTime", consent.expires_at),
        ("TransactionFromDateTime", consent.transaction_from),
        ("TransactionToDateTime", consent.transaction_to),
    ):
        if value is not None:
            data[key] = iso(value)
    base = request.app[SETTINGS].base_url()
    path = BASE.format(bank_id=consent.bank_id) + f"/account-access-consents/{consent.consent_id}"
    return {"Data": data, "Risk": {}, "Links": {"Self": base + path}, "Meta": {"TotalPages": 1}}


def _when(data: dict[str, Any], name: str) -> datetime | None:
    raw = data.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BankError(400, f"{name} must be a date-time string", path=f"Data.{name}")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as e:
        raise BankError(
            400, f"{name} is not ISO 8601", code="UK.OBIE.Field.InvalidDate", path=f"Data.{name}"
        ) from e
    if value.tzinfo is None:
        raise BankError(
            400,
            f"{name} must include a time zone",
            code="UK.OBIE.Field.InvalidDate",
            path=f"Data.{name}",
        )
    return value


def parse_consent_request(
    body: bytes, now: datetime
) -> tuple[list[str], datetime | None, datetime | None, datetime | None]:
    """Validate an ``OBReadConsent1`` body: (permissions, expiry, transactions from, to)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BankError(400, "Body is not valid JSON", code="UK.OBIE.Resource.InvalidFormat") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("Data"), dict):
        raise BankError(400, "Data is required", code="UK.OBIE.Field.Missing", path="Data")
    if not isinstance(doc.get("Risk"), dict):
        raise BankError(400, "Risk is required", code="UK.OBIE.Field.Missing", path="Risk")
    data: dict[str, Any] = doc["Data"]
    unexpected = set(data) - {
        "Permissions",
        "ExpirationDateTime",
        "TransactionFromDateTime",
        "TransactionToDateTime",
    }
    if unexpected:
        name = sorted(unexpected)[0][:40]
        raise BankError(
            400, f"Unexpected field {name}", code="UK.OBIE.Field.Unexpected", path=f"Data.{name}"
        )
    permissions = data.get("Permissions")
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise BankError(
            400,
            "Permissions must be a list of codes",
            code="UK.OBIE.Field.Invalid",
            path="Data.Permissions",
        )
    problem = permission_problem(permissions)
    if problem:
        raise BankError(400, problem, code="UK.OBIE.Field.Invalid", path="Data.Permissions")
    expires = _when(data, "ExpirationDateTime")
    start = _when(data, "TransactionFromDateTime")
    end = _when(data, "TransactionToDateTime")
    if expires is not None and expires <= now:
        raise BankError(
            400,
            "ExpirationDateTime must be in the future",
            code="UK.OBIE.Field.InvalidDate",
            path="Data.ExpirationDateTime",
        )
    if start and end and start > end:
        raise BankError(
            400,
            "TransactionFromDateTime is after TransactionToDateTime",
            code="UK.OBIE.Field.InvalidDate",
            path="Data.TransactionFromDateTime",
        )
    return permissions, expires, start, end


@routes.post(BASE + "/account-access-consents")
async def create_consent(request: web.Request) -> web.Response:
    """Create a consent awaiting the customer's authorisation."""
    bank = bank_of(request)
    client_id = _client_id(request, bank)
    if request.content_type != "application/json":
        raise BankError(415, "Use application/json", path="Content-Type")
    now = request.app[CLOCK]()
    permissions, expires, start, end = parse_consent_request(await request.read(), now)
    consent = Consent(
        consent_id=f"aac-{uuid.uuid4()}",
        bank_id=bank.profile.bank_id,
        client_id=client_id,
        permissions=permissions,
        status=ConsentStatus.AWAITING_AUTHORISATION,
        created_at=now,
        status_updated_at=now,
        expires_at=expires,
        transaction_from=start,
        transaction_to=end,
    )
    bank.consents[consent.consent_id] = consent
    bank.keep("consent", consent.consent_id, consent)
    return web.json_response(consent_json(request, consent), status=201)


def _own_consent(request: web.Request, bank: BankState, client_id: str) -> Consent:
    consent = bank.consents.get(request.match_info["consent_id"])
    if consent is None or consent.client_id != client_id:
        raise BankError(
            400, "Consent not found", code="UK.OBIE.Resource.NotFound", path="ConsentId"
        )
    return consent


@routes.get(BASE + "/account-access-consents/{consent_id}")
async def get_consent(request: web.Request) -> web.Response:
    """Read one of the client's consents."""
    bank = bank_of(request)
    consent = _own_consent(request, bank, _client_id(request, bank))
    return web.json_response(consent_json(request, consent))


@routes.delete(BASE + "/account-access-consents/{consent_id}")
async def delete_consent(request: web.Request) -> web.Response:
    """The client withdraws a consent: it is revoked and its tokens die at once."""
    bank = bank_of(request)
    consent = _own_consent(request, bank, _client_id(request, bank))
    if consent.status != ConsentStatus.REVOKED:
        consent.status = ConsentStatus.REVOKED
        consent.status_updated_at = request.app[CLOCK]()
        bank.keep("consent", consent.consent_id, consent)
    request.app[GRANTS].revoke_consent(consent.consent_id)
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
