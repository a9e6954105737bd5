"""Ensemble the data experts' logits for a task, as MoDE's evaluation does.

Reference: facebookresearch/MetaCLIP apps/mode/post_report_ensemble.py (`process`,
`evaluate_dataset`) and the metrics it imports from clipeval/slip/eval_zeroshot.py. For experts
i = 0..k-1 with logits L_i (N x C) and routing weights w (as given, not renormalised):
    all_unit = metric(mean_i L_i)
    ensemble = metric(sum_i w_i * L_i)
beside each expert's own metric and the best of them (`expert-max`).

numpy only: no torch, no pickles. The files are read by metaclip.experts.ensemble_files
(re-exported here: read_logits, read_targets, read_weights).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from metaclip.errors import UserError
from metaclip.experts.ensemble_files import (  # noqa: F401 - read_* re-exported for callers
    check_targets,
    read_logits,
    read_targets,
    read_weights,
)

Metric = Callable[[np.ndarray, np.ndarray], float]

# --- ensembling ------------------------------------------------------------------------------


def _check_experts(logits: Sequence[np.ndarray]) -> tuple[int, int]:
    if len(logits) == 0:
        raise UserError("no experts' logits given")
    shapes = [np.shape(x) for x in logits]
    if len(shapes[0]) != 2 or 0 in shapes[0]:
        raise UserError(f"expert 0: logits must be 2-D and non-empty, not shape {shapes[0]}")
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise UserError(f"expert {i}: logits of shape {shape}, expert 0's are {shapes[0]}")
    return shapes[0]


def _weights_for(weights: Any, k: int) -> np.ndarray:
    w = read_weights(weights.tolist() if isinstance(weights, np.ndarray) else weights)
    if len(w) != k:
        raise UserError(f"{len(w)} weights for {k} experts: give one weight per expert")
    return w


def _weighted_sum(logits: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    # float64 accumulation, one expert at a time (no k x N x C stack); the reference's product
    # of float32 logits and numpy's float64 weights is float64 too.
    total = np.zeros(np.shape(logits[0]), dtype=np.float64)
    for x, w in zip(logits, weights, strict=True):
        total += np.asarray(x, dtype=np.float64) * w
    return total


def ensemble_logits(logits: Sequence[np.ndarray], weights: Any) -> np.ndarray:
    """sum_i w_i * L_i, weights as given (the reference's `ensemble`), in float64."""
    _check_experts(logits)
    return _weighted_sum(logits, _weights_for(weights, len(logits)))


def mean_logits(logits: Sequence[np.ndarray]) -> np.ndarray:
    """Plain mean of the experts' logits (the reference's `all_unit`), in float64."""
    _check_experts(logits)
    return _weighted_sum(logits, np.ones(len(logits))) / len(logits)


def predictions(logits: np.ndarray) -> np.ndarray:
    """Predicted class per sample; ties go to the lowest class index, as torch's argmax."""
    return np.asarray(logits).argmax(axis=1)


# --- metrics (percent, as the reference) -----------------------------------------------------


def top1_accuracy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Share of samples whose argmax is the target, x 100 (the reference's default)."""
    return float((predictions(logits) == targets).sum()) / len(targets) * 100.0


def _topk_correct(logits: np.ndarray, targets: np.ndarray, k: int) -> np.ndarray:
    """Whether the target is within the k highest logits, ties ranked by class index (the
    order of a stable descending sort), without sorting each row."""
    x = np.asarray(logits)
    target_logit = x[np.arange(len(x)), targets][:, None]
    classes = np.arange(x.shape[1])[None, :]
    ahead = (x > target_logit) | ((x == target_logit) & (classes < targets[:, None]))
    return ahead.sum(axis=1) < k


def top1_top5(logits: np.ndarray, targets: np.ndarray) -> float:
    """(top-1 + top-5 accuracy) / 2, in percent (the reference's Kinetics700 metric)."""
    if np.shape(logits)[1] < 5:
        raise UserError(f"top1_top5 needs at least 5 classes, the logits have "
                        f"{np.shape(logits)[1]}")
    scale = 100.0 / len(targets)  # the reference's correct_k * (100 / batch_size)
    top1, top5 = (int(_topk_correct(logits, targets, k).sum()) * scale for k in (1, 5))
    return float((top1 + top5) / 2)


def mean_per_class(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean over classes of per-class recall, x 100 (the reference's confusion-matrix
    diagonal / row sums). Averaged over the classes present in the targets: where a prediction
    names a class absent from them the reference's row is 0/0 and its mean NaN."""
    n_classes = np.shape(logits)[1]
    hits = np.bincount(targets[predictions(logits) == targets], minlength=n_classes)
    totals = np.bincount(targets, minlength=n_classes)
    present = totals > 0
    return float((hits[present] / totals[present]).mean() * 100.0)


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, tied scores sharing their mean rank."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]


def roc_auc(logits: np.ndarray, targets: np.ndarray) -> float:
    """Binary ROC AUC x 100 of the score L[:, 1] - L[:, 0] (the reference's positive score;
    for two classes it ranks as the softmax probability of class 1 does). Computed as the
    Mann-Whitney statistic with tied scores averaged, as sklearn's roc_auc_score."""
    if np.shape(logits)[1] < 2:
        raise UserError("roc_auc needs at least 2 classes")
    if not np.isin(targets, (0, 1)).all():
        raise UserError("roc_auc needs binary targets (0 or 1)")
    positive = targets == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise UserError("roc_auc needs targets of both classes (0 and 1)")
    x = np.asarray(logits, dtype=np.float64)
    ranks = _average_ranks(x[:, 1] - x[:, 0])
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg) * 100.0)


METRICS: dict[str, Metric] = {
    "accuracy": top1_accuracy,
    "mean_per_class": mean_per_class,
    "top1_top5": top1_top5,
    "roc_auc": roc_auc,
}
# The reference's evaluate_dataset: these datasets' metric; any other is top-1 accuracy.
REFERENCE_METRIC: dict[str, str] = {
    "FGVCAircraft": "mean_per_class",
    "OxfordPets": "mean_per_class",
    "Caltech101": "mean_per_class",
    "Flowers102": "mean_per_class",
    "Kinetics700": "top1_top5",
    "HatefulMemes": "roc_auc",
}
DEFAULT_METRIC = "accuracy"


def metric_for_task(task: str) -> str:
    """The reference's metric for a dataset name (case-insensitive); top-1 for any other."""
    by_lower = {name.lower(): metric for name, metric in REFERENCE_METRIC.items()}
    return by_lower.get(task.lower(), DEFAULT_METRIC)


def metric_function(name: str) -> Metric:
    """The metric of a name in METRICS."""
    if name not in METRICS:
        raise UserError(f"unknown metric {name!r}: use one of {', '.join(METRICS)}")
    return METRICS[name]


def evaluate(
    logits: Sequence[np.ndarray], weights: Any, targets: np.ndarray, metric: str = DEFAULT_METRIC
) -> dict[str, Any]:
    """The reference's `process()` report: `expert-<i>`, `expert-max`, `all_unit`, `ensemble`,
    plus `n`, `n_classes` and `metric`."""
    score = metric_function(metric)
    n, n_classes = _check_experts(logits)
    w = _weights_for(weights, len(logits))
    y = check_targets("targets", np.asarray(targets), n, n_classes)
    units = [score(x, y) for x in logits]
    result: dict[str, Any] = {f"expert-{i}": value for i, value in enumerate(units)}
    result["expert-max"] = max(units)
    result["all_unit"] = score(mean_logits(logits), y)
    result["ensemble"] = score(_weighted_sum(logits, w), y)
    result.update(n=n, n_classes=n_classes, metric=metric)
    return result
