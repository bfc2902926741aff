"""Typed application slots of the broker's web app."""

from __future__ import annotations

from aiohttp import web

from consent.events.verify import JwksCache
from consent.outbox.relay import Relay
from consent.receipts.worker import ReceiptWorker
from consent.service.broker import Broker

BROKER = web.AppKey("broker", Broker)
JWKS = web.AppKey("jwks", JwksCache)
RELAY = web.AppKey("relay", Relay)
RECEIPTS = web.AppKey("receipts", ReceiptWorker)
