"""Ensemble weights of the experts for a task, from its class names (MoDE's formula).

For each class c: d_c is the Euclidean distance from its embedding to the nearest fine centre
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
from metaclip.experts.embedding import embed_texts, load_encoder
from metaclip.experts.kmeans import Centres
from metaclip.io import storage


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


def read_class_names(source: str | Sequence[str], **storage_options: Any) -> list[str]:
    """A text file (one class per line) or a list of names; blank lines dropped."""
    if isinstance(source, str):
        text = storage.read_bytes(source, **storage_options).decode("utf-8")
        names = text.splitlines()
    else:
        names = list(source)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise UserError("no class names given")
    return names


def route(
    class_names: Sequence[str],
    centres: Centres,
    encoder: str | None = None,
    params: RoutingParams = RoutingParams(),  # noqa: B008
    device: str | None = None,
) -> dict[str, Any]:
    """Embed the class names with the experts' encoder and weight each expert."""
    name = encoder or centres.meta.get("encoder")
    if not name:
        raise UserError("the centres do not name their encoder: pass one")
    normalize = bool(centres.meta.get("normalize", True))
    x = embed_texts(list(class_names), load_encoder(name, device), normalize)
    _, experts, dist = centres.assign(x)
    weights = expert_weights(dist, experts, centres.n_experts, params)
    return {
        "weights": weights.tolist(),
        "n_classes": len(class_names),
        "encoder": name,
        "params": asdict(params),
        "classes": [
            {"name": c, "expert": int(k), "distance": float(d)}
            for c, k, d in zip(class_names, experts, dist, strict=True)
        ],
    }
