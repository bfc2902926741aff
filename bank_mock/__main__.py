"""``python -m bank_mock``: serve every simulated bank (host, port, seed, sandbox from settings)."""

from __future__ import annotations

import logging

from aiohttp import web

from bank_mock.app import create_app
from bank_mock.settings import BankSettings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = BankSettings()
    web.run_app(create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
