"""``chatbank``: run the whole system in one process (``up``) or one service on its own."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from chatbank.reach import UnreachableError, probe, start_bot
from chatbank.run import PortInUseError, run_up


def _bank(args: argparse.Namespace) -> int:
    from bank_mock.__main__ import main as bank_main

    bank_main()
    return 0


def _warn_if_unreachable(command: str, service: str, url: str, setting: str) -> None:
    """A service this one needs later is not answering yet: say so in one line, start anyway."""
    problem = asyncio.run(probe(service, url, setting))
    if problem is not None:
        print(f"chatbank {command}: warning: {problem}", file=sys.stderr, flush=True)


def _broker(args: argparse.Namespace) -> int:
    from consent.__main__ import main as broker_main
    from consent.settings import BrokerSettings

    directory = BrokerSettings().bank_directory_url
    _warn_if_unreachable("broker", "the bank directory", directory, "CONSENT_BANK_DIRECTORY_URL")
    broker_main()
    return 0


def _bot(args: argparse.Namespace) -> int:
    from bot.__main__ import main as bot_main
    from bot.settings import BotSettings

    broker = f"{BotSettings().broker_url.rstrip('/')}/openapi.json"
    _warn_if_unreachable("bot", "the consent broker", broker, "BOT_BROKER_URL")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(bot_main(start_bot))
    return 0


def _localchat(args: argparse.Namespace) -> int:
    from localchat.__main__ import main as localchat_main

    localchat_main()
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from bot.settings import BotSettings
    from bot.store.db import upgrade as upgrade_bot
    from consent.settings import BrokerSettings
    from consent.store.migrate import upgrade

    settings = BrokerSettings()
    upgrade(settings.database_url)
    print(f"broker database is at the latest schema ({settings.database_url.split('@')[-1]})")
    bot = BotSettings()
    upgrade_bot(bot.database_url)
    print(f"bot database is at the latest schema ({bot.database_url.split('@')[-1]})")
    return 0


def _demo_fraud(args: argparse.Namespace) -> int:
    from bank_mock.settings import BankSettings
    from chatbank.demo import DemoError, inject_fraud

    url = args.bank_url or BankSettings().base_url()
    try:
        answer = asyncio.run(
            inject_fraud(url, args.bank, args.customer, amount=args.amount, merchant=args.merchant)
        )
    except DemoError as e:
        print(f"chatbank demo fraud: {e}", file=sys.stderr)
        return 2
    print(fraud_outcome(answer, args))
    return 0


def _demo_pay(args: argparse.Namespace) -> int:
    from bank_mock.settings import BankSettings
    from chatbank.demo import DemoError, book_payments

    url = args.bank_url or BankSettings().base_url()
    try:
        answer = asyncio.run(
            book_payments(
                url,
                args.bank,
                args.customer,
                count=args.count,
                merchant=args.merchant,
                amount=args.amount,
                pending=args.pending,
            )
        )
    except DemoError as e:
        print(f"chatbank demo pay: {e}", file=sys.stderr)
        return 2
    for p in answer["payments"]:
        print(f"booked {p['Amount']} {p['Currency']} at {p['merchant']} ({p['status'].lower()})")
    if not answer.get("notified_apps"):
        print(
            f"no app watches this account: link {args.bank} as {args.customer} with receipts "
            "ticked, then run this again."
        )
    return 0


def fraud_outcome(answer: dict[str, Any], args: argparse.Namespace) -> str:
    """What the demo did, and whether anyone will see the alert."""
    alerts = answer.get("alerts") or []
    if not alerts:
        return "booked the payment, but the fraud rules did not flag it; try a larger --amount"
    apps = answer.get("notified_apps") or []
    if not apps:
        return (
            f"booked a suspicious payment at {args.merchant} and {args.bank} raised alert "
            f"{alerts[0]}, but nobody will see it: no app is linked to {args.customer}'s "
            f"account at {args.bank}. Link it in the chat first (/link, log in as "
            f"{args.customer}, keep fraud alerts ticked), then run this again."
        )
    return (
        f"booked a suspicious payment at {args.merchant}; alert {alerts[0]} went to "
        f"{', '.join(apps)} and shows in the chat of whoever linked {args.customer} "
        "with fraud alerts"
    )


def _keys_rotate(args: argparse.Namespace) -> int:
    from chatbank.keys import rotate
    from consent.settings import BrokerSettings

    version, changed = asyncio.run(rotate(BrokerSettings()))
    print(f"KEK version {version} is now current; {changed} data keys re-wrapped")
    return 0


def _keys_retire(args: argparse.Namespace) -> int:
    from chatbank.keys import RetireRefusedError, retire
    from consent.settings import BrokerSettings

    try:
        dropped = asyncio.run(retire(BrokerSettings(), args.version))
    except RetireRefusedError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    if dropped:
        print("retired KEK versions " + ", ".join(str(v) for v in dropped))
    else:
        print("no KEK version can be retired: every old one still wraps data keys")
    return 0


def _dead_letters(args: argparse.Namespace) -> int:
    from chatbank.outbox import print_dead_letters
    from consent.settings import BrokerSettings

    return asyncio.run(print_dead_letters(BrokerSettings().database_url, args.limit))


def _security_log(args: argparse.Namespace) -> int:
    from consent.settings import BrokerSettings
    from consent.store.security_log import read_recent

    entries = asyncio.run(read_recent(BrokerSettings().database_url, args.limit))
    for e in reversed(entries):  # oldest first, like a log file
        print(f"{e.at.isoformat()}  {e.client_id or '-':<20}  {e.method:<6} {e.route}  {e.reason}")
    if not entries:
        print("no refusals recorded")
    return 0


def _up(args: argparse.Namespace) -> int:
    if args.demo_payments:  # the bank books a card payment this often: receipts arrive live
        os.environ["BANK_DEMO_PAYMENTS_EVERY_S"] = str(args.demo_payments)
    folder = Path(args.data_dir)
    (folder / "keys").mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_up(folder))
    return 0


def _version() -> str:
    try:
        return metadata.version("chatbank")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def _cluster(args: argparse.Namespace) -> int:
    from chatbank.cluster import ClusterConfig, run_cluster
    from chatbank.haproxy import haproxy_path

    config = ClusterConfig(
        broker_database_url=args.database_url,
        bot_database_url=args.bot_database_url,
        folder=Path(args.data_dir),
        brokers=args.brokers,
        bots=args.bots,
        proxy=args.proxy,
    )
    if args.proxy == "haproxy" and haproxy_path() is None:
        print("chatbank cluster: haproxy is not installed (apt-get install haproxy)")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_cluster(config))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatbank", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the whole system on its embedded default (Ctrl-C stops it)")
    up.add_argument(
        "--data-dir", default="data", help="where keys and databases live (default: ./data)"
    )
    up.add_argument(
        "--demo-payments",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="book a card payment this often on a linked account (receipts demo; default: off)",
    )
    up.set_defaults(func=_up)
    cluster = sub.add_parser(
        "cluster",
        help="N brokers and N bots (webhook mode) on PostgreSQL behind round-robin proxies",
    )
    cluster.add_argument(
        "--database-url", required=True, help="the broker's PostgreSQL database (postgresql://…)"
    )
    cluster.add_argument(
        "--bot-database-url",
        required=True,
        help="the bot's database: another database, the platform's side of the trust boundary",
    )
    cluster.add_argument("--brokers", type=int, default=2, help="broker processes (default 2)")
    cluster.add_argument("--bots", type=int, default=2, help="bot processes (default 2)")
    cluster.add_argument(
        "--data-dir", default="data/cluster", help="keys and logs (default: ./data/cluster)"
    )
    cluster.add_argument(
        "--proxy",
        choices=("python", "haproxy"),
        default="python",
        help="the load balancer in front of each group: python (built in, the default) or "
        "haproxy (Debian's haproxy, as in production; a few times cheaper under load)",
    )
    cluster.set_defaults(func=_cluster)
    bank = sub.add_parser("bank", help="run the mock banks alone (settings: BANK_* in .env)")
    bank.set_defaults(func=_bank)
    broker = sub.add_parser(
        "broker", help="run the consent broker alone (settings: CONSENT_* in .env)"
    )
    broker.set_defaults(func=_broker)
    sub.add_parser("bot", help="run the bot alone (settings: BOT_* in .env)").set_defaults(
        func=_bot
    )
    sub.add_parser(
        "localchat", help="run the local Telegram stand-in and chat page alone (LOCALCHAT_*)"
    ).set_defaults(func=_localchat)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser(
        "upgrade", help="migrate the broker's and the bot's databases to the latest schema"
    ).set_defaults(func=_db_upgrade)
    demo = sub.add_parser("demo", help="demonstrations against a running system")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    fraud = demo_sub.add_parser(
        "fraud", help="book a suspicious card payment so a fraud alert shows up in the chat"
    )
    fraud.add_argument("--bank", default="northwind", help="bank id (default: northwind)")
    fraud.add_argument("--customer", default="demo1", help="the bank's test customer")
    fraud.add_argument("--amount", default="2750.00", help="in EUR (default: 2750.00)")
    fraud.add_argument("--merchant", default="Luxe Watches")
    fraud.add_argument("--bank-url", default="", help="default: the BANK_* settings")
    fraud.set_defaults(func=_demo_fraud)
    paying = demo_sub.add_parser(
        "pay", help="book realistic card payments so receipts show up in the chat"
    )
    paying.add_argument("--bank", default="northwind", help="bank id (default: northwind)")
    paying.add_argument("--customer", default="demo1", help="the bank's test customer")
    paying.add_argument("--count", type=int, default=1, help="payments at once (a burst), 1-50")
    paying.add_argument("--merchant", default=None, help="default: a local merchant at random")
    paying.add_argument("--amount", default=None, help="default: the merchant's usual range")
    paying.add_argument("--pending", action="store_true", help="book them as pending")
    paying.add_argument("--bank-url", default="", help="default: the BANK_* settings")
    paying.set_defaults(func=_demo_pay)
    keys = sub.add_parser("keys", help="key management")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    keys_sub.add_parser(
        "rotate", help="new key-encryption key; re-wrap every data key"
    ).set_defaults(func=_keys_rotate)
    retire_cmd = keys_sub.add_parser(
        "retire", help="drop KEK versions no data key uses (never the current one)"
    )
    retire_cmd.add_argument(
        "--version", type=int, default=None, help="retire this version only (refused if in use)"
    )
    retire_cmd.set_defaults(func=_keys_retire)
    outbox = sub.add_parser("outbox", help="the broker's outbox (settings: CONSENT_* in .env)")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    dead = outbox_sub.add_parser(
        "dead-letters", help="messages the relay gave up on (blocked users, permanent failures)"
    )
    dead.add_argument("--limit", type=int, default=50, help="newest first (default: 50)")
    dead.set_defaults(func=_dead_letters)
    security = sub.add_parser(
        "security-log",
        help="the broker's refusals that concerned no subject of the caller (bad credentials, "
        "probes of other clients' resources, clients over their limit)",
    )
    security.add_argument("--limit", type=int, default=50, help="newest N (default: 50)")
    security.set_defaults(func=_security_log)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (PortInUseError, UnreachableError) as e:
        print(f"chatbank: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a single service started with web.run_app
        if e.errno != errno.EADDRINUSE:
            raise
        print(
            f"chatbank: {e.strerror or e}. Is chatbank already running? Stop it, or set the "
            "service's *_PORT in .env to another port.",
            file=sys.stderr,
        )
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
