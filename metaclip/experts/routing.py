"""Ensemble weights of the experts for a task, from its class names (MoDE's formula).

Each class is embedded as the reference embeds it (metaclip.experts.templates: the task's
prompt templates filled with the name, CLIP's 80 ImageNet templates by default). For each
class c: d_c is the Euclidean distance from its embedding to the nearest fine centre
and k(c) that centre's expert; n is the number of classes.
    a   = exp(a_offset - sqrt(n)) if n < a_cutoff else 0
    m   = m_scale * log10(max(m_floor, n - m_shift))
    w_k = sum over classes with k(c) = k of exp((a - d_c) * m)
    weights = softmax(w / temperature)
Defaults are MoDE's: a_offset 0.5, a_cutoff 10, m_scale 5, m_floor 10, m_shift 200, temperature 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from metaclip.errors import UserError
from metaclip.experts.embedding import load_encoder
from metaclip.experts.kmeans import Centres
from metaclip.experts.templates import (
    DEFAULT_TEMPLATES,
    Label,
    embed_classes,
    read_list,
    read_templates,
)


@dataclass(frozen=True)
class RoutingParams:
    a_offset: float = 0.5
    a_cutoff: int = 10
    m_scale: float = 5.0
    m_floor: float = 10.0
    m_shift: float = 200.0
    temperature: float = 8.0


def softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max())
    return z / z.sum()


def expert_weights(
    distances: np.ndarray,
    experts: np.ndarray,
    n_experts: int,
    params: RoutingParams = RoutingParams(),  # noqa: B008 - frozen, so a shared default is safe
) -> np.ndarray:
    """The formula above, from each class's nearest-centre distance and expert."""
    n = len(distances)
    if n == 0:
        raise UserError("routing needs at least one class name")
    a = math.exp(params.a_offset - math.sqrt(n)) if n < params.a_cutoff else 0.0
    m = params.m_scale * math.log10(max(params.m_floor, n - params.m_shift))
    w = np.zeros(n_experts, dtype=np.float64)
    np.add.at(w, experts, np.exp((a - distances.astype(np.float64)) * m))
    return softmax(w / params.temperature)


def read_class_names(source: str | Sequence[Label], **storage_options: Any) -> list[Label]:
    """A text file (one class per line), a JSON file (a list whose items are a name or a list
    of synonyms, as the reference's labels.json), or a list; blank names dropped."""
    items = read_list(source, "classes", **storage_options) if isinstance(source, str) else source
    names = [_label(item) for item in items]
    names = [n for n in names if n]
    if not names:
        raise UserError("no class names given")
    return names


def _label(item: Any) -> Label:
    if isinstance(item, str):
        return item.strip()
    if isinstance(item, list) and all(isinstance(x, str) for x in item):
        return [x.strip() for x in item if x.strip()]
    raise UserError(f"a class is a name or a list of names, not {item!r:.80}")


def route(
    class_names: Sequence[Label],
    centres: Centres,
    encoder: str | None = None,
    params: RoutingParams = RoutingParams(),  # noqa: B008
    device: str | None = None,
    templates: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Embed the class names with the experts' encoder through `templates` (a shipped task's
    name, `none` for bare names, a file or a list; default CLIP's 80 ImageNet templates) and
    weight each expert by Euclidean distance to the fine centres, as the reference
    (post_report_ensemble.py: torch.cdist), whatever distance the clustering used."""
    name = encoder or centres.meta.get("encoder")
    if not name:
        raise UserError("the centres do not name their encoder: pass one")
    filled = read_templates(templates)
    x = embed_classes(list(class_names), filled, load_encoder(name, device))
    _, experts, dist = centres.assign(x, distance="euclidean")
    weights = expert_weights(dist, experts, centres.n_experts, params)
    return {
        "weights": weights.tolist(),
        "n_classes": len(class_names),
        "encoder": name,
        "templates": len(filled),
        "template_source": _source_name(templates),
        "params": asdict(params),
        "classes": [
            {"name": c, "expert": int(k), "distance": float(d)}
            for c, k, d in zip(class_names, experts, dist, strict=True)
        ],
    }


def _source_name(templates: str | Sequence[str] | None) -> str:
    if templates is None:
        return DEFAULT_TEMPLATES
    return templates if isinstance(templates, str) else "list"
