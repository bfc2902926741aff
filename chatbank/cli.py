"""``chatbank``: run the whole system in one process (``up``) or one service on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from chatbank.run import run_up


def _bank(args: argparse.Namespace) -> int:
    from bank_mock.__main__ import main as bank_main

    bank_main()
    return 0


def _broker(args: argparse.Namespace) -> int:
    from consent.__main__ import main as broker_main

    broker_main()
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from consent.settings import BrokerSettings
    from consent.store.migrate import upgrade

    settings = BrokerSettings()
    upgrade(settings.database_url)
    print(f"broker database is at the latest schema ({settings.database_url.split('@')[-1]})")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    from chatbank.keys import rotate
    from consent.settings import BrokerSettings

    version, changed = asyncio.run(rotate(BrokerSettings()))
    print(f"KEK version {version} is now current; {changed} data keys re-wrapped")
    return 0


def _up(args: argparse.Namespace) -> int:
    folder = Path(args.data_dir)
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_up(folder))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system on its embedded default (Ctrl-C stops it)")
    up.add_argument(
        "--data-dir", default="data", help="where keys and databases live (default: ./data)"
    )
    up.set_defaults(func=_up)
    bank = sub.add_parser("bank", help="run the mock banks alone (settings: BANK_* in .env)")
    bank.set_defaults(func=_bank)
    broker = sub.add_parser(
        "broker", help="run the consent broker alone (settings: CONSENT_* in .env)"
    )
    broker.set_defaults(func=_broker)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser(
        "upgrade", help="migrate the broker's database to the latest schema"
    ).set_defaults(func=_db_upgrade)
    keys = sub.add_parser("keys", help="key management")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate", help="new key-encryption key; re-wrap every data key"
    ).set_defaults(func=_keys_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
