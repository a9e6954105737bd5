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

from metaclip.config import CurateConfig  # noqa: E402
from metaclip.errors import UserError  # noqa: E402
from metaclip_prefect.flows.cli_common import (  # noqa: E402
    EXIT_USAGE,
    MODE,
    Command,
    Credentials,
    Debug,
    FlowCall,
    LimitsJSON,
    OptionsJSON,
    fail,
    json_option,
    locations_without_credentials,
    run_flow,
)
from metaclip_prefect.flows.cli_ensemble import ensemble_command  # noqa: E402
from metaclip_prefect.flows.cli_experts import EXPERTS, experts_command, route_command  # noqa: E402
from metaclip_prefect.flows.cli_match import match_command  # noqa: E402
from metaclip_prefect.flows.cli_metadata import (  # noqa: E402
    BUILD,
    build_metadata_command,
    inspect_metadata_command,
)
from metaclip_prefect.flows.cli_stats import compare_command, stats_command  # noqa: E402

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
    if result.get("languages"):
        console.print(_languages_table(result["languages"]))
    console.print(f"curated pairs: {result['outputs']['curated']}")
    console.print(f"summary:       {result['outputs']['summary']}")


def _languages_table(languages: dict[str, dict[str, Any]]) -> Any:
    """A worldwide run's languages, most pairs matched first (t: the language's own)."""
    from rich.table import Table

    columns = ("pairs_read", "pairs_matched", "pairs_curated", "t")
    table = Table(title="languages (t_en gives p; each language's t gives the same p)")
    for name in ("language", *columns):
        table.add_column(name, justify="left" if name == "language" else "right")
    ordered = sorted(languages.items(), key=lambda kv: (-kv[1].get("pairs_matched", 0), kv[0]))
    for language, figures in ordered:
        cells = [figures.get(name) for name in columns]
        table.add_row(language, *("" if v is None else f"{v:,.0f}" for v in cells))
    return table


def _languages(value: str) -> list[str] | None:
    """--languages: comma-separated codes, or 'all' (the flow's None: keep every language)."""
    return None if value == "all" else [x.strip() for x in value.split(",")]


CURATE = FlowCall(
    "metaclip_prefect.flows.curate:curate",
    rename={"buckets": "n_buckets", "workers": "n_workers"},
    convert={"languages": _languages},
)
# The defaults are the configuration's (metaclip.config), written there once.
_C = CurateConfig
_LANGUAGES = "all" if _C.languages is None else ",".join(_C.languages)


def curate(
    metadata: Annotated[
        str,
        typer.Option(help="Metadata entry list (JSON list or .txt); --recipe worldwide: a "
                          "worldwide metadata folder (or its languages.json)."),
    ],
    output: Annotated[str, typer.Option(help="Output directory or s3:// prefix.")],
    inputs: Annotated[
        list[str] | None, typer.Argument(help="WAT files, globs, directories or s3:// URIs.")
    ] = None,
    recipe: Annotated[
        str,
        typer.Option(help="english (MetaCLIP) or worldwide (MetaCLIP 2: each text matched in "
                          "its own language, a t per language; docs/curation.md)."),
    ] = _C.recipe,
    t: Annotated[
        float | None,
        typer.Option(help="Balancing threshold (default 20000, MetaCLIP-400M's); --recipe "
                          "worldwide: English's t_en (default 170000), which sets every "
                          "language's t."),
    ] = _C.t,
    seed: Annotated[int, typer.Option(help="Seed of the deterministic sampling.")] = _C.seed,
    batch_size: Annotated[int, typer.Option(help="Input files per task.")] = _C.batch_size,
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
    ] = _C.crawl_data_root,
    max_files: Annotated[
        int | None, typer.Option(help="With --crawl: only the first N WAT files.")
    ] = None,
    one_text_per_image: Annotated[
        bool,
        typer.Option(help="Sample one text per image (MetaCLIP 2), or every (image, text)."),
    ] = _C.one_text_per_image,
    exclude_store: Annotated[
        str | None, typer.Option(help="Uuids of earlier dumps: left out here, this run's added.")
    ] = None,
    input_format: Annotated[
        str, typer.Option("--format", help="wat, warc, or auto (by file name).")
    ] = _C.input_format,
    languages: Annotated[
        str,
        typer.Option(help="Comma-separated languages to keep (fastText lid.176); 'all' keeps all. "
                          "--recipe worldwide: the metadata languages to curate (default: all "
                          "of the metadata's)."),
    ] = _LANGUAGES,
    dask_address: Annotated[
        str | None, typer.Option(help="Existing Dask scheduler (default: a local cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
    limits: LimitsJSON = None,
    write_pool: Annotated[
        bool,
        typer.Option(help="Also write OUTPUT/pool: every candidate pair and the counts, for "
                          "online balancing in the training loader (docs/online.md)."),
    ] = _C.write_pool,
    input_options: OptionsJSON = None,
    metadata_options: OptionsJSON = None,
    output_options: OptionsJSON = None,
    exclude_store_options: OptionsJSON = None,
    credentials: Credentials = None,
    debug: Debug = False,
) -> None:
    """Extract, match, count and balance: a curated, img2dataset-ready set."""
    options = dict(locals())
    locations_without_credentials(
        inputs=inputs, metadata=metadata, output=output, exclude_store=exclude_store,
        crawl_data_root=crawl_data_root,
    )  # fmt: skip
    print_summary(CURATE.run(options))


REBALANCE = FlowCall("metaclip_prefect.flows.rebalance:rebalance", rename={"workers": "n_workers"})


def rebalance(
    output: Annotated[str, typer.Argument(help="Output of a finished `metaclip curate`.")],
    t: Annotated[
        float, typer.Option(help="New balancing threshold (a worldwide run's: the new t_en).")
    ],
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
    print_summary(REBALANCE.run(dict(locals())))


POOL = FlowCall("metaclip_prefect.flows.pool:write_pool", rename={"workers": "n_workers"})


def pool(
    output: Annotated[str, typer.Argument(help="Output of a finished `metaclip curate`.")],
    dask_address: Annotated[
        str | None, typer.Option(help="Existing Dask scheduler (default: a local cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
    output_options: OptionsJSON = None,
    credentials: Credentials = None,
    debug: Debug = False,
) -> None:
    """Write OUTPUT/pool, the matched pool for online balancing: no matching again.

    Every pair the run's balancing draws from (img2dataset-ready, with entry ids and pair
    keys) and the global counts; a training loader draws a new balanced sample from it every
    epoch (docs/online.md). Reads and writes only inside OUTPUT."""
    result = POOL.run(dict(locals()))
    typer.echo(f"pool: {result['pool']['rows']} pairs in {result['pool']['uri']}")


DEMO_T = 8.0  # the demo pool is small: a low t shows head entries being capped
DEMO_T_EN = 4.0  # the worldwide demo's English pool is smaller still
DEMO_RECIPES = ("english", "worldwide")


def demo(
    output: Annotated[str, typer.Option(help="Where to write the demo curation.")] = "demo-output",
    recipe: Annotated[
        str,
        typer.Option(
            help="english: MetaCLIP's recipe on English pages; worldwide: MetaCLIP 2's, on "
            "pages in many languages with metadata for 14 of them."
        ),
    ] = "english",
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
    debug: Debug = False,
) -> None:
    """Curate the WAT files shipped with the package (offline, a minute on 2 cores)."""
    if recipe not in DEMO_RECIPES:
        fail(f"--recipe must be one of {', '.join(DEMO_RECIPES)}, not {recipe!r}")
    package = importlib.resources.files("metaclip")
    if recipe == "worldwide":
        data = package / "demo_worldwide"
        metadata, t = data / "metadata", DEMO_T_EN
    else:
        data = package / "demo_data"
        metadata, t = data / "metadata.json", DEMO_T
    result = run_flow(
        CURATE.load(),
        debug=debug,
        inputs=[str(data)],
        metadata=str(metadata),
        output=str(Path(output).resolve()),
        recipe=recipe,
        t=t,
        batch_size=1,
        n_buckets=4,
        n_workers=workers,
    )
    print_summary(result)


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


# Every subcommand, once, in the order `metaclip --help` lists them. A module that fails to
# import fails the CLI (above); only a missing optional dependency group is tolerated, by the
# command that needs it (`needs`): still listed, it says what to install when run.
COMMANDS: tuple[Command, ...] = (
    Command("curate", curate, flow=CURATE),
    Command("rebalance", rebalance, flow=REBALANCE),
    Command("pool", pool, flow=POOL),
    Command("demo", demo),
    Command("unlock", unlock),
    Command("stats", stats_command),
    Command("compare", compare_command),
    Command("build-metadata", build_metadata_command, flow=BUILD),
    Command("inspect-metadata", inspect_metadata_command),
    Command("match", match_command),
    Command("experts", experts_command, flow=EXPERTS, needs=MODE,
            subcommands=(Command("ensemble", ensemble_command),)),
    Command("route", route_command, needs=MODE),
)


def register(target: typer.Typer, module: str | None = None) -> None:
    """Add the commands (those defined in `module` only, if given) to a Typer app."""
    for command in COMMANDS:
        if module is None or command.function.__module__ == module:
            command.register(target)


register(app)


def main() -> None:
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
