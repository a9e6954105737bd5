"""CLI commands `experts` (build MoDE data experts) and `route` (ensemble weights for a task)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from metaclip.errors import UserError
from metaclip.experts.assign import N_EXAMPLES
from metaclip.experts.embedding import BATCH_SIZE, DEFAULT_ENCODER, SIMCSE
from metaclip.experts.inputs import SAMPLE_SIZE
from metaclip.experts.kmeans import N_COARSE, N_FINE, N_ITER
from metaclip.experts.routing import RoutingParams
from metaclip_prefect.flows.cli_common import Debug, OptionsJSON, credentials_type

_DEFAULTS = RoutingParams()
Credentials = credentials_type("inputs, output")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _print_experts(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"data experts: {result['pairs']:,} pairs")
    for column in ("expert", "pairs", "out-of-cluster added", "folder"):
        table.add_column(column, justify="left" if column == "folder" else "right")
    for k, (size, added, folder) in enumerate(zip(
        result["expert_sizes"], result["outside_added"], result["outputs"]["experts"], strict=True
    )):
        table.add_row(str(k), f"{size:,}", f"{added:,}", folder)
    console = Console()
    console.print(table)
    console.print(f"clusters: {result['outputs']['clusters']}")
    console.print(f"summary:  {result['outputs']['summary']}")


def experts_command(
    curated: Annotated[str, typer.Argument(help="Curation output root, its curated/ or a glob.")],
    output: Annotated[str, typer.Option(help="Output directory or s3:// prefix.")],
    encoder: Annotated[
        str, typer.Option(help=f"Sentence encoder: {DEFAULT_ENCODER} (offline), {SIMCSE}, "
                          "pooler:<dir> or a sentence-transformers model.")
    ] = DEFAULT_ENCODER,
    fine: Annotated[int, typer.Option(help="Fine k-means centres.")] = N_FINE,
    coarse: Annotated[int, typer.Option(help="Coarse clusters (experts).")] = N_COARSE,
    balanced: Annotated[bool, typer.Option(help="Balanced coarse k-means.")] = False,
    sample_size: Annotated[int, typer.Option(help="Pairs sampled for k-means.")] = SAMPLE_SIZE,
    outside_share: Annotated[
        float, typer.Option(help="Out-of-cluster pairs added per expert (MoDE: 0.02).")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of sampling and k-means.")] = 0,
    niter: Annotated[int, typer.Option(help="k-means iterations.")] = N_ITER,
    examples: Annotated[
        int, typer.Option(help="Example captions per expert in clusters.json.")
    ] = N_EXAMPLES,
    dtype: Annotated[str, typer.Option(help="Stored embeddings: float16 or float32.")] = "float16",
    batch_size: Annotated[int, typer.Option(help="Captions per encoder batch.")] = BATCH_SIZE,
    dask_address: Annotated[
        str | None, typer.Option(help="Existing Dask scheduler (default: a local cluster).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Local cluster worker processes.")] = None,
    input_options: Annotated[
        str | None,
        typer.Option(help="fsspec options of the curated input, as a JSON object (no "
                          "credentials)."),
    ] = None,
    output_options: OptionsJSON = None,
    credentials: Credentials = None,
    debug: Debug = False,
) -> None:
    """Embed curated captions, cluster them, write one img2dataset-ready dataset per expert."""
    from metaclip_prefect.flows.cli_common import credentials_option, json_option, run_flow
    from metaclip_prefect.flows.experts import data_experts

    result = run_flow(
        data_experts, debug=debug, curated=curated, output=output, encoder=encoder,
        n_fine=fine, n_coarse=coarse, balanced=balanced, sample_size=sample_size,
        outside_share=outside_share, seed=seed, niter=niter, n_examples=examples, dtype=dtype,
        batch_size=batch_size, dask_address=dask_address, n_workers=workers,
        input_options=json_option("--input-options", input_options),
        output_options=json_option("--output-options", output_options),
        credentials=credentials_option(credentials),
    )  # fmt: skip
    _print_experts(result)


def _routing_name(classes_file: str | None) -> str:
    if not classes_file:
        return "classes"
    stem = classes_file.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "classes"


def route_command(
    classes: Annotated[list[str] | None, typer.Argument(help="Class names.")] = None,
    experts: Annotated[str, typer.Option(help="Output of `metaclip experts`.")] = ".",
    classes_file: Annotated[
        str | None, typer.Option(help="Text file with one class name per line.")
    ] = None,
    save: Annotated[
        str | None, typer.Option(help="Where to write the weights (default: <experts>/routing/).")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option(help="Encoder (default: the one the experts were built with).")
    ] = None,
    a_offset: Annotated[float, typer.Option()] = _DEFAULTS.a_offset,
    a_cutoff: Annotated[int, typer.Option()] = _DEFAULTS.a_cutoff,
    m_scale: Annotated[float, typer.Option()] = _DEFAULTS.m_scale,
    m_floor: Annotated[float, typer.Option()] = _DEFAULTS.m_floor,
    m_shift: Annotated[float, typer.Option()] = _DEFAULTS.m_shift,
    temperature: Annotated[float, typer.Option()] = _DEFAULTS.temperature,
) -> None:
    """Ensemble weight of each expert for a task's class names (MoDE's formula)."""
    from metaclip.experts.kmeans import Centres
    from metaclip.experts.paths import ModeLayout
    from metaclip.experts.routing import read_class_names, route
    from metaclip.io.results import write_json

    layout = ModeLayout(experts)
    params = RoutingParams(a_offset, a_cutoff, m_scale, m_floor, m_shift, temperature)
    try:
        names = read_class_names(classes_file) if classes_file else read_class_names(classes or [])
        centres = Centres.load(layout.centres)
        result = route(names, centres, encoder, params)
    except (UserError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    out = save or layout.routing(_routing_name(classes_file))
    write_json(out, result)
    for k, weight in enumerate(result["weights"]):
        typer.echo(f"expert {k}\t{weight:.6f}")
    typer.echo(f"saved: {out}")


def register(app: typer.Typer) -> None:
    """Add the MoDE commands to the `metaclip` CLI."""
    app.command("experts")(experts_command)
    app.command("route")(route_command)
