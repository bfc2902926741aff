"""Typed application slots of the broker's web app."""

from __future__ import annotations

from aiohttp import web

from consent.events.verify import JwksCache
from consent.outbox.relay import Relay
from consent.service.broker import Broker
from consent.service.ratelimit import Limiter

BROKER = web.AppKey("broker", Broker)
LIMITER = web.AppKey("limiter", Limiter)
JWKS = web.AppKey("jwks", JwksCache)
RELAY = web.AppKey("relay", Relay)
