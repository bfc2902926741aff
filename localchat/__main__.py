"""Run localchat: ``python -m localchat``."""

from __future__ import annotations

import logging

from aiohttp import web

from localchat.app import create_app
from localchat.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    settings = Settings()
    web.run_app(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
