"""A server process's collector settings (ops.gc_tuning), checked in a process of its own: they
are the whole process's."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from ops.gc_tuning import GEN0_THRESHOLD, OLDER_THRESHOLD

SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, json
    from aiohttp import web
    from aiohttp.test_utils import TestServer
    from ops.gc_tuning import tune_gc

    loaded = [{"start-up": i} for i in range(1000)]  # what a server loads before it serves
    app = web.Application()
    seen = {}

    async def resources(app):
        app["resources"] = [{"resource": i} for i in range(1000)]  # set up on start
        yield

    app.cleanup_ctx.append(resources)
    tune_gc(app)
    seen["threshold"] = gc.get_threshold()
    seen["frozen_before"] = gc.get_freeze_count()

    async def main():
        server = TestServer(app)
        await server.start_server()
        seen["frozen_after"] = gc.get_freeze_count()
        # frozen objects are in no generation the collector walks
        walked = gc.get_objects()
        seen["resources_walked"] = any(o is app["resources"] for o in walked)
        seen["loaded_walked"] = any(o is loaded for o in walked)
        fresh = [{"request": 1}, []]  # allocated while serving: walked as usual
        seen["fresh_walked"] = any(o is fresh for o in gc.get_objects())
        await server.close()

    asyncio.run(main())
    print(json.dumps(seen))
    """
)


def test_a_tuned_server_freezes_what_start_up_allocated_and_collects_less_often() -> None:
    out = subprocess.run(  # noqa: S603 - our own script, run by this interpreter
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["threshold"] == [GEN0_THRESHOLD, OLDER_THRESHOLD, OLDER_THRESHOLD]
    assert seen["frozen_before"] == 0  # nothing frozen until the app has started
    assert seen["frozen_after"] > 2000  # start-up's objects and the resources set up on start
    assert not seen["resources_walked"] and not seen["loaded_walked"]
    assert seen["fresh_walked"]
