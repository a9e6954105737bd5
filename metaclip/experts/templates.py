"""Prompt templates and class names of the usual zero-shot tasks, and task embeddings made
from them as MoDE makes them (apps/mode/prep_feature.py, build_text_indfeatures).

A class's embedding: every template filled with the class name (each synonym, when a class
is a list of names), each filled text embedded and L2-normalised, their mean normalised.

Shipped (metaclip/experts/prompts/, see PROVENANCE.txt there): CLIP's 80 ImageNet templates
(`imagenet`, the default) and the templates and class names of the 27 other tasks of MoDE's
evaluation (MetaCLIP's clipeval, from SLIP).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from metaclip.errors import UserError
from metaclip.experts.embedding import Encoder, l2_normalize
from metaclip.io import storage

DEFAULT_TEMPLATES = "imagenet"
BARE = "none"  # templates="none": the bare class name, one text per name
Label = str | list[str]  # a class: one name, or synonyms sharing one embedding
MAX_TEMPLATES = 10_000
MAX_TEMPLATE_CHARS = 1_000


@functools.lru_cache(maxsize=1)
def _shipped(name: str) -> dict[str, list[Any]]:
    files = importlib.resources.files("metaclip.experts") / "prompts" / name
    return json.loads(files.read_text(encoding="utf-8"))


def task_names() -> list[str]:
    return list(_shipped("templates.json"))


def _task(name: str) -> str:
    for task in task_names():  # case-insensitive: Food101, food101
        if task.lower() == name.lower():
            return task
    raise UserError(f"unknown task {name!r}: one of {', '.join(task_names())}")


def task_templates(task: str) -> list[str]:
    return list(_shipped("templates.json")[_task(task)])


def task_labels(task: str) -> list[Label]:
    return list(_shipped("labels.json")[_task(task)])


def check_templates(templates: Sequence[str], source: str = "templates") -> list[str]:
    """Each template holds one `{}` and formats with one name (str.format, as the reference)."""
    checked = [t for t in templates if isinstance(t, str) and t.strip()]
    if not checked or len(checked) != len(templates):
        raise UserError(f"{source}: give a non-empty list of non-empty template strings")
    if len(checked) > MAX_TEMPLATES:
        raise UserError(f"{source}: {len(checked)} templates, more than {MAX_TEMPLATES}")
    for t in checked:
        if len(t) > MAX_TEMPLATE_CHARS or t.count("{}") != 1:
            raise UserError(f"{source}: each template needs exactly one {{}}: {t[:80]!r}")
        try:
            t.format("x")
        except (IndexError, KeyError, ValueError) as exc:
            raise UserError(f"{source}: {t[:80]!r} does not format with one name ({exc})") from None
    return checked


def read_templates(source: str | Sequence[str] | None, **storage_options: Any) -> list[str]:
    """Templates from a shipped task's name, `none` (bare names), a list, or a file: JSON (a
    list of strings) or text (one template per line)."""
    if source is None:
        source = DEFAULT_TEMPLATES
    if not isinstance(source, str):
        return check_templates(list(source))
    if source == BARE:
        return ["{}"]
    if "/" not in source and "." not in source:
        return task_templates(source)
    items = read_list(source, "templates", **storage_options)
    if not source.endswith(".json"):  # a text file: blank lines are not templates
        items = [line for line in items if line.strip()]
    return check_templates(items, source)


def read_list(source: str, what: str, **storage_options: Any) -> list[Any]:
    """A file's items: a JSON list (`.json`) or its lines; mistakes are one-line UserErrors."""
    try:
        text = storage.read_bytes(source, **storage_options).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} {source}: cannot read it ({exc})") from None
    if not source.endswith(".json"):
        return text.splitlines()
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{what} {source}: not JSON ({exc})") from None
    if not isinstance(items, list):
        raise UserError(f"{what} {source}: give a JSON list")
    return items


def fill(templates: Sequence[str], label: Label) -> list[str]:
    """Every template with every name of the class, in the reference's order."""
    names = [label] if isinstance(label, str) else list(label)
    return [t.format(name) for t in templates for name in names]


def embed_classes(
    labels: Sequence[Label],
    templates: Sequence[str],
    encoder: Encoder,
    batch_size: int = 256,
) -> np.ndarray:
    """(n_classes, dim) unit vectors: per class, the normalised mean of its normalised filled
    templates. All texts go through the encoder together (batched); each class is then
    averaged over its own rows."""
    texts, owner = [], []
    for i, label in enumerate(labels):
        filled = fill(templates, label)
        texts.extend(filled)
        owner.extend([i] * len(filled))
    if not texts:
        raise UserError("routing needs at least one class name")
    rows = l2_normalize(encoder.encode(texts, batch_size=batch_size).astype(np.float32))
    owners = np.asarray(owner)
    sums = np.zeros((len(labels), rows.shape[1]), dtype=np.float64)
    np.add.at(sums, owners, rows)
    means = sums / np.bincount(owners, minlength=len(labels))[:, None]
    return l2_normalize(means).astype(np.float32)
