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
# The temporary local API (no PREFECT_API_URL) may start slowly on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from metaclip.curation.balance import DEFAULT_T  # noqa: E402
from metaclip.errors import UserError  # noqa: E402
from metaclip_prefect.flows.cli_common import (  # noqa: E402
    EXIT_USAGE,
    Credentials,
    Debug,
    LimitsJSON,
    OptionsJSON,
    credentials_option,
    fail,
    json_option,
    limits_option,
    locations_without_credentials,
    run_flow,
)

app = typer.Typer(
    name="metaclip",
    help="Curate CLIP training data from CommonCrawl the MetaCLIP way (Prefect + Dask).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



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
        str,
        typer.Option(help="Where crawl-data/ lives (the public bucket is read anonymously "
                          "unless --input-options say otherwise)."),
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
    limits: LimitsJSON = None,
    input_options: OptionsJSON = None,
    metadata_options: OptionsJSON = None,
    output_options: OptionsJSON = None,
    exclude_store_options: OptionsJSON = None,
    credentials: Credentials = None,
    debug: Debug = False,
) -> None:
    """Extract, match, count and balance: a curated, img2dataset-ready set."""
    from metaclip_prefect.flows.curate import curate as curate_flow

    locations_without_credentials(
        inputs=inputs, metadata=metadata, output=output, exclude_store=exclude_store,
        crawl_data_root=crawl_data_root,
    )  # fmt: skip
    result = run_flow(
        curate_flow,
        debug=debug,
        inputs=inputs or [],
        crawl=crawl,
        crawl_data_root=crawl_data_root,
        max_files=max_files,
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
        limits=limits_option(limits),
        input_options=json_option("--input-options", input_options),
        metadata_options=json_option("--metadata-options", metadata_options),
        output_options=json_option("--output-options", output_options),
        exclude_store_options=json_option("--exclude-store-options", exclude_store_options),
        credentials=credentials_option(credentials),
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
    output_options: OptionsJSON = None,
    exclude_store_options: OptionsJSON = None,
    credentials: Credentials = None,
    debug: Debug = False,
) -> None:
    """Sample again with a new t or seed: no extraction, matching or counting again.

    Reads and writes only inside OUTPUT (a copied or moved output works in place)."""
    from metaclip_prefect.flows.rebalance import rebalance as rebalance_flow

    result = run_flow(
        rebalance_flow, debug=debug, output=output, t=t, seed=seed, dask_address=dask_address,
        n_workers=workers, output_options=json_option("--output-options", output_options),
        exclude_store_options=json_option("--exclude-store-options", exclude_store_options),
        credentials=credentials_option(credentials),
    )
    print_summary(result)


DEMO_T = 8.0  # the demo pool is small: a low t shows head entries being capped


@app.command()
def demo(
    output: Annotated[str, typer.Option(help="Where to write the demo curation.")] = "demo-output",
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
    debug: Debug = False,
) -> None:
    """Curate the WAT files shipped with the package (offline, a minute on 2 cores)."""
    from metaclip_prefect.flows.curate import curate as curate_flow

    data = importlib.resources.files("metaclip") / "demo_data"
    result = run_flow(
        curate_flow,
        debug=debug,
        inputs=[str(data)],
        metadata=str(data / "metadata.json"),
        output=str(Path(output).resolve()),
        t=DEMO_T,
        batch_size=1,
        n_buckets=4,
        n_workers=workers,
    )
    print_summary(result)


@app.command()
def unlock(
    output: Annotated[str, typer.Argument(help="The output whose lease to break.")],
    force: Annotated[
        bool, typer.Option(help="Remove the lease even if its holder looks alive.")
    ] = False,
    output_options: OptionsJSON = None,
) -> None:
    """Show who holds an output's lease, and remove it if its run is gone (stale).

    A run renews its lease every few minutes; one not renewed for METACLIP_LEASE_TTL_S
    (600 s) is stale, and the next run takes it over by itself. Use --force only when you know
    the holder is dead (for example, a machine that is off)."""
    from metaclip.config import check_output_location, parse_options
    from metaclip.io import lease
    from metaclip.io.paths import OutputLayout

    try:
        uri = OutputLayout(check_output_location("output", output)).lock
        opts = parse_options("--output-options", json_option("--output-options", output_options))
        removed = lease.break_lock(uri, force=force, **opts)
    except UserError as exc:
        fail(str(exc))
    typer.echo(f"removed the lease of {removed.describe()}" if removed else f"no lease on {output}")


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
