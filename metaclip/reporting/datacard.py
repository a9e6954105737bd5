"""The data card of a curation run: the entry distribution, the tail share, expected sizes.

Everything here is computed from a finished run's outputs (entry counts, summary, curated shards)
and from its candidate units: per sampled image, the entry-id lists of its matched texts and
each text's weight (1 / that image's number of texts; 1 everywhere for per-pair sampling).

The expected curated size at t is exact, with no sampling (metaclip/reporting/expected_size.py).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from metaclip.curation import balance
from metaclip.curation.counts import SparseCounts
from metaclip.curation.record import read_run_record
from metaclip.curation.sample import iter_candidate_units
from metaclip.errors import UserError
from metaclip.io import storage
from metaclip.io.paths import OutputLayout
from metaclip.reporting.expected_size import (
    Units,
    expected_sizes,
    scan_candidates,
    solve_t,
    t_grid,
)
from metaclip.reporting.summary import limits_line

UnitSource = Callable[[], Iterable[Units]]  # called once per pass over the candidates

DATACARD_DIR = "datacard"
TOP_N = 20


# --------------------------------------------------------------------------- run inputs


@dataclass
class RunData:
    """What the card reads from one output directory."""

    output: str
    counts: np.ndarray  # uint64 per entry id, before balancing
    entries: list[str]
    summary: dict[str, Any] = field(default_factory=dict)
    curated_counts: np.ndarray | None = None  # per entry id, counted in curated/*.parquet


def datacard_dir(output: str) -> str:
    return storage.join(output, DATACARD_DIR)


def load_run(output: str, **storage_options: Any) -> RunData:
    """Read a finished run's counts, summary and curated entry counts (a UserError if absent)."""
    layout = OutputLayout(output)
    if not storage.exists(layout.entry_counts, **storage_options):
        raise UserError(f"not a curation output (no entry_counts.parquet): {output}")
    try:
        return _read_run(layout, **storage_options)
    except (OSError, pa.ArrowException, orjson.JSONDecodeError, KeyError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"cannot read the run in {output}: {first_line}") from exc


def _read_run(layout: OutputLayout, **storage_options: Any) -> RunData:
    output = layout.root
    table = storage.read_parquet(layout.entry_counts, **storage_options)
    counts = np.zeros(table.num_rows, dtype=np.uint64)
    ids = table["entry_id"].to_numpy()
    counts[ids] = table["count"].to_numpy()
    entries = [""] * table.num_rows
    for i, entry in zip(ids.tolist(), table["entry"].to_pylist(), strict=True):
        entries[i] = entry
    summary: dict[str, Any] = {}
    if storage.exists(layout.summary, **storage_options):
        summary = orjson.loads(storage.read_bytes(layout.summary, **storage_options))
    curated = _curated_counts(layout.curated_dir, len(counts), **storage_options)
    return RunData(output, counts, entries, summary, curated)


def _curated_counts(curated_dir: str, n_entries: int, **storage_options: Any) -> np.ndarray | None:
    if not storage.exists(curated_dir, **storage_options):
        return None
    files = _parquet_files(curated_dir, **storage_options)
    parts = [
        SparseCounts.from_entry_ids(
            storage.read_parquet(f, columns=["entry_ids"], **storage_options)["entry_ids"]
        )
        for f in files
    ]
    return SparseCounts.sum(parts).to_dense(n_entries)


def _parquet_files(folder: str, **storage_options: Any) -> list[str]:
    try:
        return storage.expand_inputs([folder], (".parquet",), **storage_options)
    except UserError:  # a folder with no part in it (nothing kept): no rows, not a mistake
        return []


def matched_pair_units(output: str, **storage_options: Any) -> Iterator[Units]:
    """Per-pair candidates from the matched parts under _work/ (weight 1 per pair).

    For outputs written before _work/run.json, whose balancing sampled every pair on its own.
    """
    matched_dir = storage.join(output, "_work", "matched")
    if not storage.exists(matched_dir, **storage_options):
        return
    for uri in _parquet_files(matched_dir, **storage_options):
        ids = storage.read_parquet(uri, columns=["entry_ids"], **storage_options)["entry_ids"]
        ids = ids.combine_chunks()
        yield ids, np.ones(len(ids))


def candidate_source(output: str, **storage_options: Any) -> UnitSource:
    """The run's candidate units, as its sampling drew them."""
    record = OutputLayout(output).run_record
    if storage.exists(record, **storage_options):
        # The weights must follow the run's own sampling: one text per image, or every pair.
        per_image = read_run_record(output, **storage_options).get("one_per_image", True)
        return lambda: iter_candidate_units(output, one_per_image=per_image, **storage_options)
    return lambda: matched_pair_units(output, **storage_options)  # an output from before run.json


# --------------------------------------------------------------------------- the card


def top_entries(counts: np.ndarray, entries: list[str], n: int = TOP_N) -> list[dict[str, Any]]:
    order = np.argsort(-counts.astype(np.float64), kind="stable")[:n]
    return [
        {"entry": entries[i], "entry_id": int(i), "count": float(counts[i])}
        for i in order
        if counts[i] > 0
    ]


def distribution_stats(counts: np.ndarray, t: float) -> dict[str, Any]:
    """Head and tail of the count distribution at t (head: entries counted more than t)."""
    matched = counts[counts > 0]
    head = counts > t
    return {
        "entries": int(len(counts)),
        "entries_matched": int(len(matched)),
        "entries_over_t": balance.entries_over_t(counts, t),
        "p": balance.t_to_p(counts, t),
        "matches_total": float(counts.sum(dtype=np.float64)),
        "head_matches": float(counts[head].sum(dtype=np.float64)),
        "max_count": float(matched.max(initial=0)),
        "median_count": float(np.median(matched)) if len(matched) else 0.0,
    }


def build_datacard(
    run: RunData,
    t: float | None = None,
    candidates: UnitSource | None = None,
    targets: Iterable[float] = (),
    success_rate: float = 0.9,
    top: int = TOP_N,
    wrap: Callable[[Iterable[Units]], Iterable[Units]] = lambda units: units,
) -> dict[str, Any]:
    """The card as a JSON-able dict; `wrap` may add a progress bar to the candidate pass."""
    t = _resolve_t(run, t)
    s = run.summary
    card: dict[str, Any] = {
        "output": run.output,
        "t": t,
        "seed": s.get("seed"),
        "limits": s.get("limits"),
        "metadata": s.get("metadata", {}),
        "pairs": {k: s.get(f"pairs_{k}") for k in ("read", "matched", "unique", "curated")},
        "images_matched": s.get("images_matched"),
        "distribution": distribution_stats(run.counts, t),
        "top_before": top_entries(run.counts, run.entries, top),
    }
    counted = s.get("pairs_unique") or s.get("pairs_matched")  # the pairs the counts are over
    card["matches_per_pair"] = card["distribution"]["matches_total"] / counted if counted else None
    if run.curated_counts is not None:
        card["top_after"] = top_entries(run.curated_counts, run.entries, top)
        for row in card["top_before"]:  # the same entries after balancing, for the table
            row["after"] = float(run.curated_counts[row["entry_id"]])
        card["curated_stats"] = distribution_stats(run.curated_counts, t)
    if candidates is not None:
        _add_expected(card, run, t, candidates, targets, success_rate, wrap)
    return card


def _resolve_t(run: RunData, t: float | None) -> float:
    t = run.summary.get("t") if t is None else t
    if t is None:
        raise UserError(f"no summary.json with t in {run.output}: pass t")
    if not t > 0:
        raise UserError(f"t must be positive, got {t}")
    return float(t)


def _add_expected(
    card: dict[str, Any],
    run: RunData,
    t: float,
    candidates: UnitSource,
    targets: Iterable[float],
    success_rate: float,
    wrap: Callable[[Iterable[Units]], Iterable[Units]],
) -> None:
    scan = scan_candidates(wrap(candidates()), run.counts, t, t_grid(run.counts, t))
    if not scan.texts:
        return
    at_t = float(scan.sizes[np.searchsorted(scan.ts, t)])
    card["candidates"] = {
        "units": scan.units,
        "texts": scan.texts,
        "matches_per_text": scan.matches / scan.texts,
    }
    card["matches_per_pair"] = scan.matches / scan.texts  # exact over the candidates
    card["expected_size"] = {"t": scan.ts.tolist(), "pairs": scan.sizes.tolist(), "at_t": at_t}
    card["expected_after"] = scan.expected_counts.tolist()
    for row in card["top_before"]:
        row["expected_after"] = float(scan.expected_counts[row["entry_id"]])
    card["top_expected_after"] = top_entries(
        scan.expected_counts, run.entries, len(card["top_before"])
    )

    def sizes_at(ts: np.ndarray) -> np.ndarray:
        return expected_sizes(candidates(), run.counts, ts)

    card["targets"] = [
        solve_t(sizes_at, scan.ts, scan.sizes, float(n), success_rate) for n in targets
    ]
    card["success_rate"] = success_rate


def card_json(card: dict[str, Any]) -> bytes:
    """The card as JSON, leaving out the per-entry expected counts (one number per entry)."""
    slim = {k: v for k, v in card.items() if k != "expected_after"}
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
    return orjson.dumps(slim, option=options) + b"\n"


# --------------------------------------------------------------------------- rendering

PLOT_FILES = {"distribution": "count_distribution.png", "expected_size": "expected_size.png"}


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


def overview_rows(card: dict[str, Any]) -> list[list[Any]]:
    """(name, value) rows shared by the Markdown card, the table artifact and the CLI."""
    d, pairs = card["distribution"], card["pairs"]
    rows: list[list[Any]] = [
        ["t", card["t"]],
        ["tail share p (matches on entries counted below t)", d["p"]],
        ["entries over t (head)", d["entries_over_t"]],
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
        rows.append(["expected curated size at t", card["expected_size"]["at_t"]])
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
    return [
        [rank + 1, e["entry"], e["count"], e.get("after", "n/a"), e.get("expected_after", "n/a")]
        for rank, e in enumerate(card["top_before"])
    ]


def _size_rows(card: dict[str, Any], every: int = 4) -> list[list[Any]]:
    ts, sizes = card["expected_size"]["t"], card["expected_size"]["pairs"]
    rate = card.get("success_rate", 1.0)
    picked = sorted(set(range(0, len(ts), every)) | {len(ts) - 1, ts.index(card["t"])})
    return [[ts[i], sizes[i], sizes[i] * rate] for i in picked]


def render_markdown(card: dict[str, Any], images: dict[str, str] | None = None) -> str:
    """The card in Markdown; images maps plot names to the links to use (default: file names)."""
    images = images or dict(PLOT_FILES)
    parts = [f"# Data card: `{card['output']}`", "", _md_table(["", "value"], overview_rows(card))]
    parts += [
        "",
        "## Entry count distribution",
        "",
        f"![entry counts]({images['distribution']})",
        "",
        "Entries sorted by count (log-log). Entries above the t line are the head: balancing "
        "caps each of them near t; the tail below is kept whole.",
        "",
        f"## The {len(card['top_before'])} most frequent entries",
        "",
        _md_table(
            ["rank", "entry", "count before", "count after (curated)", "expected after"],
            _top_rows(card),
        ),
    ]
    if "expected_size" in card:
        parts += _expected_markdown(card, images)
    return "\n".join(parts) + "\n"


def _expected_markdown(card: dict[str, Any], images: dict[str, str]) -> list[str]:
    rate = card.get("success_rate", 1.0)
    parts = [
        "",
        "## Expected curated size as a function of t",
        "",
        f"![expected size]({images['expected_size']})",
        "",
        "Exact expectation (sum of keep probabilities over the matched candidates), no sampling.",
        "",
        _md_table(
            ["t", "expected curated", f"expected downloaded at {rate:.0%}"], _size_rows(card)
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
            "## t for a target size",
            "",
            _md_table(
                ["downloaded pairs wanted", "success rate", "curated pairs needed", "t"], rows
            ),
        ]
    return parts


def render_files(run: RunData, card: dict[str, Any]) -> dict[str, bytes]:
    """The PNG plots of a card, by file name."""
    from metaclip.reporting import plots

    files = {
        PLOT_FILES["distribution"]: plots.count_distribution_png(
            run.counts,
            card["t"],
            after=run.curated_counts,
            expected_after=_array(card.get("expected_after")),
            title=run.output,
        )
    }
    if "expected_size" in card:
        files[PLOT_FILES["expected_size"]] = plots.expected_size_png(
            np.array(card["expected_size"]["t"]),
            np.array(card["expected_size"]["pairs"]),
            card["t"],
            card.get("success_rate", 1.0),
            card.get("targets", []),
        )
    return files


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
    return {name: png_data_uri(blobs[file]) for name, file in PLOT_FILES.items() if file in blobs}


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


def _run_side(run: RunData, t: float) -> dict[str, Any]:
    s = run.summary
    return {
        "output": run.output,
        "t": t,
        "p": balance.t_to_p(run.counts, t),
        "entries_over_t": balance.entries_over_t(run.counts, t),
        "matches_total": float(run.counts.sum(dtype=np.float64)),
        "pairs_matched": s.get("pairs_matched"),
        "pairs_curated": s.get("pairs_curated"),
        "metadata_sha256": s.get("metadata", {}).get("sha256"),
    }


def _moved(
    entries: list[str], ca: np.ndarray, cb: np.ndarray, mask: np.ndarray, top: int
) -> list[dict[str, Any]]:
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(-np.maximum(ca[idx], cb[idx]), kind="stable")][:top]
    return [{"entry": entries[i], "count_a": float(ca[i]), "count_b": float(cb[i])} for i in idx]


def compare_runs(
    a: RunData, b: RunData, t_a: float | None = None, t_b: float | None = None, top: int = TOP_N
) -> dict[str, Any]:
    """Which entries moved into or out of the head from run a to run b, and how p moved.

    Entries are aligned by their text, so runs with different metadata compare too (an entry
    missing from one run counts 0 there). Each run's head is taken at its own t.
    """
    t_a, t_b = _resolve_t(a, t_a), _resolve_t(b, t_b)
    where = pc.index_in(pa.array(a.entries), value_set=pa.array(b.entries)).to_numpy(
        zero_copy_only=False
    )
    # Union of both entry lists: a's entries first, then b's entries absent from a.
    in_b = ~np.isnan(where.astype(np.float64))
    only_b = np.setdiff1d(np.arange(len(b.entries)), where[in_b].astype(np.int64))
    entries = a.entries + [b.entries[i] for i in only_b]
    ca = np.concatenate([a.counts.astype(np.float64), np.zeros(len(only_b))])
    cb = np.zeros(len(entries))
    cb[: len(a.entries)][in_b] = b.counts[where[in_b].astype(np.int64)]
    cb[len(a.entries) :] = b.counts[only_b]
    head_a, head_b = ca > t_a, cb > t_b
    side_a, side_b = _run_side(a, t_a), _run_side(b, t_b)
    return {
        "a": side_a,
        "b": side_b,
        "p_change": side_b["p"] - side_a["p"],
        "p_b_at_t_a": balance.t_to_p(cb, t_a),
        "same_metadata": side_a["metadata_sha256"] == side_b["metadata_sha256"],
        "head_entered": int((head_b & ~head_a).sum()),
        "head_left": int((head_a & ~head_b).sum()),
        "head_stayed": int((head_a & head_b).sum()),
        "entered": _moved(entries, ca, cb, head_b & ~head_a, top),
        "left": _moved(entries, ca, cb, head_a & ~head_b, top),
    }


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
