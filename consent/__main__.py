"""``python -m consent``: run the consent broker (settings: ``CONSENT_*``)."""

from __future__ import annotations

import logging

from aiohttp import web

from consent.app import create_app
from consent.settings import BrokerSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = BrokerSettings()
    web.run_app(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
