"""Shipped prompt templates and class names, user template files, and the filling order
(metaclip.experts.templates); the embedding itself is checked against the reference in
tests/test_experts_reference.py."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from metaclip.errors import UserError
from metaclip.experts.routing import read_class_names
from metaclip.experts.templates import (
    embed_classes,
    fill,
    read_templates,
    task_labels,
    task_names,
    task_templates,
)

# Templates and classes per task in MoDE's evaluation (MetaCLIP clipeval/slip/*.json).
COUNTS = {
    "imagenet": (80, 1000), "CIFAR10": (18, 10), "CIFAR100": (18, 100), "Food101": (1, 101),
    "STL10": (2, 10), "Kinetics700": (28, 700), "UCF101": (48, 101), "SUN397": (2, 397),
    "FacialEmotionRecognition2013": (6, 7), "KITTI": (1, 4),
}  # fmt: skip


def test_the_28_tasks_of_the_evaluation_are_shipped():
    assert len(task_names()) == 28
    for task, (n_templates, n_classes) in COUNTS.items():
        assert len(task_templates(task)) == n_templates, task
        assert len(task_labels(task)) == n_classes, task
    for task in task_names():
        assert all(t.count("{}") == 1 for t in task_templates(task)), task
    assert task_templates("food101") == task_templates("Food101")  # any case
    assert task_templates("imagenet")[0] == "a bad photo of a {}."  # CLIP's order
    with pytest.raises(UserError, match="unknown task"):
        task_templates("ImageNet-21k")


def test_fill_follows_the_references_order():
    assert fill(["a {}.", "the {}!"], "dog") == ["a dog.", "the dog!"]
    # prep_feature.py: [t.format(l) for t in templates for l in label]
    assert fill(["a {}.", "the {}!"], ["dog", "puppy"]) == [
        "a dog.", "a puppy.", "the dog!", "the puppy!"]  # fmt: skip


def test_template_sources(tmp_path):
    assert read_templates(None) == task_templates("imagenet")
    assert read_templates("none") == ["{}"]
    assert read_templates("CIFAR10") == task_templates("CIFAR10")
    (tmp_path / "t.json").write_text(json.dumps(["a photo of a {}.", "art of the {}."]))
    assert read_templates(str(tmp_path / "t.json")) == ["a photo of a {}.", "art of the {}."]
    (tmp_path / "t.txt").write_text("a photo of a {}.\n\nitap of a {}.\n")
    assert read_templates(str(tmp_path / "t.txt")) == ["a photo of a {}.", "itap of a {}."]


@pytest.mark.parametrize("bad", [
    [], ["no placeholder"], ["two {} and {}"], ["{0} named"], ["{name}"], ["{} {"], [""], [3],
    ["{}" * 1 + "x" * 2000],
])  # fmt: skip
def test_bad_templates_are_refused_in_one_line(tmp_path, bad):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(UserError) as info:
        read_templates(str(path))
    assert "\n" not in str(info.value)


def test_unreadable_template_files_are_user_errors(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(UserError, match="not JSON"):
        read_templates(str(tmp_path / "t.json"))
    (tmp_path / "obj.json").write_text('{"a": 1}')
    with pytest.raises(UserError, match="list"):
        read_templates(str(tmp_path / "obj.json"))
    with pytest.raises(UserError, match="cannot read"):
        read_templates(str(tmp_path / "missing.txt"))


def test_class_names_from_text_and_json(tmp_path):
    (tmp_path / "c.txt").write_text("dog\n\n cat \n")
    assert read_class_names(str(tmp_path / "c.txt")) == ["dog", "cat"]
    (tmp_path / "c.json").write_text(json.dumps(["dog", ["cat", "kitty"], " "]))
    assert read_class_names(str(tmp_path / "c.json")) == ["dog", ["cat", "kitty"]]
    (tmp_path / "bad.json").write_text(json.dumps(["dog", {"x": 1}]))
    with pytest.raises(UserError, match="a name or a list of names"):
        read_class_names(str(tmp_path / "bad.json"))


class Letters:
    """A stand-in encoder: counts of a, b, c in the text (so averages are easy to check)."""

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        return np.array([[t.count(ch) for ch in "abc"] for t in texts], dtype=np.float32)


def test_embed_classes_averages_normalised_rows_per_class():
    templates = ["{}", "{} b"]
    got = embed_classes(["a", ["c", "aa"]], templates, Letters())

    def unit(text):
        v = np.array([text.count(ch) for ch in "abc"], dtype=np.float64)
        return v / np.linalg.norm(v)

    def mean_unit(texts):
        m = sum(unit(t) for t in texts)
        return m / np.linalg.norm(m)

    first = mean_unit(["a", "a b"])
    second = mean_unit(["c", "aa", "c b", "aa b"])
    np.testing.assert_allclose(got, [first, second], atol=1e-6)
