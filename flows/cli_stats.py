"""CLI commands `stats` (a run's data card) and `compare` (two runs); flows/cli.py lists them.

User mistakes (a missing output, a bad URI, a bad parameter) give one line on stderr and exit
code 2; no Prefect or Dask is started: the card is computed locally from the run's files.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from metaclip.errors import UserError

EXIT_USAGE = 2


def _fail(exc: UserError) -> typer.Exit:
    print(f"error: {exc}", file=sys.stderr)
    return typer.Exit(code=EXIT_USAGE)


def _check(t: float | None, success_rate: float, targets: list[float], top: int) -> None:
    if t is not None and not t > 0:
        raise UserError(f"--t must be positive, got {t:g}")
    if not 0 < success_rate <= 1:
        raise UserError(f"--success-rate must be in (0, 1], got {success_rate:g}")
    if any(not n > 0 for n in targets):
        raise UserError("--target sizes must be positive")
    if top < 1:
        raise UserError(f"--top must be at least 1, got {top}")


def _with_progress(console: Console) -> Any:
    """Wrap the candidate pass in a progress line (chunks read, on stderr, cleared at the end)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    def wrap(units: Iterable[Any]) -> Iterator[Any]:
        columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed} chunks"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            job = progress.add_task("expected sizes", total=None)
            for chunk in units:
                yield chunk
                progress.advance(job)

    return wrap


def _table(title: str, headers: list[str], rows: Iterable[list[Any]]) -> Table:
    from metaclip.reporting.datacard import format_value

    table = Table(title=title)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 or header == "entry" else "right")
    for row in rows:
        table.add_row(*(v if isinstance(v, str) else format_value(v) for v in row))
    return table


def _print_card(console: Console, card: dict[str, Any]) -> None:
    from metaclip.reporting.datacard import overview_rows

    console.print(_table(f"data card: {card['output']}", ["", "value"], overview_rows(card)))
    rows = [[e["entry"], e["count"], e.get("after", "n/a"), e.get("expected_after", "n/a")]
            for e in card["top_before"]]
    console.print(_table("most frequent entries", ["entry", "before", "after", "expected"], rows))
    if "expected_size" in card:
        size = card["expected_size"]
        picked = range(0, len(size["t"]), max(1, len(size["t"]) // 12))
        rows = [[size["t"][i], size["pairs"][i]] for i in picked]
        console.print(_table("expected curated size", ["t", "pairs"], rows))
    for row in card.get("targets", []):
        answer = f"t = {row['t']:,.4g}" if row["t"] is not None else row.get("note", "")
        console.print(f"{row['target_downloaded']:,.0f} downloaded pairs at "
                      f"{row['success_rate']:.0%} success: {answer}")


def stats_command(
    output: Annotated[str, typer.Argument(help="A curation output directory or URI.")],
    t: Annotated[
        float | None, typer.Option(help="Threshold to describe (default: the run's t).")
    ] = None,
    target: Annotated[
        list[float] | None,
        typer.Option(help="Downloaded pairs wanted: print the t that gives them; repeatable."),
    ] = None,
    success_rate: Annotated[
        float, typer.Option(help="Expected download success rate (img2dataset: 0.85-0.95).")
    ] = 0.9,
    top: Annotated[int, typer.Option(help="Most frequent entries to list.")] = 20,
    write: Annotated[
        bool, typer.Option(help="Write datacard.json, datacard.md and PNGs to OUTPUT/datacard.")
    ] = True,
) -> None:
    """Print a run's data card: entry distribution, tail share p, expected size against t."""
    from metaclip.reporting import datacard

    console = Console()
    try:
        _check(t, success_rate, target or [], top)
        run = datacard.load_run(output)
        card = datacard.build_datacard(
            run, t, datacard.candidate_source(output), target or [], success_rate, top,
            wrap=_with_progress(Console(stderr=True)),
        )
        written = datacard.write_datacard(run, card) if write else {}
    except UserError as exc:
        raise _fail(exc) from None
    _print_card(console, card)
    for name, uri in written.items():
        console.print(f"{name:24} {uri}")


def compare_command(
    a: Annotated[str, typer.Argument(help="The first output (e.g. last month's dump).")],
    b: Annotated[str, typer.Argument(help="The second output.")],
    t: Annotated[
        float | None, typer.Option(help="Threshold for both (default: each run's own t).")
    ] = None,
    top: Annotated[int, typer.Option(help="Entries to list per direction.")] = 20,
    write: Annotated[
        str | None,
        typer.Option(help="Folder for comparison.json, comparison.md and comparison.png."),
    ] = None,
) -> None:
    """Compare two runs: entries that moved into or out of the head, and how p moved."""
    from metaclip.reporting import datacard

    try:
        _check(t, 1.0, [], top)
        run_a, run_b = datacard.load_run(a), datacard.load_run(b)
        cmp = datacard.compare_runs(run_a, run_b, t, t, top)
        written = datacard.write_comparison(run_a, run_b, cmp, write) if write else {}
    except UserError as exc:
        raise _fail(exc) from None
    console = Console()
    sides = [[k, cmp["a"][k], cmp["b"][k]]
             for k in ("t", "p", "entries_over_t", "pairs_matched", "pairs_curated")]
    console.print(_table("comparison", ["", "a", "b"], sides))
    console.print(f"p moved by {cmp['p_change']:+.4f} (b at a's t: {cmp['p_b_at_t_a']:.4f}); "
                  f"head: {cmp['head_entered']:,} entered, {cmp['head_left']:,} left, "
                  f"{cmp['head_stayed']:,} stayed")
    for key in ("entered", "left"):
        if cmp[key]:
            rows = [[e["entry"], e["count_a"], e["count_b"]] for e in cmp[key]]
            console.print(_table(f"{key} the head", ["entry", "count a", "count b"], rows))
    for name, uri in written.items():
        console.print(f"{name:24} {uri}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`, as flows/cli.py lists them."""
    from metaclip_prefect.flows.cli import register as register_commands

    register_commands(app, __name__)
