"""The `metaclip` command: one subcommand per flow, one-line errors, trustworthy exit codes.

Exit codes: 0 success, 1 the run failed, 2 a usage or input mistake.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
# The temporary local API (no PREFECT_API_URL) may start slowly on a busy machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

from metaclip.balance import DEFAULT_T  # noqa: E402
from metaclip.config import check_no_userinfo, parse_options  # noqa: E402
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


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class _NoTracebacks(logging.Filter):
    """On the terminal, drop log records that carry a traceback: the CLI ends with one line
    saying what failed; the traceback stays in the run's log (UI, `prefect flow-run logs`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None and not record.stack_info


def quiet_tracebacks(debug: bool) -> None:
    """Unless debug, keep tracebacks off Prefect's terminal handlers (not off its API log)."""
    if debug:
        return
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(
        v for v in logging.Logger.manager.loggerDict.values() if isinstance(v, logging.Logger)
    )]  # fmt: skip
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, PrefectConsoleHandler) and not any(
                isinstance(f, _NoTracebacks) for f in handler.filters
            ):
                handler.addFilter(_NoTracebacks())


def run_flow(flow: Any, debug: bool = False, **params: Any) -> dict[str, Any]:
    """Run a flow: its result, or one line on stderr and exit code 2 (a mistake in what was
    asked: the flow's Failed state holds a UserError) or 1 (the run failed)."""
    quiet_tracebacks(debug)
    try:
        state = flow(**params, return_state=True)
    except UserError as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - before the run started (API, cluster): one line
        if debug:
            raise
        fail(f"{_first_line(exc)} (traceback in {_log_traceback()})", EXIT_FAILED)
    if state.is_completed():
        return state.result()
    outcome = state.result(raise_on_failure=False)
    message = (state.message or f"flow ended in state {state.type.value}").strip()
    first_line = message.splitlines()[0] if message else state.type.value
    if isinstance(outcome, UserError):
        fail(first_line)
    hint = "" if debug else " (the traceback is in the run's log; --debug prints it here)"
    fail(first_line + hint, EXIT_FAILED)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _log_traceback() -> Path:
    """Write the current exception's traceback to the CLI's error log; its path."""
    import traceback

    folder = Path(os.environ.get("METACLIP_LOG_DIR") or Path.home() / ".cache/metaclip/logs")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last-error.log"
    path.write_text(traceback.format_exc())
    return path


def _json_option(name: str, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        fail(f"{name}: not JSON: {value!r}")
    if not isinstance(parsed, dict):
        fail(f"{name}: must be a JSON object, like '{{\"anon\": true}}'")
    _refuse_credentials(lambda: parse_options(name, parsed))
    return parsed


def _refuse_credentials(check: Any) -> None:
    """Credentials are refused here, before a flow run exists: Prefect stores a run's
    parameters in its database as soon as the run is created. (Every other check is the
    flow's.)"""
    try:
        check()
    except UserError as exc:
        fail(str(exc))


def _locations_without_credentials(**locations: str | list[str] | None) -> None:
    for name, value in locations.items():
        for uri in [value] if isinstance(value, str) else (value or []):
            _refuse_credentials(lambda n=name, u=uri: check_no_userinfo(n, u))


def _credentials(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        location, sep, block = pair.partition("=")
        if not sep:
            fail(f"--credentials takes LOCATION=BLOCK (e.g. output=my-s3), not {pair!r}")
        out[location.strip()] = block.strip()
    return out


OptionsJSON = Annotated[
    str | None,
    typer.Option(help="fsspec options as a JSON object (no credentials), e.g. "
                      '\'{"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}\''),
]  # fmt: skip
Credentials = Annotated[
    list[str] | None,
    typer.Option(help="LOCATION=BLOCK: a Prefect Secret block holding that location's "
                      "credentials as JSON (locations: inputs, metadata, output, exclude_store)."),
]  # fmt: skip
Debug = Annotated[bool, typer.Option(help="Print tracebacks on the terminal too.")]


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
    input_options: OptionsJSON = None,
    metadata_options: OptionsJSON = None,
    output_options: OptionsJSON = None,
    exclude_store_options: OptionsJSON = None,
    credentials: Credentials = None,
    debug: Debug = False,
) -> None:
    """Extract, match, count and balance: a curated, img2dataset-ready set."""
    from metaclip_prefect.flows.curate import curate as curate_flow

    _locations_without_credentials(
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
        input_options=_json_option("--input-options", input_options),
        metadata_options=_json_option("--metadata-options", metadata_options),
        output_options=_json_option("--output-options", output_options),
        exclude_store_options=_json_option("--exclude-store-options", exclude_store_options),
        credentials=_credentials(credentials),
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
        n_workers=workers, output_options=_json_option("--output-options", output_options),
        exclude_store_options=_json_option("--exclude-store-options", exclude_store_options),
        credentials=_credentials(credentials),
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
    from metaclip import lease
    from metaclip.config import check_output_location, parse_options
    from metaclip.paths import OutputLayout

    try:
        uri = OutputLayout(check_output_location("output", output)).lock
        opts = parse_options("--output-options", _json_option("--output-options", output_options))
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
