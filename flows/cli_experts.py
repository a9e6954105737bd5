"""CLI commands `experts` (build MoDE data experts) and `route` (ensemble weights for a task);
flows/cli.py lists them, as needing the optional `mode` dependency group."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Annotated, Any

import typer

from metaclip.config import ExpertsConfig
from metaclip.errors import UserError
from metaclip.experts.embedding import DEFAULT_ENCODER, SIMCSE
from metaclip.experts.routing import RoutingParams
from metaclip_prefect.flows.cli_common import Debug, FlowCall, OptionsJSON, credentials_type

# torch, sentence-transformers and faiss (the optional `mode` group) are imported only where
# used: this module imports without them, and flows/cli.py lists its commands with `needs`.
Credentials = credentials_type("inputs, output")
EXPERTS = FlowCall(
    "metaclip_prefect.flows.experts:data_experts",
    rename={"fine": "n_fine", "coarse": "n_coarse", "examples": "n_examples",
            "workers": "n_workers"},
)  # fmt: skip
_E = ExpertsConfig  # the defaults are the configuration's (metaclip.config), written there
_R = RoutingParams


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
    balance = result["balance"]["experts"]
    ratio = balance["largest_over_smallest"]
    console.print(f"balance:  largest/smallest {'-' if ratio is None else f'{ratio:.2f}'}, "
                  f"entropy {balance['entropy_bits']:.3f} bits "
                  f"({balance['entropy_share']:.1%} of even)")  # fmt: skip
    console.print(f"clusters: {result['outputs']['clusters']}")
    console.print(f"summary:  {result['outputs']['summary']}")


def experts_command(
    curated: Annotated[str, typer.Argument(help="Curation output root, its curated/ or a glob.")],
    output: Annotated[str, typer.Option(help="Output directory or s3:// prefix.")],
    encoder: Annotated[
        str, typer.Option(help=f"Sentence encoder: {DEFAULT_ENCODER} (offline), {SIMCSE}, "
                          "pooler:<dir> or a sentence-transformers model.")
    ] = _E.encoder,
    fine: Annotated[int, typer.Option(help="Fine k-means centres.")] = _E.n_fine,
    coarse: Annotated[int, typer.Option(help="Coarse clusters (experts).")] = _E.n_coarse,
    kmeans: Annotated[
        str, typer.Option(help="balanced (MoDE's balanced k-means at both levels), faiss (plain) "
                          "or faiss-balanced (plain fine, size-balanced coarse).")
    ] = _E.kmeans,
    distance: Annotated[
        str, typer.Option(help="euclidean or cosine (balanced k-means only).")
    ] = _E.distance,
    sample_size: Annotated[
        int, typer.Option(help="Pairs sampled for k-means.")
    ] = _E.sample_size,
    outside_share: Annotated[
        float, typer.Option(help="Out-of-cluster pairs added per expert (MoDE: 0.02).")
    ] = _E.outside_share,
    outside_base: Annotated[
        str, typer.Option(help="outside (MoDE: a share of the pairs outside the expert) or "
                          "expert (a share of the expert's own size).")
    ] = _E.outside_base,
    seed: Annotated[int, typer.Option(help="Seed of sampling and k-means.")] = _E.seed,
    niter: Annotated[
        int, typer.Option(help="Fine k-means iterations (balanced: per chunk).")
    ] = _E.niter,
    coarse_niter: Annotated[int, typer.Option(help="Coarse k-means iterations.")] = _E.coarse_niter,
    chunk_rows: Annotated[
        int, typer.Option(help="Balanced fine k-means: sample rows per online chunk.")
    ] = _E.chunk_rows,
    examples: Annotated[
        int, typer.Option(help="Example captions per expert in clusters.json.")
    ] = _E.n_examples,
    dtype: Annotated[
        str, typer.Option(help="Stored embeddings: float16 or float32.")
    ] = _E.dtype,
    batch_size: Annotated[
        int, typer.Option(help="Captions per encoder batch.")
    ] = _E.batch_size,
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
    _print_experts(EXPERTS.run(dict(locals())))


def _routing_name(classes_file: str | None) -> str:
    if not classes_file:
        return "classes"
    stem = classes_file.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem) or "classes"


def route_command(
    classes: Annotated[list[str] | None, typer.Argument(help="Class names.")] = None,
    experts: Annotated[str, typer.Option(help="Output of `metaclip experts`.")] = ".",
    classes_file: Annotated[
        str | None, typer.Option(help="Text file with one class name per line, or a JSON list "
                                 "(an item may be a list of synonyms).")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="A shipped zero-shot task (imagenet, Food101, CIFAR10, ...): "
                                 "its class names and templates.")
    ] = None,
    templates: Annotated[
        str | None, typer.Option(help="Prompt templates: a shipped task's name, a file (JSON list "
                                 "or one per line, each with one {}), or none for bare names "
                                 "(default: the task's, else CLIP's 80 ImageNet templates).")
    ] = None,
    save: Annotated[
        str | None, typer.Option(help="Where to write the weights (default: <experts>/routing/).")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option(help="Encoder (default: the one the experts were built with).")
    ] = None,
    a_offset: Annotated[float, typer.Option()] = _R.a_offset,
    a_cutoff: Annotated[int, typer.Option()] = _R.a_cutoff,
    m_scale: Annotated[float, typer.Option()] = _R.m_scale,
    m_floor: Annotated[float, typer.Option()] = _R.m_floor,
    m_shift: Annotated[float, typer.Option()] = _R.m_shift,
    temperature: Annotated[float, typer.Option()] = _R.temperature,
) -> None:
    """Ensemble weight of each expert for a task's class names (MoDE's formula)."""
    options = dict(locals())
    from metaclip.experts.kmeans import Centres
    from metaclip.experts.paths import ModeLayout
    from metaclip.experts.routing import read_class_names, route
    from metaclip.experts.templates import task_labels
    from metaclip.io.results import write_json

    layout = ModeLayout(experts)
    params = RoutingParams(**{f.name: options[f.name] for f in fields(RoutingParams)})
    try:
        if sum(bool(x) for x in (classes, classes_file, task)) > 1:
            raise UserError("give class names, --classes-file or --task, not several")
        names = task_labels(task) if task else read_class_names(classes_file or classes or [])
        centres = Centres.load(layout.centres)
        result = route(names, centres, encoder, params, templates=templates or task)
    except (UserError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    out = save or layout.routing(task or _routing_name(classes_file))
    write_json(out, result)
    for k, weight in enumerate(result["weights"]):
        typer.echo(f"expert {k}\t{weight:.6f}")
    typer.echo(f"saved: {out}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`, as flows/cli.py lists them."""
    from metaclip_prefect.flows.cli import register as register_commands

    register_commands(app, __name__)
