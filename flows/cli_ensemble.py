"""CLI command `experts ensemble`: ensemble the data experts' logits for a task with routing
weights and report each expert, their plain mean and the weighted ensemble (MoDE's
post_report_ensemble.py). numpy only: it needs no optional dependency group."""

from __future__ import annotations

import io
from typing import Annotated, Any

import numpy as np
import typer

from metaclip.errors import UserError
from metaclip.experts import ensemble as ens
from metaclip_prefect.flows.cli_common import fail


def _print_results(result: dict[str, Any], weights: np.ndarray, files: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    metric = result.get("metric")
    title = (f"ensemble of {len(files)} experts: {result['n']:,} samples, "
             f"{result['n_classes']:,} classes" + (f", {metric}" if metric else ""))
    table = Table(title=title)
    for column in ("", "weight", metric or "metric", "logits"):
        table.add_column(column, justify="left" if column in ("", "logits") else "right")
    for i, (weight, file) in enumerate(zip(weights, files, strict=True)):
        value = result.get(f"expert-{i}")
        table.add_row(f"expert-{i}", f"{weight:.6f}", _number(value), file)
    for key in ("expert-max", "all_unit", "ensemble"):
        if key in result:
            table.add_row(key, "", _number(result[key]), "")
    Console().print(table)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _targets_of(
    files: list[str], found: list[np.ndarray | None], targets: str | None, n_classes: int
) -> np.ndarray | None:
    """--targets if given; else the targets stored in the .npz files, which must agree."""
    if targets:
        return ens.read_targets(targets, n_classes)
    stored = [(f, t) for f, t in zip(files, found, strict=True) if t is not None]
    if not stored:
        return None
    if len(stored) != len(files):
        missing = next(f for f, t in zip(files, found, strict=True) if t is None)
        raise UserError(f"{missing}: holds no targets while other experts' files do; "
                        "pass --targets")
    first_file, first = stored[0]
    for file, t in stored[1:]:
        if not np.array_equal(t, first):
            raise UserError(f"{file}: its targets differ from {first_file}'s")
    return first


def _resolve_metric(metric: str | None, task: str | None) -> str:
    if task is None:
        return metric or ens.DEFAULT_METRIC
    by_task = ens.metric_for_task(task)
    if metric and metric != by_task:
        raise UserError(f"--metric {metric} disagrees with --task {task} (the reference "
                        f"scores it with {by_task}); give one of them")
    return by_task


def _save(path: str, logits: np.ndarray, report: dict[str, Any]) -> str:
    from metaclip.io import storage
    from metaclip.io.results import write_json

    if not path.endswith(".npy"):
        raise UserError(f"--save {path}: name a .npy file (the JSON report goes beside it)")
    buffer = io.BytesIO()
    np.save(buffer, logits, allow_pickle=False)
    storage.write_bytes_atomic(path, buffer.getvalue())
    report_path = path[: -len(".npy")] + ".json"
    write_json(report_path, report)
    return report_path


def ensemble_command(
    logits: Annotated[
        list[str],
        typer.Argument(help="Logits of each expert (N x C; .npy, or .npz with `logits` and "
                            "optional `targets`), in expert order."),
    ],
    weights: Annotated[
        str,
        typer.Option(help="Routing weights: the JSON `metaclip route` wrote, or comma-separated "
                          "numbers, one per expert."),
    ],
    targets: Annotated[
        str | None,
        typer.Option(help="Class index per sample (.npy, or text with one integer a line); "
                          "default: the targets in the .npz files."),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help=f"{' | '.join(ens.METRICS)} (default: --task's, else accuracy)."),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(help="Dataset name (e.g. Food101, Flowers102): the reference's metric "
                          "for it."),
    ] = None,
    save: Annotated[
        str | None,
        typer.Option(help="Write the ensemble logits to this .npy and the report beside it "
                          "(.json)."),
    ] = None,
) -> None:
    """Ensemble the experts' logits with routing weights (MoDE) and score them."""
    try:
        chosen = _resolve_metric(metric, task)
        ens.metric_function(chosen)  # an unknown name fails before any read
        read = [ens.read_logits(file) for file in logits]
        arrays = [x for x, _ in read]
        w = ens.read_weights(weights)
        combined = ens.ensemble_logits(arrays, w)
        y = _targets_of(logits, [t for _, t in read], targets, combined.shape[1])
        if y is None:
            result: dict[str, Any] = {"n": combined.shape[0], "n_classes": combined.shape[1]}
        else:
            result = ens.evaluate(arrays, w, y, chosen)
        report = {**result, "weights": w.tolist(), "experts": logits, "task": task,
                  "targets": targets, "ensemble_logits": save}
        report_path = _save(save, combined, report) if save else None
    except UserError as exc:
        fail(str(exc).splitlines()[0])
    _print_results(result, w, logits)
    if y is None:
        typer.echo("no targets (pass --targets or .npz files with them): logits only")
    if report_path:
        typer.echo(f"saved: {save}\nreport: {report_path}")
