"""The `metaclip` command: one subcommand per flow, one-line errors, trustworthy exit codes.

Exit codes: 0 success, 1 the run failed, 2 a usage or input mistake.
"""

from __future__ import annotations

import importlib.resources
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")

from metaclip.balance import DEFAULT_T  # noqa: E402
from metaclip.errors import UserError  # noqa: E402

app = typer.Typer(
    name="metaclip",
    help="Curate CLIP training data from CommonCrawl the MetaCLIP way (Prefect + Dask).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_flow(flow: Any, **params: Any) -> dict[str, Any]:
    """Run a flow; its failure becomes one line on stderr and exit code 1."""
    try:
        state = flow(**params, return_state=True)
    except UserError as exc:
        fail(str(exc))
    if not state.is_completed():
        fail(state.message or f"flow ended in state {state.type.value}", EXIT_FAILED)
    return state.result()


def print_summary(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="curation summary", show_header=False)
    for key in (
        "files", "records_read", "pairs_read", "pairs_matched", "pairs_unique",
        "images_matched", "pairs_curated", "t", "p", "entries_over_t",
    ):
        value = result[key]
        fractional = isinstance(value, float) and not value.is_integer()
        table.add_row(key, f"{value:.4f}" if fractional else f"{value:,.0f}")
    for reason, n in result["skipped"].items():
        table.add_row(f"skipped: {reason}", f"{n:,}")
    console = Console()
    console.print(table)
    console.print(f"curated pairs: {result['outputs']['curated']}")
    console.print(f"summary:       {result['outputs']['summary']}")


@app.command()
def curate(
    metadata: Annotated[str, typer.Option(help="Metadata entry list (JSON list or .txt).")],
    output: Annotated[str, typer.Option(help="Output directory or s3:// prefix.")],
    inputs: Annotated[
        list[str] | None, typer.Argument(help="WAT files, globs, directories or s3:// URIs.")
    ] = None,
    t: Annotated[
        float, typer.Option(help="Balancing threshold (MetaCLIP-400M: 20000).")
    ] = DEFAULT_T,
    seed: Annotated[int, typer.Option(help="Seed of the deterministic sampling.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Input files per task.")] = 16,
    buckets: Annotated[
        int | None,
        typer.Option(help="uuid buckets for global dedup (default: 10 to 20 input files each)."),
    ] = None,
    crawl: Annotated[
        str | None, typer.Option(help="A whole crawl, e.g. CC-MAIN-2024-22 (its wat.paths.gz).")
    ] = None,
    crawl_data_root: Annotated[
        str, typer.Option(help="Where crawl-data/ lives (public bucket: anonymous access).")
    ] = "s3://commoncrawl",
    max_files: Annotated[
        int | None, typer.Option(help="With --crawl: only the first N WAT files.")
    ] = None,
    one_text_per_image: Annotated[
        bool,
        typer.Option(help="Sample one text per image (MetaCLIP 2), or every (image, text)."),
    ] = True,
    exclude_store: Annotated[
        str | None, typer.Option(help="Uuids of earlier dumps: left out here, this run's added.")
    ] = None,
    input_format: Annotated[
        str, typer.Option("--format", help="wat, warc, or auto (by file name).")
    ] = "auto",
    languages: Annotated[
        str,
        typer.Option(help="Comma-separated languages to keep (fastText lid.176); 'all' keeps all."),
    ] = "en",
    dask_address: Annotated[
        str | None, typer.Option(help="Existing Dask scheduler (default: a local cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
) -> None:
    """Extract, match, count and balance: a curated, img2dataset-ready set."""
    from metaclip_prefect.flows.curate import curate as curate_flow

    from metaclip.curation import preflight

    if not inputs and not crawl:
        fail("give input files or --crawl")
    public = crawl and crawl_data_root.startswith("s3://commoncrawl")
    storage_options = {"anon": True} if public else {}  # the public bucket needs no keys
    if not crawl:
        try:
            preflight(inputs or [], metadata, input_format)  # user mistakes: before Prefect starts
        except UserError as exc:
            fail(str(exc))
    result = run_flow(
        curate_flow,
        inputs=inputs or [],
        crawl=crawl,
        crawl_data_root=crawl_data_root,
        max_files=max_files,
        storage_options=storage_options,
        metadata=metadata,
        output=output,
        t=t,
        seed=seed,
        batch_size=batch_size,
        n_buckets=buckets,
        one_text_per_image=one_text_per_image,
        exclude_store=exclude_store,
        input_format=input_format,
        languages=None if languages == "all" else [x.strip() for x in languages.split(",")],
        dask_address=dask_address,
        n_workers=workers,
    )
    print_summary(result)


@app.command()
def rebalance(
    output: Annotated[str, typer.Argument(help="Output of a finished `metaclip curate`.")],
    t: Annotated[float, typer.Option(help="New balancing threshold.")],
    seed: Annotated[int | None, typer.Option(help="New seed (default: the run's).")] = None,
    dask_address: Annotated[
        str | None, typer.Option(help="Existing Dask scheduler (default: a local cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
) -> None:
    """Sample again with a new t or seed: no extraction, matching or counting again."""
    from metaclip_prefect.flows.rebalance import rebalance as rebalance_flow

    result = run_flow(
        rebalance_flow, output=output, t=t, seed=seed, dask_address=dask_address,
        n_workers=workers,
    )
    print_summary(result)


DEMO_T = 8.0  # the demo pool is small: a low t shows head entries being capped


@app.command()
def demo(
    output: Annotated[str, typer.Option(help="Where to write the demo curation.")] = "demo-output",
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
) -> None:
    """Curate the WAT files shipped with the package (offline, a minute on 2 cores)."""
    from metaclip_prefect.flows.curate import curate as curate_flow

    data = importlib.resources.files("metaclip") / "demo_data"
    result = run_flow(
        curate_flow,
        inputs=[str(data)],
        metadata=str(data / "metadata.json"),
        output=str(Path(output).resolve()),
        t=DEMO_T,
        batch_size=1,
        n_buckets=4,
        n_workers=workers,
    )
    print_summary(result)


def _register_optional_commands() -> None:
    """Subcommands owned by other modules (metadata building, data card, data experts)."""
    import importlib

    for name in ("cli_stats", "cli_metadata", "cli_mode"):
        module = f"metaclip_prefect.flows.{name}"
        try:
            register = importlib.import_module(module).register
        except ImportError:
            continue  # an optional dependency group that is not installed
        register(app)


_register_optional_commands()


def main() -> None:
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
