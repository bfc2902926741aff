"""Spending chart render time and memory: matplotlib (Agg, what the bot uses) against Pillow.

Each renderer runs in a fresh child process, so import cost and memory are its own: the time
and resident memory its import adds, then N renders of the same English and Arabic charts
(8 categories, 2 currencies) — median and p95 per chart, the PNG's size, and the process's
peak RSS. The Pillow renderer here is a minimal bar chart of the same specification drawn with
ImageDraw (Arabic through Pillow's libraqm layout when it has one), as the lighter candidate. It
is not the same chart (no legend, no axes, one font per chart with no fallback, so Latin letters
and currency signs in an Arabic chart come out as boxes): the figures flatter it.

    python -m bench.insights_chart [--renders 40]
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import resource
import statistics
import time
from decimal import Decimal
from typing import Any

WIDTH, ROW, TOP = 800, 44, 70
FONTS = (
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansArabic-Regular.ttf",
)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _specs() -> list[Any]:
    from bot import insight_views
    from bot.broker import Insight
    from bot.i18n import tr

    categories = ["groceries", "eating_out", "transport", "fuel", "shopping", "health",
                  "travel", "utilities"]  # fmt: skip
    data = Insight.model_validate(
        {
            "from": "2026-10-01",
            "to": "2026-10-31",
            "previous_from": "2026-09-01",
            "previous_to": "2026-09-30",
            "currencies": [
                {
                    "currency": currency,
                    "total": "1000.00",
                    "count": 40,
                    "categories": [
                        {
                            "category": c,
                            "total": str(Decimal(900 - 100 * i) + Decimal("0.45")),
                            "count": 5,
                            "previous_total": str(Decimal(700 - 50 * i)),
                        }
                        for i, c in enumerate(categories)
                    ],
                }
                for currency in ("GBP", "USD")
            ],
        }
    )
    return [
        insight_views.chart(tr(lang), data, this_label="now", before_label="before")
        for lang in ("en", "ar")
    ]


def _pillow_png(spec: Any) -> bytes:
    """The same chart drawn with Pillow's ImageDraw."""
    from PIL import Image, ImageDraw, ImageFont, features

    from bot.chart import BEFORE_COLOUR, NOW_COLOUR, visual

    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    font_path = FONTS[1] if spec.rtl else FONTS[0]
    font = ImageFont.truetype(font_path, 15, layout_engine=engine)
    title_font = ImageFont.truetype(font_path, 19, layout_engine=engine)
    rows = sum(len(p.bars) for p in spec.panels)
    height = TOP + rows * ROW + len(spec.panels) * 36 + 40
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    direction = "rtl" if spec.rtl and engine == ImageFont.Layout.RAQM else None
    draw.text((WIDTH / 2, 24), visual(spec.title), fill="black", font=title_font, anchor="mm",
              direction=direction)  # fmt: skip
    y = TOP
    label_w, left = 200, 20
    for panel in spec.panels:
        draw.text((left, y), visual(panel.title), fill="black", font=font, direction=direction)
        y += 30
        longest = max([float(b.now) for b in panel.bars] + [float(b.before) for b in panel.bars])
        scale = (WIDTH - label_w - 160) / longest
        for bar in panel.bars:
            now, before = float(bar.now) * scale, float(bar.before) * scale
            if spec.rtl:
                x0 = WIDTH - label_w
                draw.rectangle((x0 - now, y, x0, y + 16), fill=NOW_COLOUR)
                draw.rectangle((x0 - before, y + 18, x0, y + 34), fill=BEFORE_COLOUR)
                draw.text((x0 + 8, y + 8), visual(bar.label), fill="black", font=font,
                          anchor="lm", direction=direction)  # fmt: skip
                draw.text((x0 - now - 8, y + 8), visual(bar.now_text), fill="black", font=font,
                          anchor="rm")  # fmt: skip
            else:
                x0 = label_w
                draw.rectangle((x0, y, x0 + now, y + 16), fill=NOW_COLOUR)
                draw.rectangle((x0, y + 18, x0 + before, y + 34), fill=BEFORE_COLOUR)
                draw.text((x0 - 8, y + 8), visual(bar.label), fill="black", font=font,
                          anchor="rm")  # fmt: skip
                draw.text((x0 + now + 8, y + 8), visual(bar.now_text), fill="black", font=font,
                          anchor="lm")  # fmt: skip
            y += ROW
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _worker(name: str, renders: int, queue: Any) -> None:
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    if name == "matplotlib":
        from bot.chart import _setup, render_png

        _setup()
        render = render_png
    else:
        import PIL.ImageDraw  # noqa: F401

        render = _pillow_png
    import_s = time.perf_counter() - t0
    rss_import = _rss_mb()
    specs = _specs()
    t1 = time.perf_counter()
    first = [render(s) for s in specs]  # the first of each: fonts loaded, caches filled
    first_s = (time.perf_counter() - t1) / len(specs)
    times: list[float] = []
    for i in range(renders):
        spec = specs[i % len(specs)]
        t = time.perf_counter()
        render(spec)
        times.append(time.perf_counter() - t)
    times.sort()
    queue.put(
        {
            "name": name,
            "import_ms": import_s * 1000,
            "import_mb": rss_import - rss0,
            "first_ms": first_s * 1000,
            "median_ms": statistics.median(times) * 1000,
            "p95_ms": times[int(0.95 * (len(times) - 1))] * 1000,
            "png_kb": sum(len(p) for p in first) / len(first) / 1024,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_mb": _rss_mb(),
        }
    )


def measure(name: str, renders: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")  # a clean interpreter for each: nothing imported before
    queue = ctx.Queue()
    child = ctx.Process(target=_worker, args=(name, renders, queue))
    child.start()
    result: dict[str, Any] = queue.get(timeout=300)
    child.join(60)
    return result


ROWS = (
    ("import_ms", "import time (ms)"),
    ("import_mb", "RSS added by the import (MB)"),
    ("first_ms", "first chart (ms)"),
    ("median_ms", "chart, median (ms)"),
    ("p95_ms", "chart, p95 (ms)"),
    ("png_kb", "PNG size (KiB)"),
    ("peak_rss_mb", "process peak RSS (MB)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=40)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    results = [measure(name, args.renders) for name in ("matplotlib", "pillow")]
    print(f"spending chart, 8 categories x 2 currencies, en + ar, {args.renders} renders each\n")
    print(f"{'':34}{'matplotlib (Agg)':>18}{'Pillow (ImageDraw)':>20}")
    for key, label in ROWS:
        print(f"{label:34}{results[0][key]:>18.1f}{results[1][key]:>20.1f}")
    print(
        "\nThe Pillow chart is the cheaper one but not the same chart: no legend, no axes, and no"
        "\nfont fallback (an Arabic font lacks Latin letters and currency signs, drawn as boxes);"
        "\nthe bot draws with matplotlib, whose one font list covers mixed-script labels."
    )
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
