"""Balanced k-means as MoDE runs it: kernelmachine/balanced-kmeans (`kmeans_pytorch.KMeans` with
`balanced=True`), which apps/mode/prep_hrchy.py uses at both levels.

The assignment step is an auction (Bertsekas) over points ("jobs") and centres ("workers"):
every centre bids for its N // k most valuable points, each point goes to its highest bidder,
and contested points get dearer until every point has a bidder. Centres end up with about N / k
points each. `auction_assign` is the reference's `auction_lap`, step for step (the same
bidding, the same eps, the same retention and fall-back rules), so it assigns exactly as the
reference does on the same scores.

`BalancedKMeans.fit` is the reference's `KMeans.fit`: centres drawn from the data, then
assign / take means until the squared total centre shift is below `TOL` or `iter_limit`
iterations; an empty centre takes a random point. `online=True` keeps the centres of the
previous call (the fine level is fitted chunk after chunk). Two deliberate differences, neither
changing the algorithm: squared Euclidean distances come from |x|^2 - 2 x.c + |c|^2 (the
reference broadcasts an N x k x d tensor, 25 GB for 16k x 1,024 x 384), and every random draw
comes from one seeded generator, so a fit is deterministic for a seed.

torch, the optional `mode` group, runs it on a GPU when one is present and on the CPU otherwise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from metaclip.experts.kmeans import DISTANCES

Distance = Literal["euclidean", "cosine"]
TOL = 1e-3  # the reference's default: stop when (sum of centre shifts)^2 < TOL


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pairwise(x: torch.Tensor, centres: torch.Tensor, distance: Distance) -> torch.Tensor:
    """(N, k) distances: squared Euclidean, or 1 - cosine similarity (the reference's two)."""
    if distance == "cosine":
        xn = x / x.norm(dim=1, keepdim=True)
        cn = centres / centres.norm(dim=1, keepdim=True)
        return 1.0 - xn @ cn.T
    sq = (x * x).sum(1, keepdim=True) - 2.0 * (x @ centres.T) + (centres * centres).sum(1)[None]
    return sq.clamp_min_(0.0)


def auction_assign(scores: torch.Tensor) -> torch.Tensor:
    """The centre of each point, from an (N points, k centres) score matrix (higher is better;
    the reference passes minus the distances): `auction_lap` of balanced-kmeans, round for round.

    Two things make it fast on a CPU without changing a bid:
    - a round's bids are sparse (each centre bids for N // k points, plus last round's
      winners), so they are kept as (centre, point, bid) lists, with the reference's tie rule
      (the lowest centre wins a tied point) and overwrite order, not a dense (k, N) matrix;
    - a centre's top N // k + 1 values are searched in a shortlist of its `CANDIDATES` x that
      many most valuable points (see _Shortlist for why nothing outside can beat them); a
      centre whose last pick is not above the list's bound is searched over all points, as the
      reference searches every round, and its list rebuilt.
    Exactly tied values at a centre's cut are the one case where the pick may differ, as it may
    between the reference's own runs: torch's topk does not order ties.
    """
    if torch.isnan(scores).any():
        raise ValueError("NaN distance")
    eps = ((scores.max() - scores.min()) / 50).clamp_min(1e-04)
    value_of = scores.detach().T.contiguous()  # (k workers, N jobs)
    workers, jobs = value_of.shape
    per_worker = jobs // workers
    if per_worker < 1:
        raise ValueError(f"a balanced assignment needs at least {workers} points, got {jobs}")
    device = value_of.device
    rows = torch.arange(workers, device=device)
    bidder_rows = rows.repeat_interleave(per_worker)
    shortlist = _Shortlist(value_of, per_worker + 1)
    cost = torch.zeros(jobs, dtype=value_of.dtype, device=device)
    owner = torch.full((jobs,), -1, dtype=torch.int64, device=device)  # last round's winners
    rounds, won, unbid = 0, None, None
    while True:
        top_values, top_index = shortlist.top(cost, owner, search_all=rounds > 1000)
        # Each worker bids what a job is worth to it over its (per_worker + 1)-th best job.
        increments = top_values[:, :-1] - top_values[:, -1:] + eps
        flat, bid = bidder_rows * jobs + top_index[:, :-1].reshape(-1), increments.reshape(-1)
        if rounds < 100 and won is not None:  # last round's winners keep a job nobody outbids
            flat, bid = _overwrite(flat, bid, won, eps)
        if rounds > 1000 and unbid is not None and len(unbid):
            flat, bid = _overwrite(flat, bid, unbid, eps)  # the reference's row 0 of the flat view
        job, worker = flat % jobs, flat // jobs
        with_bidder, high_bids, high_bidders = _highest_bids(job, worker, bid, jobs)
        if len(with_bidder) == jobs:
            return high_bidders
        unbid = _complement(with_bidder, jobs)
        cost[with_bidder] += high_bids  # contested jobs get dearer
        owner.fill_(-1)
        owner[with_bidder] = high_bidders  # a winner still sees its job at full value
        won = high_bidders * jobs + with_bidder
        rounds += 1


CANDIDATES = 32  # shortlist length, in multiples of N // k + 1


class _Shortlist:
    """Each worker's most valuable jobs when the list was (re)built, and a bound: the best
    value then outside the list. A value is the score minus a cost that only grows, or the
    full score for the job's last winner, and a worker only wins jobs from its own top picks
    (which are in its list), so no job outside the list can be worth more than the bound until
    the list is rebuilt. A worker whose last pick is not above its bound is searched over all
    jobs, and its list rebuilt from what that search sees."""

    def __init__(self, value_of: torch.Tensor, need: int) -> None:
        self.value_of, self.need = value_of, need
        workers, jobs = value_of.shape
        self.length = min(jobs - 1, CANDIDATES * need)
        self.rows = torch.arange(workers, device=value_of.device)[:, None]
        self.exact = self.length < need  # too few jobs for a list: always search every job
        if not self.exact:
            device, dtype = value_of.device, value_of.dtype
            self.index = torch.empty((workers, self.length), dtype=torch.int64, device=device)
            self.scores = torch.empty((workers, self.length), dtype=dtype, device=device)
            self.bound = torch.empty(workers, dtype=dtype, device=device)
            self._rebuild(self.rows[:, 0], value_of)

    def _rebuild(self, rows: torch.Tensor, values: torch.Tensor) -> None:
        best, index = values.topk(self.length + 1, dim=1)
        self.bound[rows] = best[:, -1]
        self.index[rows] = index[:, :-1]
        self.scores[rows] = self.value_of[rows].gather(1, index[:, :-1])

    def _row_values(self, rows: torch.Tensor, cost: torch.Tensor, owner: torch.Tensor):
        return torch.where(owner[None, :] == rows[:, None], self.value_of[rows],
                           self.value_of[rows] - cost[None, :])  # fmt: skip

    def top(
        self, cost: torch.Tensor, owner: torch.Tensor, search_all: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each worker's `need` most valuable jobs now: (values, job indices), best first."""
        if self.exact or search_all:
            return self._row_values(self.rows[:, 0], cost, owner).topk(self.need, dim=1)
        values = torch.where(owner[self.index] == self.rows, self.scores,
                             self.scores - cost[self.index])  # fmt: skip
        top_values, local = values.topk(self.need, dim=1)
        top_index = self.index.gather(1, local)
        short = torch.nonzero(top_values[:, -1] <= self.bound).squeeze(1)
        if len(short):
            full = self._row_values(short, cost, owner)
            top_values[short], top_index[short] = full.topk(self.need, dim=1)
            self._rebuild(short, full)
        return top_values, top_index


def _overwrite(
    flat: torch.Tensor, bid: torch.Tensor, at: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The bids after `bids.view(-1)[at] = eps`: those cells become eps, new or not."""
    keep = ~torch.isin(flat, at)
    return (
        torch.cat([flat[keep], at]),
        torch.cat([bid[keep], eps.expand(len(at)).to(bid.dtype)]),
    )


def _highest_bids(
    job: torch.Tensor, worker: torch.Tensor, bid: torch.Tensor, jobs: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Jobs with a bid (ascending), their highest bid and its bidder (lowest worker on a tie,
    as torch.max over the dense column returns the first maximum)."""
    best = torch.full((jobs,), -torch.inf, dtype=bid.dtype, device=bid.device)
    best.scatter_reduce_(0, job, bid, reduce="amax")
    at_best = bid == best[job]
    winner = torch.full((jobs,), torch.iinfo(torch.int64).max, device=bid.device)
    winner.scatter_reduce_(0, job[at_best], worker[at_best], reduce="amin")
    with_bidder = torch.nonzero(best > 0).squeeze(1)  # every bid is >= eps > 0
    return with_bidder, best[with_bidder], winner[with_bidder]


def _complement(present: torch.Tensor, n: int) -> torch.Tensor:
    mask = torch.ones(n, dtype=torch.bool, device=present.device)
    mask[present] = False
    return torch.nonzero(mask).squeeze(1)


class BalancedKMeans:
    """k-means with the auction assignment (or the nearest centre, `balanced=False`)."""

    def __init__(
        self,
        n_clusters: int,
        seed: int = 0,
        balanced: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.balanced = balanced
        self.device = torch.device(device) if device is not None else default_device()
        self.generator = torch.Generator(device="cpu").manual_seed(seed)
        self.centres: torch.Tensor | None = None
        self.iterations: list[int] = []  # per fit call

    def _initial(self, x: torch.Tensor) -> torch.Tensor:
        """k distinct points at random (the reference: np.random.choice without replacement)."""
        picked = torch.randperm(len(x), generator=self.generator)[: self.n_clusters]
        return x[picked.to(x.device)].clone()

    def assign(self, x: torch.Tensor, distance: Distance) -> torch.Tensor:
        assert self.centres is not None
        d = pairwise(x, self.centres, distance)
        return auction_assign(-d) if self.balanced else d.argmin(dim=1)

    def _means(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        k = self.n_clusters
        sums = torch.zeros((k, x.shape[1]), dtype=x.dtype, device=x.device)
        sums.index_add_(0, labels, x)
        sizes = torch.bincount(labels, minlength=k)
        centres = sums / sizes.clamp_min(1)[:, None].to(x.dtype)
        for j in torch.nonzero(sizes == 0).flatten().tolist():  # an empty centre: a random point
            pick = torch.randint(len(x), (1,), generator=self.generator)
            centres[j] = x[pick.to(x.device)][0]
        return centres

    def fit(
        self,
        x: np.ndarray | torch.Tensor,
        distance: Distance = "euclidean",
        iter_limit: int = 50,
        online: bool = False,
        tol: float = TOL,
    ) -> np.ndarray:
        """Fit on x (warm-started from the last call's centres when `online`); returns the
        last assignment, as the reference does."""
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, not {distance!r}")
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(self.device)
        if len(xt) < self.n_clusters:
            raise ValueError(f"k-means needs at least {self.n_clusters} points, got {len(xt)}")
        if not online or self.centres is None:
            self.centres = self._initial(xt)
        iteration = 0
        while True:
            labels = self.assign(xt, distance)
            previous = self.centres
            self.centres = self._means(xt, labels)
            shift = (self.centres - previous).pow(2).sum(1).sqrt().sum()
            iteration += 1
            if float(shift) ** 2 < tol or (iter_limit and iteration >= iter_limit):
                break
        self.iterations.append(iteration)
        return labels.cpu().numpy()

    def predict(self, x: np.ndarray, distance: Distance = "euclidean") -> np.ndarray:
        """The nearest centre of each row (prep_hrchy.py maps fine to coarse centres this way,
        unbalanced, after the balanced fit)."""
        assert self.centres is not None
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).to(self.device)
        return pairwise(xt, self.centres, distance).argmin(dim=1).cpu().numpy()

    def centres_array(self) -> np.ndarray:
        assert self.centres is not None
        return self.centres.float().cpu().numpy()


def fine_chunks(n_rows: int, k: int, chunk_rows: int, seed: int) -> list[np.ndarray]:
    """Row indices of the fine level's online fit: the sample in a seeded random order, cut
    into chunks of the same size, a multiple of k near `chunk_rows`.

    The reference streams whole caption-feature files (one per shard) in random order; ours
    are rows drawn from every shard. A multiple of k, because with N mod k left over the
    auction cannot place the last points until its 1,001st round and then gives them all to
    centre 0 (the reference's own fall-back): the rows past the last whole chunk (fewer than
    one chunk) are left out of the fit.
    """
    if n_rows < k:
        raise ValueError(f"k-means needs at least {k} points, got {n_rows}")
    per_chunk = max(k, (min(chunk_rows, n_rows) // k) * k)
    n_chunks = n_rows // per_chunk
    order = np.random.default_rng([seed, 0x6B6D]).permutation(n_rows)
    return [order[i * per_chunk : (i + 1) * per_chunk] for i in range(n_chunks)]
