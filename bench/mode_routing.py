"""How MoDE's defaults route real captions (docs/experts.md "Routing on real captions").

1. The topic study of tests/test_experts_pipeline.py over seeds: 480 real captions about four
   topics, 32 fine centres, 4 experts. For each seed and clustering method, a topic "lands"
   when one expert holds at least 60% of its captions, and "routes" when its class names give
   that expert the most weight (with templates, and with bare names).
2. Templates against bare names: for the class names of shipped tasks (their own templates),
   the share of classes whose nearest fine centre's expert changes, and of tasks whose top
   expert changes, on the clustering of each seed.

    python bench/mode_routing.py [--seeds 8] [--tasks CIFAR10,CIFAR100,Food101,...]

Writes bench/results/mode_routing.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metaclip.experts.embedding import embed_texts, load_encoder  # noqa: E402
from metaclip.experts.kmeans import fit_centres  # noqa: E402
from metaclip.experts.routing import expert_weights  # noqa: E402
from metaclip.experts.templates import (  # noqa: E402
    embed_classes,
    read_templates,
    task_labels,
    task_templates,
)
from tests.test_experts_pipeline import PER_TOPIC, TOPICS, topical_captions  # noqa: E402

TASKS = "CIFAR10,CIFAR100,STL10,PascalVOC2007,Food101,OxfordPets,DescribableTextures,RESISC45"


def top_expert(x: np.ndarray, centres) -> tuple[int, np.ndarray]:
    _, experts, dist = centres.assign(x, distance="euclidean")
    return int(np.argmax(expert_weights(dist, experts, centres.n_experts))), experts


def topic_study(x, topics, centres, class_vectors) -> dict[str, int]:
    experts = centres.assign(x)[1]
    found = {"landed": 0, "routed_templates": 0, "routed_bare": 0}
    for t, (templated, bare) in enumerate(class_vectors):
        held = np.bincount(experts[topics == t], minlength=centres.n_experts)
        if held.max() < 0.6 * PER_TOPIC:
            continue
        found["landed"] += 1
        home = int(np.argmax(held))
        found["routed_templates"] += top_expert(templated, centres)[0] == home
        found["routed_bare"] += top_expert(bare, centres)[0] == home
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--tasks", default=TASKS)
    args = parser.parse_args()
    encoder = load_encoder()
    captions, topics = topical_captions()
    x = embed_texts(captions, encoder)
    imagenet = read_templates("imagenet")
    topic_vectors = [
        (embed_classes(names, imagenet, encoder), embed_texts(names, encoder))
        for names, _ in TOPICS.values()
    ]
    task_vectors = {}
    for task in args.tasks.split(","):
        labels = task_labels(task)
        bare = [label if isinstance(label, str) else label[0] for label in labels]
        started = time.perf_counter()
        task_vectors[task] = (embed_classes(labels, task_templates(task), encoder),
                              embed_texts(bare, encoder))  # fmt: skip
        print(f"{task}: {len(labels)} classes, {time.perf_counter() - started:.1f} s", flush=True)

    results: dict[str, list] = {"topics": [], "templates_vs_bare": []}
    for method in ("balanced", "faiss", "faiss-balanced"):
        for seed in range(args.seeds):
            centres = fit_centres(x, 32, 4, method, seed=seed)
            found = topic_study(x, topics, centres, topic_vectors)
            results["topics"].append({"kmeans": method, "seed": seed, **found})
            if method != "balanced":
                continue
            for task, (templated, bare) in task_vectors.items():
                top_t, experts_t = top_expert(templated, centres)
                top_b, experts_b = top_expert(bare, centres)
                results["templates_vs_bare"].append({
                    "seed": seed, "task": task, "classes": len(experts_t),
                    "classes_changed": int((experts_t != experts_b).sum()),
                    "top_expert_changed": top_t != top_b,
                })  # fmt: skip
    summary = {}
    for method in ("balanced", "faiss", "faiss-balanced"):
        rows = [r for r in results["topics"] if r["kmeans"] == method]
        summary[method] = {k: sum(r[k] for r in rows) for k in
                           ("landed", "routed_templates", "routed_bare")}  # fmt: skip
        summary[method]["of"] = len(rows) * len(TOPICS)
    changes = results["templates_vs_bare"]
    summary["classes_changed_share"] = (sum(r["classes_changed"] for r in changes)
                                        / sum(r["classes"] for r in changes))  # fmt: skip
    summary["tasks_top_expert_changed"] = sum(r["top_expert_changed"] for r in changes)
    summary["task_runs"] = len(changes)
    results["summary"] = summary
    out = ROOT / "bench" / "results" / "mode_routing.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
