"""Which sub-networks the sandwich rule trains: uniform (BigNAS) or attentive (BestUp / WorstUp).

Attentive sampling per slot: draw a target MACs bucket from the prior (the MACs histogram of
uniformly sampled subnets, built here by sampling the space), draw ``k`` candidates whose MACs fall
in that bucket, and let the caller score them (minibatch loss, or an accuracy predictor); BestUp
trains the lowest-loss candidate, WorstUp the highest. All randomness comes from the caller's
``random.Random``, so ranks seeded alike draw the same candidates.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence

import torch

from anas_zoo.flops import count_macs
from anas_zoo.space import ArchConfig, InvalidArchError, SearchSpace, get_space

#: Buckets across the space's MACs span: 1736 MMACs / 70 ≈ 25 MMACs for the ImageNet space.
DEFAULT_BUCKETS = 70
SAMPLERS = ("uniform", "bestup", "worstup")


def sample_in_range(
    space: SearchSpace, rng: random.Random, min_macs: float, max_macs: float, max_tries: int = 10_000
) -> ArchConfig:
    """A uniform genome of ``space`` whose MACs lie in [min_macs, max_macs], by rejection sampling."""
    for _ in range(max_tries):
        arch = space.sample(rng)
        if min_macs <= count_macs(arch, space) <= max_macs:
            return arch
    lo, hi = count_macs(space.min_arch(), space), count_macs(space.max_arch(), space)
    raise InvalidArchError(
        f"no genome in [{min_macs / 1e6:.1f}, {max_macs / 1e6:.1f}] MMACs after {max_tries} tries; "
        f"space '{space.name}' spans {lo / 1e6:.1f}-{hi / 1e6:.1f} MMACs"
    )


class MacsPrior:
    """MACs distribution of uniformly sampled subnets, bucketed; draws target buckets and candidates."""

    def __init__(
        self,
        space: str | SearchSpace,
        num_samples: int = 2000,
        buckets: int = DEFAULT_BUCKETS,
        seed: int = 0,
        max_tries: int = 2000,
    ):
        self.space = get_space(space)
        lo, hi = count_macs(self.space.min_arch(), self.space), count_macs(self.space.max_arch(), self.space)
        self.low, self.width = lo, max(1.0, (hi - lo) / buckets)
        self.max_tries = max_tries
        rng = random.Random(seed)
        pool: dict[int, list[ArchConfig]] = {}
        for _ in range(num_samples):
            arch = self.space.sample(rng)
            pool.setdefault(self.bucket_of(count_macs(arch, self.space)), []).append(arch)
        self.pool = pool
        self.buckets = sorted(pool)
        counts = [len(pool[b]) for b in self.buckets]
        self.cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]

    def bucket_of(self, macs: float) -> int:
        return int((macs - self.low) // self.width)

    def bucket_range(self, bucket: int) -> tuple[float, float]:
        """[low, high) MACs of ``bucket``."""
        return self.low + bucket * self.width, self.low + (bucket + 1) * self.width

    def draw_bucket(self, rng: random.Random) -> int:
        """A bucket with probability proportional to its share of uniformly sampled subnets."""
        return self.buckets[bisect.bisect_right(self.cumulative, rng.randrange(self.cumulative[-1]))]

    def draw_in_bucket(self, bucket: int, rng: random.Random) -> ArchConfig:
        """A uniform subnet with MACs in ``bucket`` (rejection sampling; the prior's own samples as a fallback)."""
        for _ in range(self.max_tries):
            arch = self.space.sample(rng)
            if self.bucket_of(count_macs(arch, self.space)) == bucket:
                return arch
        return rng.choice(self.pool[bucket])


class Sampler:
    """Proposes candidates for one sandwich slot and picks the one to train from their scores."""

    def __init__(self, space: str | SearchSpace, kind: str = "bestup", k: int = 3, prior: MacsPrior | None = None):
        if kind not in SAMPLERS:
            raise ValueError(f"unknown sampler '{kind}'; allowed: {list(SAMPLERS)}")
        if k < 1:
            raise ValueError(f"k (candidates per slot) must be >= 1, got {k}")
        self.space, self.kind = get_space(space), kind
        self.k = 1 if kind == "uniform" else k
        self.prior = None if kind == "uniform" else (prior or MacsPrior(self.space))

    @property
    def needs_scores(self) -> bool:
        return self.k > 1

    def candidates(self, rng: random.Random) -> list[ArchConfig]:
        """One uniform subnet, or ``k`` subnets from one target-MACs bucket drawn from the prior."""
        if self.prior is None:
            return [self.space.sample(rng)]
        bucket = self.prior.draw_bucket(rng)
        return [self.prior.draw_in_bucket(bucket, rng) for _ in range(self.k)]

    def pick(self, candidates: Sequence[ArchConfig], losses: Sequence[float]) -> ArchConfig:
        """BestUp: the lowest loss; WorstUp: the highest (first one on ties)."""
        return candidates[self.pick_index(losses)]

    def pick_index(self, losses: Sequence[float]) -> int:
        """The position :meth:`pick` chooses among candidates with these losses."""
        choose = min if self.kind == "bestup" else max
        return choose(range(len(losses)), key=lambda i: losses[i])


class AccuracyPredictor:
    """Ridge regression from the flat genome (:meth:`ArchConfig.genes`) to accuracy: the alternative ranker.

    ``loss(archs)`` returns minus the predicted accuracy, so it slots in where minibatch losses go.
    """

    def __init__(self, weights: Sequence[float], bias: float):
        self.weights, self.bias = list(weights), float(bias)

    @classmethod
    def fit(cls, archs: Sequence[ArchConfig], accuracies: Sequence[float], ridge: float = 1e-3) -> AccuracyPredictor:
        x = torch.tensor([a.genes() for a in archs], dtype=torch.float64)
        y = torch.tensor(accuracies, dtype=torch.float64)
        x1 = torch.cat([x, torch.ones(len(x), 1, dtype=torch.float64)], 1)
        eye = torch.eye(x1.shape[1], dtype=torch.float64) * ridge
        eye[-1, -1] = 0.0
        solution = torch.linalg.solve(x1.T @ x1 + eye, x1.T @ y)
        return cls(solution[:-1].tolist(), float(solution[-1]))

    def predict(self, archs: Sequence[ArchConfig]) -> list[float]:
        return [self.bias + sum(w * g for w, g in zip(self.weights, a.genes())) for a in archs]

    def loss(self, archs: Sequence[ArchConfig]) -> list[float]:
        return [-p for p in self.predict(archs)]

    def to_dict(self) -> dict:
        return {"weights": self.weights, "bias": self.bias}

    @classmethod
    def from_dict(cls, data: dict) -> AccuracyPredictor:
        return cls(data["weights"], data["bias"])
