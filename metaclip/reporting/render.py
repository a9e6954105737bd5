"""The files of a data card and of a comparison of two runs: JSON, Markdown (tables of the
card's numbers) and the PNG plots (metaclip.reporting.plots), written atomically. A worldwide
run's card (card["recipe"]) describes t_en and has a Languages section and plot."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson

from metaclip.config.curation import WORLDWIDE_RECIPE
from metaclip.curation.thresholds import ENGLISH
from metaclip.io import storage
from metaclip.reporting.languages import language_slices, top_and_rest
from metaclip.reporting.run_inputs import RunData, datacard_dir
from metaclip.reporting.summary import limits_line

PLOT_FILES = {"distribution": "count_distribution.png", "expected_size": "expected_size.png"}
LANGUAGE_PLOT_FILES = {"languages": "languages.png"}  # a worldwide run's card only


def is_worldwide(card: dict[str, Any]) -> bool:
    return card.get("recipe") == WORLDWIDE_RECIPE


def card_plot_files(card: dict[str, Any]) -> dict[str, str]:
    """The plots a card has, by name: file."""
    files = {"distribution": PLOT_FILES["distribution"]}
    if "expected_size" in card:
        files["expected_size"] = PLOT_FILES["expected_size"]
    if "languages" in card:
        files.update(LANGUAGE_PLOT_FILES)
    return files


def card_json(card: dict[str, Any]) -> bytes:
    """The card as JSON, leaving out the per-entry expected counts (one number per entry)."""
    slim = {k: v for k, v in card.items() if k != "expected_after"}
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
    return orjson.dumps(slim, option=options) + b"\n"


def format_value(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def _md_table(headers: list[str], rows: Iterable[list[Any]]) -> str:
    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else format_value(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _threshold_rows(card: dict[str, Any]) -> list[list[Any]]:
    d = card["distribution"]
    if not is_worldwide(card):
        return [
            ["t", card["t"]],
            ["tail share p (matches on entries counted below t)", d["p"]],
            ["entries over t (head)", d["entries_over_t"]],
        ]
    languages = card["languages"]
    return [
        ["t_en (English's t: it sets p)", card["t"]],
        ["tail share p (English matches on entries counted below t_en; each language's t "
         "gives its own about this share)", d["p"]],
        ["entries over their language's t (head)", d["entries_over_t"]],
        ["languages matched / in metadata",
         f"{languages['languages_matched']:,} / {languages['languages']:,}"],
    ]  # fmt: skip


def overview_rows(card: dict[str, Any]) -> list[list[Any]]:
    """(name, value) rows shared by the Markdown card, the table artifact and the CLI."""
    d, pairs = card["distribution"], card["pairs"]
    rows: list[list[Any]] = [
        *_threshold_rows(card),
        ["entries matched / in metadata", f"{d['entries_matched']:,} / {d['entries']:,}"],
        ["matches (pair, entry)", d["matches_total"]],
        ["matches per matched pair", card.get("matches_per_pair")],
        ["pairs read", pairs.get("read")],
        ["pairs matched", pairs.get("matched")],
    ]
    if pairs.get("unique") is not None:
        rows.append(["distinct (image, text) pairs matched", pairs["unique"]])
    if card.get("images_matched") is not None:
        rows.append(["images matched", card["images_matched"]])
    rows.append(["pairs curated", pairs.get("curated")])
    if "expected_size" in card:
        at = "t_en" if is_worldwide(card) else "t"
        rows.append([f"expected curated size at {at}", card["expected_size"]["at_t"]])
        rows.append(
            [
                "candidate units (images, or pairs when sampled per pair)",
                card["candidates"]["units"],
            ]
        )
    if card.get("seed") is not None:
        rows.append(["seed", card["seed"]])
    if card.get("limits"):
        rows.append(["extraction limits (what was cut or skipped)", limits_line(card["limits"])])
    return rows


def _top_rows(card: dict[str, Any]) -> list[list[Any]]:
    rows = [
        [rank + 1, e["entry"], e["count"], e.get("after", "n/a"), e.get("expected_after", "n/a")]
        for rank, e in enumerate(card["top_before"])
    ]
    if is_worldwide(card):
        for row, e in zip(rows, card["top_before"], strict=True):
            row.insert(2, e["language"])
    return rows


def _top_headers(card: dict[str, Any]) -> list[str]:
    headers = ["rank", "entry", "count before", "count after (curated)", "expected after"]
    return headers[:2] + ["language"] + headers[2:] if is_worldwide(card) else headers


def _size_rows(card: dict[str, Any], every: int = 4) -> list[list[Any]]:
    ts, sizes = card["expected_size"]["t"], card["expected_size"]["pairs"]
    rate = card.get("success_rate", 1.0)
    picked = sorted(set(range(0, len(ts), every)) | {len(ts) - 1, ts.index(card["t"])})
    return [[ts[i], sizes[i], sizes[i] * rate] for i in picked]


def render_markdown(card: dict[str, Any], images: dict[str, str] | None = None) -> str:
    """The card in Markdown; images maps plot names to the links to use (default: file names)."""
    images = images or {**PLOT_FILES, **LANGUAGE_PLOT_FILES}
    parts = [f"# Data card: `{card['output']}`", "", _md_table(["", "value"], overview_rows(card))]
    parts += [
        "",
        "## Entry count distribution",
        "",
        f"![entry counts]({images['distribution']})",
        "",
        _DISTRIBUTION_NOTE[is_worldwide(card)],
        "",
        f"## The {len(card['top_before'])} most frequent entries",
        "",
        _md_table(_top_headers(card), _top_rows(card)),
    ]
    if "languages" in card:
        parts += _languages_markdown(card, images)
    if "expected_size" in card:
        parts += _expected_markdown(card, images)
    return "\n".join(parts) + "\n"


_DISTRIBUTION_NOTE = {
    False: "Entries sorted by count (log-log). Entries above the t line are the head: "
    "balancing caps each of them near t; the tail below is kept whole.",
    True: "English's entries sorted by count (log-log), at t_en. Entries above the line are the "
    "head: balancing caps each of them near t_en; the tail below is kept whole. Every other "
    "language is balanced the same way at its own t (Languages, below).",
}

# Languages table: (header, row key); a column none of whose rows has a value is left out.
_LANGUAGE_COLUMNS = (
    ("t", "t"),
    ("tail share at t", "p"),
    ("entries over t", "entries_over_t"),
    ("matches", "matches"),
    ("pairs matched", "pairs_matched"),
    ("distinct pairs matched", "pairs_distinct"),
    ("pairs curated", "pairs_curated"),
    ("expected curated", "expected_curated"),
)


def _language_rows(card: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The top languages and the rest summed, with the columns some row has a value for."""
    languages = card["languages"]
    head, rest = top_and_rest(languages["rows"], languages["top"])
    rows = head + ([rest] if rest else [])
    columns = [(h, k) for h, k in _LANGUAGE_COLUMNS if any(r.get(k) is not None for r in rows)]
    table = [
        [r["language"], f"{r['entries_matched']:,} / {r['entries']:,}"]
        + [r.get(k) for _, k in columns]
        for r in rows
    ]
    return ["language", "entries matched / in list", *[h for h, _ in columns]], table


def _languages_markdown(card: dict[str, Any], images: dict[str, str]) -> list[str]:
    languages = card["languages"]
    other = languages.get("other_pairs_read")
    read_other = f" {other:,} pairs read were in languages without metadata." if other else ""
    headers, rows = _language_rows(card)
    return [
        "",
        "## Languages",
        "",
        f"t_en = {format_value(languages['t_en'])} gives English the tail share p = "
        f"{languages['p']:.4f}; every other language gets the t whose tail share of its own "
        f"matches is nearest p (MetaCLIP 2's p_to_t). {languages['languages_matched']:,} of "
        f"{languages['languages']:,} languages matched.{read_other}",
        "",
        f"![languages]({images['languages']})",
        "",
        _md_table(headers, rows),
    ]


def _expected_markdown(card: dict[str, Any], images: dict[str, str]) -> list[str]:
    rate = card.get("success_rate", 1.0)
    t = "t_en" if is_worldwide(card) else "t"
    parts = [
        "",
        f"## Expected curated size as a function of {t}",
        "",
        f"![expected size]({images['expected_size']})",
        "",
        "Exact expectation (sum of keep probabilities over the matched candidates), no sampling.",
    ]
    if is_worldwide(card):
        parts.append("At each t_en, every language's t is set again from the p it gives.")
    parts += [
        "",
        _md_table(
            [t, "expected curated", f"expected downloaded at {rate:.0%}"], _size_rows(card)
        ),
    ]
    if card.get("targets"):
        rows = [
            [
                r["target_downloaded"],
                f"{r['success_rate']:.0%}",
                r["target_curated"],
                r["t"] if r["t"] is not None else r.get("note", "unreachable"),
            ]
            for r in card["targets"]
        ]
        parts += [
            "",
            f"## {t} for a target size",
            "",
            _md_table(["downloaded pairs wanted", "success rate", "curated pairs needed", t], rows),
        ]
    return parts


def render_files(run: RunData, card: dict[str, Any]) -> dict[str, bytes]:
    """The PNG plots of a card, by file name."""
    from metaclip.reporting import plots

    ids, title = _distribution_ids(run, card)
    files = {
        PLOT_FILES["distribution"]: plots.count_distribution_png(
            run.counts[ids],
            card["t"],
            after=_part(run.curated_counts, ids),
            expected_after=_part(_array(card.get("expected_after")), ids),
            title=title,
        )
    }
    if "expected_size" in card:
        files[PLOT_FILES["expected_size"]] = plots.expected_size_png(
            np.array(card["expected_size"]["t"]),
            np.array(card["expected_size"]["pairs"]),
            card["t"],
            card.get("success_rate", 1.0),
            card.get("targets", []),
            xlabel="t_en" if is_worldwide(card) else "t",
        )
    if "languages" in card:
        head, _ = top_and_rest(card["languages"]["rows"], card["languages"]["top"])
        files[LANGUAGE_PLOT_FILES["languages"]] = plots.languages_png(head)
    return files


def _distribution_ids(run: RunData, card: dict[str, Any]) -> tuple[slice, str]:
    """The entries the distribution plot shows: all; English's for a worldwide run (t_en is
    its t; the other languages' are on the Languages plot and table)."""
    if not is_worldwide(card) or run.language_offsets is None:
        return slice(None), run.output
    slices = language_slices(run.language_offsets, len(run.counts))
    if ENGLISH not in slices:
        return slice(None), run.output
    return slices[ENGLISH], f"{run.output}: English entries, at t_en"


def _part(values: np.ndarray | None, ids: slice) -> np.ndarray | None:
    return None if values is None else values[ids]


def _array(values: list[float] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values)


def render_card(run: RunData, card: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the card by name: the PNGs, datacard.json, datacard.md (relative links)."""
    blobs = render_files(run, card)
    blobs["datacard.json"] = card_json(card)
    blobs["datacard.md"] = render_markdown(card).encode()
    return blobs


def png_data_uri(png: bytes) -> str:
    """A data: URI of PNG bytes, to embed a plot in Markdown wherever the card is shown."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def embedded_images(blobs: dict[str, bytes]) -> dict[str, str]:
    """Plot name -> data URI, for render_markdown, from render_card's blobs."""
    files = {**PLOT_FILES, **LANGUAGE_PLOT_FILES}
    return {name: png_data_uri(blobs[file]) for name, file in files.items() if file in blobs}


def write_files(blobs: dict[str, bytes], out_dir: str, **storage_options: Any) -> dict[str, str]:
    """Write each blob to out_dir/<name> atomically; their URIs by name."""
    written = {}
    for name, blob in blobs.items():
        written[name] = storage.join(out_dir, name)
        storage.write_bytes_atomic(written[name], blob, **storage_options)
    return written


def write_datacard(
    run: RunData, card: dict[str, Any], out_dir: str | None = None, **storage_options: Any
) -> dict[str, str]:
    """Write datacard.json, datacard.md and the PNGs (atomically); their URIs by name."""
    blobs = render_card(run, card)
    return write_files(blobs, out_dir or datacard_dir(run.output), **storage_options)


# --------------------------------------------------------------------------- two runs


def render_comparison_markdown(cmp: dict[str, Any]) -> str:
    a, b = cmp["a"], cmp["b"]
    rows = [
        [k, a[k], b[k]]
        for k in ("t", "p", "entries_over_t", "matches_total", "pairs_matched", "pairs_curated")
    ]
    parts = [
        f"# Comparison: `{a['output']}` (a) vs `{b['output']}` (b)",
        "",
        _md_table(["", "a", "b"], rows),
        "",
        f"p moved by {cmp['p_change']:+.4f}; at a's t ({format_value(a['t'])}) b's p is "
        f"{cmp['p_b_at_t_a']:.4f}. Same metadata: {'yes' if cmp['same_metadata'] else 'no'}.",
        "",
        f"Head: {cmp['head_entered']:,} entries entered, {cmp['head_left']:,} left, "
        f"{cmp['head_stayed']:,} stayed.",
    ]
    for key, title in (("entered", "Entered the head"), ("left", "Left the head")):
        if cmp[key]:
            parts += [
                "",
                f"## {title}",
                "",
                _md_table(
                    ["entry", "count a", "count b"],
                    [[e["entry"], e["count_a"], e["count_b"]] for e in cmp[key]],
                ),
            ]
    return "\n".join(parts) + "\n"


def write_comparison(
    a: RunData, b: RunData, cmp: dict[str, Any], out_dir: str, **storage_options: Any
) -> dict[str, str]:
    """Write comparison.json, comparison.md and comparison.png (both distributions)."""
    from metaclip.reporting import plots

    blobs = {
        "comparison.json": orjson.dumps(cmp, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        "comparison.md": render_comparison_markdown(cmp).encode(),
        "comparison.png": plots.comparison_png(
            a.counts, b.counts, cmp["a"]["t"], cmp["b"]["t"], (a.output, b.output)
        ),
    }
    written = {}
    for name, blob in blobs.items():
        written[name] = storage.join(out_dir, name)
        storage.write_bytes_atomic(written[name], blob, **storage_options)
    return written
