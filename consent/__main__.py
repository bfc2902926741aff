"""``python -m consent``: run the consent broker (settings: ``CONSENT_*``)."""

from __future__ import annotations

import logging

from aiohttp import web

from consent.app import create_app
from consent.settings import BrokerSettings
from ops.gc_tuning import tune_gc


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = BrokerSettings()
    app = create_app(settings)
    tune_gc(app)  # a server process: the collector's settings for one (ops.gc_tuning)
    web.run_app(app, host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
