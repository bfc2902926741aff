"""The spending chart: horizontal bars per category, this period against the one before, drawn
with matplotlib's Agg backend into a PNG held in memory (never written, never kept).

Everything written on the chart arrives already formatted in the user's language and locale
(:mod:`bot.views` formats the amounts from Decimal with Babel); only the bars' lengths pass
through float, as pixels must. One panel per currency: amounts in different currencies are
never drawn on one axis or added up.

Arabic: matplotlib 3.11 lays text out with libraqm (HarfBuzz shaping, FriBiDi ordering), so
Arabic labels are given in logical order and come out joined and right to left (pre-shaping
them with arabic-reshaper and python-bidi, as older matplotlib needed, now reverses them:
measured, see tests/bot/test_insights_chart.py). The font list puts Noto Sans Arabic (from
fonts-noto-core) behind Noto Sans, DejaVu Sans last. The axes are mirrored for Arabic: bars grow
from the right, labels stand on the right.

Rendering is CPU work of ~50-100 ms, so :func:`render` runs it on one dedicated worker thread:
the event loop keeps serving other chats, and at most one figure exists at a time (bounded
memory). The figure has a fixed size, at most :data:`MAX_BARS` bars per panel and
:data:`MAX_PANELS` panels.
"""

from __future__ import annotations

import asyncio
import io
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

MAX_BARS = 8  # categories drawn per currency (the caption lists them all)
MAX_PANELS = 3  # currencies drawn (the caption lists them all)
WIDTH_IN, DPI = 8.0, 100
FONTS = ["Noto Sans", "Noto Sans Arabic", "DejaVu Sans"]
NOW_COLOUR, BEFORE_COLOUR = "#2a6fdb", "#b8c7e0"
_BIDI_CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")


@dataclass(frozen=True, slots=True)
class Bar:
    label: str  # the category, in the user's language
    now: Decimal
    before: Decimal
    now_text: str  # the amount as the user reads it ("£1,067.30", "1 067,30 zł")


@dataclass(frozen=True, slots=True)
class Panel:
    title: str  # the currency's heading, e.g. "GBP · £4,649.09"
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class ChartSpec:
    title: str
    now_label: str  # legend: this period
    before_label: str  # legend: the period before
    panels: tuple[Panel, ...]
    rtl: bool = False


def visual(text: str) -> str:
    """``text`` as matplotlib is given it: the bidi marks and isolates Babel and
    :class:`bot.i18n.Tr` put in for chat clients dropped (fonts have no glyph for them;
    matplotlib orders the line itself)."""
    return _BIDI_CONTROLS.sub("", text)


@lru_cache(maxsize=1)
def _setup() -> Any:
    """matplotlib, imported on first use (the bot starts without it) with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    available = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [f for f in FONTS if f in available] or ["DejaVu Sans"]
    matplotlib.rcParams["font.family"] = fonts
    matplotlib.rcParams["svg.fonttype"] = "none"
    return Figure


def render_png(spec: ChartSpec) -> bytes:
    """The chart as PNG bytes (synchronous: call :func:`render` from the event loop)."""
    figure_class = _setup()
    panels = spec.panels[:MAX_PANELS] or (Panel("", ()),)
    rows = sum(max(1, len(p.bars[:MAX_BARS])) for p in panels)
    height = 1.3 + 0.55 * rows + 0.6 * len(panels)
    fig = figure_class(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    ratios = [max(1, len(p.bars[:MAX_BARS])) for p in panels]
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=ratios)[:, 0]
    fig.suptitle(visual(spec.title), fontsize=14, fontweight="bold")
    for ax, panel in zip(axes, panels, strict=True):
        _draw_panel(ax, panel, spec)
    handles = [
        _patch(NOW_COLOUR, visual(spec.now_label)),
        _patch(BEFORE_COLOUR, visual(spec.before_label)),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    fig.clear()
    return out.getvalue()


def _patch(colour: str, label: str) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, label=label)


def _draw_panel(ax: Any, panel: Panel, spec: ChartSpec) -> None:
    bars = panel.bars[:MAX_BARS]
    ax.set_title(visual(panel.title), fontsize=11, loc="right" if spec.rtl else "left")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelbottom=False, length=0)
    if not bars:
        ax.set_yticks([])
        return
    positions = list(range(len(bars)))
    now = [float(b.now) for b in bars]  # pixel lengths only; the numbers come as text
    before = [float(b.before) for b in bars]
    ax.barh([p + 0.2 for p in positions], before, height=0.38, color=BEFORE_COLOUR)
    ax.barh([p - 0.2 for p in positions], now, height=0.38, color=NOW_COLOUR)
    ax.set_yticks(positions, [visual(b.label) for b in bars], fontsize=11)
    ax.invert_yaxis()  # the biggest first, at the top
    longest = max([*now, *before, 1.0])
    ax.set_xlim(0, longest * 1.35)
    align = "left"
    if spec.rtl:
        ax.invert_xaxis()  # bars grow from the right
        ax.yaxis.tick_right()
        ax.spines["left"].set_visible(False)
        align = "right"
    ax.tick_params(axis="y", length=0)
    for p, value, bar in zip(positions, now, bars, strict=True):
        ax.text(
            value + longest * 0.02,
            p - 0.2,
            visual(bar.now_text),
            va="center",
            ha=align,
            fontsize=10,
        )


async def render(spec: ChartSpec) -> bytes:
    """The PNG, drawn on the chart thread (off the event loop, one figure at a time)."""
    return await asyncio.get_running_loop().run_in_executor(_executor, render_png, spec)
