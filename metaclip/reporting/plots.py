"""The data card's plots, as PNG bytes (matplotlib's Agg canvas, no pyplot: no display needed)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

HEAD_COLOR, TAIL_COLOR = "#f4cccc", "#d9ead3"
BEFORE, AFTER, EXPECTED = "#1f4e79", "#c55a11", "#7f7f7f"


def _figure(width: float, height: float) -> Figure:
    """A figure on the Agg canvas, outside pyplot: no global state, safe in worker threads."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def _sorted_desc(counts: np.ndarray) -> np.ndarray:
    values = np.asarray(counts, dtype=np.float64)
    return np.sort(values[values > 0])[::-1]  # log axes: unmatched entries are left out


def _rank_panel(ax: Any, before: np.ndarray, t: float, after: np.ndarray | None,
                expected: np.ndarray | None) -> None:
    """Counts by rank, log-log: the head (count > t) shaded red, the tail green."""
    b = _sorted_desc(before)
    n_head = int((b > t).sum())
    ranks = np.arange(1, len(b) + 1)
    if n_head:
        ax.axvspan(0.8, n_head + 0.5, color=HEAD_COLOR, label=f"head: {n_head:,} entries > t")
    ax.axvspan(n_head + 0.5, max(len(b), 2) * 1.2, color=TAIL_COLOR, label="tail")
    ax.plot(ranks, b, color=BEFORE, lw=1.6, label="before balancing")
    if expected is not None:
        e = _sorted_desc(expected)
        ax.plot(np.arange(1, len(e) + 1), e, color=EXPECTED, lw=1.2, ls="--",
                label="after, expected")
    if after is not None:
        a = _sorted_desc(after)
        ax.plot(np.arange(1, len(a) + 1), a, color=AFTER, lw=1.4, label="after (curated)")
    ax.axhline(t, color="black", lw=1, ls=":", label=f"t = {t:,.4g}")
    ax.set(xscale="log", yscale="log", xlabel="entry rank (by count)", ylabel="matches",
           title="entry counts, sorted")
    ax.set_xlim(0.8, max(len(b), 2) * 1.2)
    ax.set_ylim(bottom=0.5)  # counts are whole: expected counts far below 1 would flatten the rest
    ax.legend(fontsize=8, loc="lower left")


def _cumulative_panel(ax: Any, before: np.ndarray, t: float, after: np.ndarray | None) -> None:
    """The paper's curve: cumulative matches over entries sorted from tail to head."""
    values = np.asarray(before, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    order = order[values[order] > 0]
    x = np.arange(1, len(order) + 1)
    n_tail = int((values[order] <= t).sum())
    ax.plot(x, np.cumsum(values[order]), color=BEFORE, lw=1.6, label="before (t = inf)")
    if after is not None:
        kept = np.cumsum(np.asarray(after, dtype=np.float64)[order])
        ax.plot(x, kept, color=AFTER, lw=1.4, label=f"after (t = {t:,.4g})")
    if n_tail < len(order):
        ax.axvspan(n_tail + 0.5, len(order) + 0.5, color=HEAD_COLOR, label="head")
    ax.set(yscale="log", xlabel="entries, tail to head", ylabel="cumulative matches",
           title="cumulative matches (as in the paper)")
    ax.legend(fontsize=8, loc="upper left")


def count_distribution_png(
    before: np.ndarray,
    t: float,
    after: np.ndarray | None = None,
    expected_after: np.ndarray | None = None,
    title: str = "",
) -> bytes:
    """Sorted counts (log-log) with the t line and head/tail, beside the cumulative curve."""
    fig = _figure(12, 4.6)
    left, right = fig.subplots(1, 2)
    _rank_panel(left, before, t, after, expected_after)
    _cumulative_panel(right, before, t, after if after is not None else expected_after)
    if title:
        fig.suptitle(title, fontsize=9)
    return _png(fig)


def expected_size_png(
    ts: np.ndarray,
    sizes: np.ndarray,
    t: float,
    success_rate: float = 1.0,
    targets: Sequence[dict[str, Any]] = (),
    xlabel: str = "t",
) -> bytes:
    """Expected curated (and downloaded) size against t, the chosen t and any targets marked
    (`xlabel`: what t is, t_en for the worldwide recipe)."""
    fig = _figure(7, 4.6)
    ax = fig.subplots()
    ax.plot(ts, sizes, color=BEFORE, lw=1.8, marker=".", ms=4, label="expected curated")
    if success_rate < 1:
        ax.plot(ts, sizes * success_rate, color=AFTER, lw=1.2, ls="--",
                label=f"expected downloaded ({success_rate:.0%})")
    at_t = float(np.interp(t, ts, sizes))
    ax.axvline(t, color="black", lw=1, ls=":", label=f"{xlabel} = {t:,.4g}: {at_t:,.0f} pairs")
    for row in targets:
        if row.get("t") is not None:
            ax.plot([row["t"]], [row["target_downloaded"]], "v", color=AFTER, ms=8)
            ax.annotate(f"{row['target_downloaded']:,.0f} at {xlabel}={row['t']:,.4g}",
                        (row["t"], row["target_downloaded"]), textcoords="offset points",
                        xytext=(6, -12), fontsize=8)
    ax.set(xscale="log", xlabel=xlabel, ylabel="pairs", title=f"expected size against {xlabel}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _png(fig)


# The languages plot's bars: (row key, label, colour); a series no row has is left out.
_LANGUAGE_BARS = (
    ("pairs_matched", "pairs matched", BEFORE),
    ("pairs_distinct", "distinct pairs matched", "#9fc5e8"),
    ("pairs_curated", "pairs curated", AFTER),
    ("expected_curated", "expected curated", EXPECTED),
)


def languages_png(rows: Sequence[dict[str, Any]]) -> bytes:
    """Per language (most matched at the top), its pairs matched and curated, log scale."""
    fig = _figure(8, max(3.0, 0.42 * len(rows) + 1.2))
    ax = fig.subplots()
    bars = [b for b in _LANGUAGE_BARS if any(r.get(b[0]) is not None for r in rows)]
    y = np.arange(len(rows))
    height = 0.8 / max(1, len(bars))
    smallest = np.inf
    for i, (key, label, color) in enumerate(bars):
        values = np.array([float(r.get(key) or 0) for r in rows])
        smallest = min(smallest, values[values > 0].min(initial=np.inf))
        ax.barh(y + (i - (len(bars) - 1) / 2) * height, values, height, color=color,
                label=label, edgecolor="black", linewidth=0.3)
    ax.set_yticks(y, [r["language"] for r in rows])
    ax.invert_yaxis()  # the most matched language first
    ax.set(xscale="log", xlabel="pairs", title="top languages: pairs matched and curated")
    if np.isfinite(smallest):  # log axis: start below the smallest bar, not at 1
        ax.set_xlim(left=smallest / 2)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def comparison_png(
    a: np.ndarray, b: np.ndarray, t_a: float, t_b: float, labels: tuple[str, str] = ("a", "b")
) -> bytes:
    """Both runs' sorted counts, as shares of their matches so pools of any size compare."""
    fig = _figure(7, 4.6)
    ax = fig.subplots()
    for counts, t, label, color in ((a, t_a, labels[0], BEFORE), (b, t_b, labels[1], AFTER)):
        values = _sorted_desc(counts)
        total = values.sum() or 1.0
        ax.plot(np.arange(1, len(values) + 1), values / total, color=color, lw=1.5, label=label)
        ax.axhline(t / total, color=color, lw=1, ls=":", label=f"{label}: t = {t:,.4g}")
    ax.set(xscale="log", yscale="log", xlabel="entry rank", ylabel="share of matches",
           title="entry count distributions")
    ax.legend(fontsize=8, loc="lower left")
    return _png(fig)
