"""``chatbank``: run everything in one process (``up``) or one service on its own."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def _bank(args: argparse.Namespace) -> int:
    from bank_mock.__main__ import main as bank_main

    bank_main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbank", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system on its embedded default")
    up.set_defaults(func=_bank)
    bank = sub.add_parser("bank", help="run the mock banks alone")
    bank.set_defaults(func=_bank)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
