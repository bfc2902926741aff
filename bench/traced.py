"""(internal) ``python -m bench.traced``: the broker, the bot or the mock bank as a cluster
process that notes each bench alert's points (:mod:`bench.hops`) in a file of its own.

``CHATBANK_BENCH_SERVICE`` is ``consent``, ``bot`` or ``bank``; the notes go to
``$CHATBANK_BENCH_TRACE_DIR/<service>-<pid>.tsv``. Started by ``bench.alert_latency --postgres``
through :class:`chatbank.cluster.ClusterConfig` (``broker_module`` / ``bot_module``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from bench import hops

SERVICE = "CHATBANK_BENCH_SERVICE"
TRACE_DIR = "CHATBANK_BENCH_TRACE_DIR"


def main() -> None:
    service = os.environ[SERVICE]
    note = hops.file_note(Path(os.environ[TRACE_DIR]) / f"{service}-{os.getpid()}.tsv")
    if service == "consent":
        from consent.__main__ import main as broker_main

        hops.install_broker_trace(note)
        broker_main()
    elif service == "bot":
        from bot.__main__ import main as bot_main

        hops.install_bot_trace(note)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(bot_main())
    elif service == "bank":
        from bank_mock.__main__ import main as bank_main

        hops.install_bank_trace(note)
        bank_main()
    else:
        raise SystemExit(f"{SERVICE} must be consent, bot or bank, not {service!r}")


if __name__ == "__main__":
    main()
