"""Ensembling MoDE data experts (metaclip/experts/ensemble.py, flows/cli_ensemble.py).

- Hand-built logits whose answers are known: each expert right on its own third, one-hot
  weights, the plain mean and a weighted ensemble right exactly where worked out below.
- `evaluate` equals the reference's `process()` and metrics: written again here with numpy
  loops (fast tier), and copied verbatim with torch and sklearn where the `mode` group is
  installed (slow tier: importing them takes seconds).
- The readers refuse pickles, torch files, damaged bytes, NaN, wrong shapes and wrong weight
  counts, each in one line; the CLI prints the report, exits 2 on a mistake and saves.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import orjson
import pytest
import typer
from typer.testing import CliRunner

from metaclip.errors import UserError
from metaclip.experts import ensemble as ens
from metaclip_prefect.flows.cli_ensemble import ensemble_command

# -- hand-built experts -------------------------------------------------------------------------
# 9 samples, 3 classes, targets 0,1,2,0,1,2,... Expert i puts a[i] on the target for the samples
# of its third (3i..3i+2) and 1 on class (target + 1) % 3 everywhere else: each is right on
# exactly its own third.
TARGETS = np.array([0, 1, 2] * 3)
A = (3.0, 1.5, 3.0)


def hand_experts() -> list[np.ndarray]:
    experts = []
    for i, a in enumerate(A):
        x = np.zeros((9, 3), dtype=np.float32)
        for s, t in enumerate(TARGETS):
            if s // 3 == i:
                x[s, t] = a
            else:
                x[s, (t + 1) % 3] = 1.0
        experts.append(x)
    return experts


def test_each_expert_is_right_on_its_third():
    for i, x in enumerate(hand_experts()):
        right = ens.predictions(x) == TARGETS
        assert right.tolist() == [s // 3 == i for s in range(9)]
        assert ens.top1_accuracy(x, TARGETS) == 3 / 9 * 100


@pytest.mark.parametrize("k", range(3))
def test_one_hot_weights_give_that_expert(k: int):
    experts = hand_experts()
    weights = np.eye(3)[k]
    np.testing.assert_array_equal(ens.ensemble_logits(experts, weights), experts[k])
    result = ens.evaluate(experts, weights, TARGETS)
    assert result["ensemble"] == result[f"expert-{k}"] == 3 / 9 * 100


def test_mean_and_weighted_ensemble_are_right_where_expected():
    experts = hand_experts()
    # Mean: the target gets a[j] / 3, the wrong class 2 / 3: right where a[j] > 2 (thirds 0, 2).
    assert (ens.predictions(ens.mean_logits(experts)) == TARGETS).tolist() == [
        True] * 3 + [False] * 3 + [True] * 3
    # Weights .5, .45, .05: target w[j] a[j] = 1.5, .675, .15 against the wrong class's
    # 1 - w[j] = .5, .55, .95: right on thirds 0 and 1.
    weights = np.array([0.5, 0.45, 0.05])
    assert (ens.predictions(ens.ensemble_logits(experts, weights)) == TARGETS).tolist() == [
        True] * 6 + [False] * 3
    result = ens.evaluate(experts, weights, TARGETS)
    assert result == {
        "expert-0": 3 / 9 * 100, "expert-1": 3 / 9 * 100, "expert-2": 3 / 9 * 100,
        "expert-max": 3 / 9 * 100, "all_unit": 6 / 9 * 100, "ensemble": 6 / 9 * 100,
        "n": 9, "n_classes": 3, "metric": "accuracy",
    }


def test_weights_are_not_renormalised():
    experts = hand_experts()
    weights = np.array([0.5, 0.45, 0.05])
    np.testing.assert_allclose(ens.ensemble_logits(experts, weights * 10),
                               ens.ensemble_logits(experts, weights) * 10)
    assert ens.ensemble_logits(experts, weights).dtype == np.float64


def test_metrics_by_hand():
    x = np.array([[2.0, 1.0], [2.0, 1.0], [2.0, 1.0], [2.0, 1.0]])
    y = np.array([0, 0, 0, 1])
    assert ens.top1_accuracy(x, y) == 75.0
    assert ens.mean_per_class(x, y) == 50.0  # class 0: 3 of 3, class 1: 0 of 1
    # Scores L1 - L0: positives .9 and .4, negatives .5 and .1: 3 of 4 pairs ordered.
    scores = np.array([0.9, 0.4, 0.5, 0.1])
    auc_logits = np.stack([np.zeros(4), scores], axis=1)
    assert ens.roc_auc(auc_logits, np.array([1, 1, 0, 0])) == 75.0
    # A tie between a positive and a negative counts half: (1 + 0.5) / 2 pairs.
    tied = np.stack([np.zeros(3), np.array([0.9, 0.5, 0.5])], axis=1)
    assert ens.roc_auc(tied, np.array([1, 1, 0])) == 75.0
    # Six classes; sample 0 top-1 right, sample 1 right within top 5 only, sample 2 in neither.
    six = np.array([[9, 5, 4, 3, 2, 1], [9, 5, 4, 3, 2, 1], [9, 5, 4, 3, 2, 1]], dtype=float)
    assert ens.top1_top5(six, np.array([0, 4, 5])) == pytest.approx(50.0, rel=1e-15)


def test_reference_metric_by_task():
    assert ens.metric_for_task("Flowers102") == "mean_per_class"
    assert ens.metric_for_task("kinetics700") == "top1_top5"
    assert ens.metric_for_task("HatefulMemes") == "roc_auc"
    assert ens.metric_for_task("Food101") == "accuracy"
    assert set(ens.REFERENCE_METRIC.values()) <= set(ens.METRICS)


# -- against the reference ----------------------------------------------------------------------


def naive_metric(name: str, logits: np.ndarray, targets: np.ndarray) -> float:
    """The reference's metrics, loop by loop (numpy, no torch/sklearn)."""
    n, c = logits.shape
    rows = [list(map(float, r)) for r in logits]
    first_max = [max(range(c), key=lambda j, r=r: (r[j], -j)) for r in rows]
    if name == "accuracy":
        return sum(p == t for p, t in zip(first_max, targets, strict=True)) / float(n) * 100.0
    if name == "top1_top5":
        ranked = [sorted(range(c), key=lambda j, r=r: (-r[j], j)) for r in rows]
        top1 = sum(r[0] == t for r, t in zip(ranked, targets, strict=True)) * 100.0 / n
        top5 = sum(t in r[:5] for r, t in zip(ranked, targets, strict=True)) * 100.0 / n
        return (top1 + top5) / 2
    if name == "mean_per_class":
        recalls = []
        for k in sorted(set(targets.tolist())):
            members = [s for s in range(n) if targets[s] == k]
            recalls.append(sum(first_max[s] == k for s in members) / len(members))
        return 100 * sum(recalls) / len(recalls)
    assert name == "roc_auc"
    score = [r[1] - r[0] for r in rows]
    pos = [score[s] for s in range(n) if targets[s] == 1]
    neg = [score[s] for s in range(n) if targets[s] == 0]
    pairs = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return 100 * pairs / (len(pos) * len(neg))


def naive_process(name: str, logits: list[np.ndarray], targets: np.ndarray,
                  weights: np.ndarray) -> dict[str, float]:
    units = [naive_metric(name, x, targets) for x in logits]
    result = {f"expert-{i}": u for i, u in enumerate(units)}
    result["expert-max"] = max(units)
    n, c = logits[0].shape
    mean = np.array([[sum(float(x[s, j]) for x in logits) / len(logits) for j in range(c)]
                     for s in range(n)])
    weighted = np.array([[sum(float(w) * float(x[s, j]) for w, x in zip(weights, logits,
                                                                          strict=True))
                          for j in range(c)] for s in range(n)])
    result["all_unit"] = naive_metric(name, mean, targets)
    result["ensemble"] = naive_metric(name, weighted, targets)
    return result


def random_case(metric: str, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, len(metric)])
    k, n = int(rng.integers(2, 6)), 60
    c = 2 if metric == "roc_auc" else int(rng.integers(5, 12))
    targets = rng.permutation(np.arange(n) % c)  # every class present (see the deviation test)
    # A shared signal makes the experts better than chance and unequal.
    signal = np.eye(c)[targets]
    logits = [(rng.normal(size=(n, c)) + rng.uniform(0, 2) * signal).astype(np.float32)
              for _ in range(k)]
    raw = rng.normal(size=k)
    weights = np.exp(raw) / np.exp(raw).sum()  # softmax, as the routing weights
    return logits, targets, weights


@pytest.mark.parametrize("metric", list(ens.METRICS))
@pytest.mark.parametrize("seed", range(4))
def test_evaluate_equals_naive_process(metric: str, seed: int):
    logits, targets, weights = random_case(metric, seed)
    got = ens.evaluate(logits, weights, targets, metric)
    want = naive_process(metric, logits, targets, weights)
    assert {k: got[k] for k in want} == pytest.approx(want, rel=1e-9)
    assert (got["n"], got["n_classes"], got["metric"]) == (60, logits[0].shape[1], metric)


def reference_process(dataset: str, outputs: list[dict], ensemble_weight: np.ndarray) -> dict:
    """apps/mode/post_report_ensemble.py's evaluate_dataset and process (reading in-memory
    dicts instead of torch.load), with clipeval/slip/eval_zeroshot.py's metrics, verbatim."""
    torch = pytest.importorskip("torch")
    metrics = pytest.importorskip("sklearn.metrics")

    def accuracy(output, target, topk=(1,)):
        with torch.no_grad():
            maxk = max(topk)
            batch_size = target.size(0)
            _, pred = output.topk(maxk, 1, True, True)
            pred = pred.t()
            correct = pred.eq(target.reshape(1, -1).expand_as(pred))
            res = []
            for k in topk:
                correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
                res.append(correct_k.mul_(100.0 / batch_size))
            return res

    def mean_per_class(outputs, targets):
        pred = outputs.argmax(1)
        confusion_matrix = metrics.confusion_matrix(targets, pred)
        per_classes = confusion_matrix.diagonal() / confusion_matrix.sum(axis=1)
        return 100 * per_classes.mean()

    def roc_auc(outputs, targets):
        pos_score = outputs[:, 1] - outputs[:, 0]
        metric = metrics.roc_auc_score(targets, pos_score)
        return 100 * metric

    def evaluate_dataset(d, acc_or_outputs):
        if d in ['FGVCAircraft', 'OxfordPets', 'Caltech101', 'Flowers102']:
            metric = mean_per_class(*acc_or_outputs)
        elif d == 'Kinetics700':
            top1, top5 = accuracy(*acc_or_outputs, topk=(1, 5))
            metric = (top1 + top5) / 2
            metric = metric.item()
        elif d == 'HatefulMemes':
            metric = roc_auc(*acc_or_outputs)
        else:
            pred = acc_or_outputs[0].argmax(dim=1)
            correct = pred.eq(acc_or_outputs[1]).sum()
            metric = correct.item() / float(pred.size(0)) * 100.0
        return metric

    units_acc = [evaluate_dataset(dataset, (data['logits'], data['targets'])) for data in outputs]
    data = outputs[-1]
    result = {f'expert-{i}': acc for i, acc in enumerate(units_acc)}
    result['expert-max'] = max(units_acc)
    all_logits = torch.stack([item['logits'] for item in outputs])
    result['all_unit'] = evaluate_dataset(dataset, (all_logits.mean(dim=0), data['targets']))
    result['ensemble'] = evaluate_dataset(dataset, (
        (all_logits * torch.from_numpy(ensemble_weight).view(-1, 1, 1)).sum(dim=0),
        data['targets']))
    return result


# slow: importing torch and sklearn alone takes ~8 s; the numpy-loop check above is the fast one.
@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["Food101", "Flowers102", "Kinetics700", "HatefulMemes"])
@pytest.mark.parametrize("seed", range(3))
def test_evaluate_equals_the_reference_verbatim(dataset: str, seed: int):
    metric = ens.metric_for_task(dataset)
    logits, targets, weights = random_case(metric, seed)
    torch = pytest.importorskip("torch")
    outputs = [{"logits": torch.from_numpy(x), "targets": torch.from_numpy(targets)}
               for x in logits]
    want = reference_process(dataset, outputs, weights)
    got = ens.evaluate(logits, weights, targets, metric)
    # float32 in the reference's top-k percentages: equal to ~1e-6.
    assert {k: got[k] for k in want} == pytest.approx({k: float(v) for k, v in want.items()},
                                                      rel=1e-6)


def test_mean_per_class_deviation_where_the_reference_gives_nan():
    # Class 2 is predicted but never a target: the reference's confusion-matrix row for it is
    # 0/0 (NaN mean); here the mean is over the classes the targets hold.
    x = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    assert ens.mean_per_class(x, np.array([0, 0, 1])) == 75.0


# -- readers ------------------------------------------------------------------------------------


def one_line_error(call, *args, match: str = "", **kwargs) -> str:
    with pytest.raises(UserError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and match in message, message
    return message


def test_read_npy_and_npz(tmp_path: Path):
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.save(tmp_path / "e.npy", x)
    logits, targets = ens.read_logits(str(tmp_path / "e.npy"))
    np.testing.assert_array_equal(logits, x)
    assert targets is None
    y = np.array([0, 3, 1, 2, 0])
    np.savez(tmp_path / "e.npz", logits=x, targets=y)
    logits, targets = ens.read_logits(str(tmp_path / "e.npz"))
    np.testing.assert_array_equal(logits, x)
    np.testing.assert_array_equal(targets, y)
    np.savez_compressed(tmp_path / "c.npz", logits=x)
    assert ens.read_logits(str(tmp_path / "c.npz"))[1] is None


class _Plant:
    """Unpickling this writes `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (exec, (f"open({self.marker!r}, 'w').write('unpickled')",))


def test_pickles_are_never_loaded(tmp_path: Path):
    marker = tmp_path / "marker"
    plant = _Plant(marker)
    (tmp_path / "raw.npy").write_bytes(pickle.dumps(plant))
    np.save(tmp_path / "object.npy", np.array([plant, 1], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "object.npz", logits=np.array([plant, 1], dtype=object))
    for name in ("raw.npy", "object.npy", "object.npz"):
        one_line_error(ens.read_logits, str(tmp_path / name), match="never loaded")
        one_line_error(ens.read_targets, str(tmp_path / name), match="never loaded")
    assert not marker.exists()


def test_torch_files_are_refused(tmp_path: Path):
    (tmp_path / "expert-0.pth").write_bytes(pickle.dumps(_Plant(tmp_path / "marker")))
    message = one_line_error(ens.read_logits, str(tmp_path / "expert-0.pth"))
    assert 'np.save("expert-0.npy", logits.numpy())' in message
    one_line_error(ens.read_targets, str(tmp_path / "t.pt"), match="never loaded")
    assert not (tmp_path / "marker").exists()


def test_damaged_files(tmp_path: Path):
    buffer = io.BytesIO()
    np.save(buffer, np.ones((50, 10), dtype=np.float32))
    (tmp_path / "cut.npy").write_bytes(buffer.getvalue()[:300])
    (tmp_path / "junk.npy").write_bytes(b"\x00\x01 not numpy at all")
    np.savez(tmp_path / "good.npz", logits=np.ones((50, 10)))
    data = bytearray((tmp_path / "good.npz").read_bytes())
    data[200:210] = b"\xff" * 10  # inside the stored array: its CRC fails
    (tmp_path / "crc.npz").write_bytes(bytes(data))
    (tmp_path / "cut.npz").write_bytes(bytes(data[:100]))
    for name, shape in (("header.npy", (10**15,)), ("short.npy", (10**5, 10**4))):
        header = io.BytesIO()  # a header promising far more than the file holds
        np.lib.format.write_array_header_1_0(
            header, {"descr": "<f4", "fortran_order": False, "shape": shape})
        (tmp_path / name).write_bytes(header.getvalue() + bytes(64))
    (tmp_path / "syntax.npy").write_bytes(buffer.getvalue()[:60] + b"(9}" + bytes(64))
    for name in ("cut.npy", "junk.npy", "crc.npz", "cut.npz", "header.npy", "short.npy",
                 "syntax.npy"):
        one_line_error(ens.read_logits, str(tmp_path / name), match=name)
    one_line_error(ens.read_logits, str(tmp_path / "gone.npy"), match="no such file")


def test_zip_that_is_not_an_npz(tmp_path: Path):
    with zipfile.ZipFile(tmp_path / "model.npz", "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps([1, 2]))
    one_line_error(ens.read_logits, str(tmp_path / "model.npz"), match="no `logits`")


@pytest.mark.parametrize(("array", "match"), [
    (np.array([[0.0, np.nan]]), "NaN"),
    (np.array([[0.0, np.inf]]), "NaN or infinite"),
    (np.zeros(4), "2-D"),
    (np.zeros((2, 2, 2)), "2-D"),
    (np.zeros((0, 3)), "empty"),
    (np.zeros((2, 0)), "empty"),
    (np.zeros((2, 2), dtype=bool), "numbers"),
    (np.zeros((2, 2), dtype=complex), "numbers"),
    (np.array([["a", "b"]]), "numbers"),
])
def test_bad_logits(tmp_path: Path, array: np.ndarray, match: str):
    np.save(tmp_path / "bad.npy", array)
    one_line_error(ens.read_logits, str(tmp_path / "bad.npy"), match=match)


def test_bad_suffix_and_bad_npz_targets(tmp_path: Path):
    one_line_error(ens.read_logits, str(tmp_path / "e.csv"), match=".npy or .npz")
    x = np.zeros((3, 4))
    for targets, match in [(np.array([0, 1]), "2 targets for 3"),
                           (np.array([0, 1, 4]), "[0, 4)"),
                           (np.array([0, 1, -1]), "[0, 4)"),
                           (np.array([0.0, 1.0, 2.0]), "integers")]:
        np.savez(tmp_path / "e.npz", logits=x, targets=targets)
        one_line_error(ens.read_logits, str(tmp_path / "e.npz"), match=match)


def test_read_targets(tmp_path: Path):
    (tmp_path / "t.txt").write_text("0\n2\n\n1\n")
    np.testing.assert_array_equal(ens.read_targets(str(tmp_path / "t.txt")), [0, 2, 1])
    np.save(tmp_path / "t.npy", np.array([1, 0], dtype=np.int32))
    assert ens.read_targets(str(tmp_path / "t.npy")).dtype == np.int64
    one_line_error(ens.read_targets, str(tmp_path / "t.txt"), n_classes=2, match="[0, 2)")
    (tmp_path / "bad.txt").write_text("0\ncat\n")
    one_line_error(ens.read_targets, str(tmp_path / "bad.txt"), match="line 2")
    (tmp_path / "empty.txt").write_text("\n")
    one_line_error(ens.read_targets, str(tmp_path / "empty.txt"), match="non-empty")


def test_read_weights(tmp_path: Path):
    (tmp_path / "route.json").write_bytes(orjson.dumps({"weights": [0.25, 0.75], "n_classes": 3}))
    (tmp_path / "list.json").write_text("[1, 2.5]")
    np.testing.assert_array_equal(ens.read_weights(str(tmp_path / "route.json")), [0.25, 0.75])
    np.testing.assert_array_equal(ens.read_weights(str(tmp_path / "list.json")), [1, 2.5])
    np.testing.assert_array_equal(ens.read_weights("0.2, 0.8,-1e-3"), [0.2, 0.8, -1e-3])
    np.testing.assert_array_equal(ens.read_weights([1, 2]), [1.0, 2.0])
    (tmp_path / "other.json").write_text('{"w": [1]}')
    (tmp_path / "bools.json").write_text("[true, false]")
    (tmp_path / "broken.json").write_text("[1, ")
    one_line_error(ens.read_weights, str(tmp_path / "other.json"), match="no `weights`")
    one_line_error(ens.read_weights, str(tmp_path / "bools.json"), match="numbers")
    one_line_error(ens.read_weights, str(tmp_path / "broken.json"), match="not JSON")
    one_line_error(ens.read_weights, "0.5,nan", match="finite")
    one_line_error(ens.read_weights, str(tmp_path / "gone.json"), match="no such file")


def test_evaluate_checks_where_inputs_meet():
    experts = hand_experts()
    one_line_error(ens.evaluate, experts, [0.5, 0.5], TARGETS, match="2 weights for 3 experts")
    one_line_error(ens.ensemble_logits, experts, "1,0", match="2 weights for 3 experts")
    one_line_error(ens.evaluate, experts, [1, 0, 0], TARGETS[:5], match="5 targets for 9")
    one_line_error(ens.evaluate, [experts[0], experts[1][:, :2]], [1, 0], TARGETS,
                   match="expert 1")
    one_line_error(ens.evaluate, experts, [1, 0, 0], TARGETS, "f1", match="unknown metric")
    one_line_error(ens.evaluate, experts, [1, 0, 0], TARGETS, "top1_top5", match="5 classes")
    one_line_error(ens.evaluate, experts, [1, 0, 0], TARGETS, "roc_auc", match="binary")
    one_line_error(ens.roc_auc, np.zeros((3, 2)), np.array([1, 1, 1]), match="both classes")
    one_line_error(ens.ensemble_logits, [], [], match="no experts")


# -- the command --------------------------------------------------------------------------------

runner = CliRunner()


def app() -> typer.Typer:
    cli = typer.Typer()
    cli.callback()(lambda: None)  # a group, as `metaclip experts ensemble` is
    cli.command("ensemble")(ensemble_command)
    return cli


def write_hand_experts(folder: Path, with_targets: bool) -> list[str]:
    files = []
    for i, x in enumerate(hand_experts()):
        if with_targets:
            np.savez(folder / f"expert-{i}.npz", logits=x, targets=TARGETS)
            files.append(str(folder / f"expert-{i}.npz"))
        else:
            np.save(folder / f"expert-{i}.npy", x)
            files.append(str(folder / f"expert-{i}.npy"))
    return files


def invoke(*args: str):
    return runner.invoke(app(), ["ensemble", *args], env={"COLUMNS": "200"})


def test_cli_prints_the_report(tmp_path: Path):
    files = write_hand_experts(tmp_path, with_targets=True)
    (tmp_path / "route.json").write_text(json.dumps({"weights": [0.5, 0.45, 0.05]}))
    result = invoke(*files, "--weights", str(tmp_path / "route.json"), "--task", "Food101")
    assert result.exit_code == 0, result.output
    for text in ("expert-max", "all_unit", "ensemble", "33.3333", "66.6667", "accuracy",
                 "0.450000"):
        assert text in result.stdout, result.stdout


def test_cli_targets_option_and_save(tmp_path: Path):
    files = write_hand_experts(tmp_path, with_targets=False)
    (tmp_path / "t.txt").write_text("\n".join(map(str, TARGETS)))
    out = tmp_path / "out" / "food.npy"
    result = invoke(*files, "--weights", "0.5,0.45,0.05", "--targets", str(tmp_path / "t.txt"),
                    "--save", str(out))
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(out, allow_pickle=False),
                               ens.ensemble_logits(hand_experts(), [0.5, 0.45, 0.05]))
    report = json.loads((tmp_path / "out" / "food.json").read_text())
    assert report["ensemble"] == report["all_unit"] == 6 / 9 * 100
    assert report["weights"] == [0.5, 0.45, 0.05] and report["experts"] == files
    assert report["metric"] == "accuracy" and report["n"] == 9


def test_cli_without_targets_gives_logits_only(tmp_path: Path):
    files = write_hand_experts(tmp_path, with_targets=False)
    result = invoke(*files, "--weights", "1,1,1", "--save", str(tmp_path / "e.npy"))
    assert result.exit_code == 0, result.output
    assert "no targets" in result.stdout
    report = json.loads((tmp_path / "e.json").read_text())
    assert "ensemble" not in report and report["n_classes"] == 3
    assert np.load(tmp_path / "e.npy").shape == (9, 3)


@pytest.mark.parametrize(("args", "message"), [
    (["--weights", "0.5,0.5"], "2 weights for 3 experts"),
    (["--weights", "1,0,0", "--metric", "f1"], "unknown metric"),
    (["--weights", "1,0,0", "--metric", "accuracy", "--task", "Flowers102"], "disagrees"),
    (["--weights", "1,0,0", "--save", "{tmp}/out.txt"], "name a .npy file"),
    (["--weights", "{tmp}/missing.json"], "no such file"),
    (["--weights", "1,0,0", "--targets", "{tmp}/bad.txt"], "line 1"),
])
def test_cli_mistakes_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str):
    files = write_hand_experts(tmp_path, with_targets=True)
    (tmp_path / "bad.txt").write_text("x\n")
    result = invoke(*files, *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_cli_refuses_torch_files_and_disagreeing_targets(tmp_path: Path):
    files = write_hand_experts(tmp_path, with_targets=True)
    result = invoke(str(tmp_path / "expert-0.pth"), "--weights", "1")
    assert result.exit_code == 2 and "np.save(" in result.stderr
    np.savez(files[2], logits=hand_experts()[2], targets=np.roll(TARGETS, 1))
    result = invoke(*files, "--weights", "1,1,1")
    assert result.exit_code == 2 and "differ from" in result.stderr
