"""Evolutionary search of a space under a cost constraint (MACs, or a predicted latency).

Step 0 takes the smallest and largest genomes (when they meet the constraint), up to half a
population of their one-gene neighbours, and samples the rest uniformly within ``[lo, hi]``. Each
later step makes children of the population by mutation (each gene resampled to a different value
with probability 0.2) and uniform crossover (each gene from the second parent with probability 0.5);
a child is drawn again until it meets the constraint and was never evaluated before. Every new
genome is scored once (``score`` is the held-out accuracy, never the test split's); the archive keeps
the best per cost bucket; the next population takes the best of every bucket, then the second best of
every bucket, and so on, so the whole cost range stays covered instead of collapsing onto the most
expensive genomes.

The state (population, evaluated genomes, archive, RNG state, step) is written atomically after every
step, with the scores computed so far also every few evaluations: rerunning with the same state file
resumes and ends where an uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from anas_zoo.fileio import atomic_write
from anas_zoo.flops import count, count_macs
from anas_zoo.search.pareto_archive import Candidate, ParetoArchive, rank_key
from anas_zoo.space import ArchConfig, SearchSpace, get_space

STATE_FORMAT = "anas_zoo.search_state/1"
DEFAULT_BUCKETS = 40


class ConstraintError(ValueError):
    """No genome of the space (or of the evaluated set) meets a cost constraint."""


@dataclass(frozen=True)
class Cost:
    """The constrained quantity of a genome: ``measure(arch)``, shown as ``measure / scale`` ``unit``."""

    name: str
    unit: str
    scale: float
    measure: Callable[[ArchConfig], float]

    def show(self, value: float) -> str:
        return f"{value / self.scale:.4g} {self.unit}"


def macs_cost(space: str | SearchSpace, num_classes: int | None = None) -> Cost:
    """MACs with the papers' definition (see :mod:`anas_zoo.flops`)."""
    space = get_space(space)
    return Cost("macs", "MMACs", 1e6, lambda arch: float(count_macs(arch, space, num_classes)))


def latency_cost(model) -> Cost:
    """Latency predicted by a model with ``predict_ms(arch) -> float`` (e.g. a fitted LatencyModel)."""
    return Cost("latency_ms", "ms (predicted)", 1.0, lambda arch: float(model.predict_ms(arch)))


@dataclass(frozen=True)
class EvolutionSettings:
    """Sizes and rates of the search; the paper's full scale is 512 / 128 / 128."""

    population: int = 512
    generations: int = 20
    mutations: int = 128
    crossovers: int = 128
    mutate_prob: float = 0.2
    crossover_prob: float = 0.5
    max_tries: int = 10_000
    seed: int = 0
    save_every: int = 16

    def __post_init__(self) -> None:
        for name in ("population", "max_tries", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("generations", "mutations", "crossovers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("mutate_prob", "crossover_prob"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")

    def identity(self) -> dict:
        """The settings a resumed run must share (more generations may be asked for later)."""
        return {k: v for k, v in asdict(self).items() if k not in ("generations", "save_every")}


@dataclass
class SearchResult:
    """Where a search stands: the archive, every evaluated genome, the population, per-step history."""

    archive: ParetoArchive
    evaluated: list[Candidate]
    population: list[Candidate]
    generations: int
    history: list[dict] = field(default_factory=list)


class EvolutionarySearch:
    """Search ``space`` for the best ``score`` with ``lo <= cost(arch) <= hi`` (cost defaults to MACs).

    ``bucket_width`` is in the cost's raw unit (MACs or ms); default: 1/40 of the range (``hi`` capped at
    the largest genome's cost). With ``state_path``, the state is saved there and an existing state file
    with the same settings resumes. ``score_identity`` (JSON-able) names what ``score`` measures (e.g. the
    supernet's hash and the evaluation sizes), so a resumed run never mixes scores of two different scorers.
    """

    def __init__(
        self,
        space: str | SearchSpace,
        score: Callable[[ArchConfig], float],
        lo: float,
        hi: float,
        cost: Cost | None = None,
        settings: EvolutionSettings = EvolutionSettings(),
        bucket_width: float | None = None,
        num_classes: int | None = None,
        state_path: str | Path | None = None,
        progress: bool = True,
        score_identity: dict | None = None,
    ):
        self.space = get_space(space)
        self.score_fn = score
        self.num_classes = num_classes
        self.cost = cost or macs_cost(self.space, num_classes)
        self.settings = settings
        self.state_path = Path(state_path) if state_path is not None else None
        self.progress = progress
        self.score_identity = score_identity or {}
        self.lo, self.hi = float(lo), float(hi)
        if math.isnan(self.lo) or math.isnan(self.hi) or self.lo > self.hi:
            raise ValueError(f"cost range [{lo}, {hi}] is empty: the lower bound must not exceed the upper")
        cheapest, dearest = self.cost.measure(self.space.min_arch()), self.cost.measure(self.space.max_arch())
        self._span = f"space '{self.space.name}' spans {self.cost.show(cheapest)} to {self.cost.show(dearest)}"
        if self.hi < cheapest or self.lo > dearest:
            raise ConstraintError(f"{self.cost.name} range [{self.cost.show(self.lo)}, {self.cost.show(self.hi)}] "
                                  f"holds no genome: {self._span} (smallest to largest genome)")
        if bucket_width is None:
            finite_hi = min(self.hi, dearest)
            bucket_width = (finite_hi - self.lo) / DEFAULT_BUCKETS if finite_hi > self.lo else 1.0
        self.rng = random.Random(settings.seed)
        self.archive = ParetoArchive(self.lo, bucket_width)
        self.evaluated: dict[str, Candidate] = {}
        self.scores: dict[str, float] = {}
        self.population: list[str] = []
        self.history: list[dict] = []
        self.next_step = 0
        self._step_rng = self.rng.getstate()
        self._unsaved = 0
        if self.state_path is not None and self.state_path.exists():
            self._load()

    # ----- constraint, cost and score --------------------------------------------------------
    def _meets(self, arch: ArchConfig) -> bool:
        return self.lo <= self.cost.measure(arch) <= self.hi

    def _draw(self, make: Callable[[], ArchConfig], seen: set[str], what: str) -> ArchConfig | None:
        """A new genome from ``make`` that meets the constraint and is not in ``seen``.

        None when every candidate that met the constraint within ``max_tries`` was already seen (the
        neighbourhood is exhausted); ConstraintError when none met it at all.
        """
        met = False
        for _ in range(self.settings.max_tries):
            arch = make()
            if not self._meets(arch):
                continue
            met = True
            if arch.to_json() not in seen:
                return arch
        if not met:
            raise ConstraintError(
                f"no {what} within {self.cost.name} [{self.cost.show(self.lo)}, {self.cost.show(self.hi)}] after "
                f"{self.settings.max_tries} tries; {self._span}: widen the range or raise max_tries"
            )
        return None

    def _draw_many(self, make: Callable[[], ArchConfig], n: int, seen: set[str], what: str) -> list[ArchConfig]:
        """Up to ``n`` new genomes from ``make`` (fewer when the neighbourhood runs out); adds them to ``seen``."""
        drawn = []
        while len(drawn) < n:
            arch = self._draw(make, seen, what)
            if arch is None:
                break
            seen.add(arch.to_json())
            drawn.append(arch)
        return drawn

    def _evaluate(self, arch: ArchConfig) -> Candidate:
        key = arch.to_json()
        if key not in self.scores:
            value = float(self.score_fn(arch))
            if not math.isfinite(value):
                raise ValueError(f"score of genome {key} is {value}; the score function must return a finite number")
            self.scores[key] = value
            self._unsaved += 1
            if self._unsaved >= self.settings.save_every:
                self._save()
        macs, params = count(arch, self.space, self.num_classes)
        return Candidate(arch, self.cost.measure(arch), macs, params, self.scores[key])

    # ----- one step ------------------------------------------------------------------------
    def _initial(self) -> list[ArchConfig]:
        """The smallest and largest genomes when they meet the constraint, up to half a population of their
        one-gene neighbours, then uniform ones.

        A sandwich-trained supernet trains both ends every step, so they and their surroundings are its
        best-trained genomes, and a uniform draw almost never lands there (most genomes cost mid-range).
        """
        size = self.settings.population
        ends = [a for a in (self.space.min_arch(), self.space.max_arch()) if self._meets(a)][:size]
        seen = {a.to_json() for a in ends}
        near = list({n.to_json(): n for a in ends for n in self.space.neighbours(a)
                     if self._meets(n) and n.to_json() not in seen}.values())
        near = self.rng.sample(near, min(len(near), size // 2, size - len(ends)))
        seen |= {a.to_json() for a in near}
        return ends + near + self._draw_many(
            lambda: self.space.sample(self.rng), size - len(ends) - len(near), seen, "random genome"
        )

    def _children(self) -> list[ArchConfig]:
        s, rng = self.settings, self.rng
        parents = [self.evaluated[k].arch for k in self.population]
        seen = set(self.evaluated)
        kinds = (
            (s.mutations, "mutated child", lambda: self.space.mutate(rng.choice(parents), rng, s.mutate_prob)),
            (s.crossovers, "crossover child",
             lambda: self.space.crossover(rng.choice(parents), rng.choice(parents), rng, s.crossover_prob)),
        )
        return [child for n, what, make in kinds for child in self._draw_many(make, n, seen, what)]

    def _select(self) -> list[str]:
        """Best of every bucket, then second best of every bucket, ... up to the population size."""
        buckets: dict[int, list[Candidate]] = defaultdict(list)
        for c in self.evaluated.values():
            buckets[self.archive.bucket(c.cost)].append(c)
        tiers = [(i, rank_key(c)) for members in buckets.values()
                 for i, c in enumerate(sorted(members, key=rank_key))]
        tiers.sort()
        return [key for _, (_, _, key) in tiers[: self.settings.population]]

    def run(self) -> SearchResult:
        """Run (or resume) up to ``settings.generations`` evolution steps after the initial population."""
        s = self.settings
        todo = sum(s.population if step == 0 else s.mutations + s.crossovers
                   for step in range(self.next_step, s.generations + 1))
        with tqdm(total=len(self.evaluated) + todo, initial=len(self.evaluated), desc="search", unit="genome",
                  disable=not self.progress, dynamic_ncols=True) as bar:
            while self.next_step <= s.generations:
                archs = self._initial() if self.next_step == 0 else self._children()
                new = []
                for arch in archs:
                    new.append(self._evaluate(arch))
                    bar.update(1)
                for c in new:
                    self.evaluated[c.key] = c
                    self.archive.offer(c)
                self.population = self._select()
                best = max(self.evaluated.values(), key=lambda c: c.accuracy)
                self.history.append({"step": self.next_step, "new": len(new), "evaluated": len(self.evaluated),
                                     "archive": len(self.archive.best), "best_accuracy": best.accuracy})
                bar.set_postfix(step=self.next_step, best=f"{best.accuracy:.4g}", archive=len(self.archive.best))
                self.next_step += 1
                self._step_rng = self.rng.getstate()
                self._save()
        return self.result()

    def result(self) -> SearchResult:
        return SearchResult(self.archive, list(self.evaluated.values()),
                            [self.evaluated[k] for k in self.population], max(0, self.next_step - 1),
                            list(self.history))

    # ----- state on disk ---------------------------------------------------------------------
    def _identity(self) -> dict:
        return {"space": self.space.name, "num_classes": self.num_classes, "cost": self.cost.name,
                "lo": self.lo, "hi": self.hi, "bucket_width": self.archive.bucket_width, "score": self.score_identity,
                **self.settings.identity()}

    def _save(self) -> None:
        """Committed steps plus every score so far; the RNG state is that of the step in progress's start."""
        self._unsaved = 0
        if self.state_path is None:
            return
        version, internal, gauss = self._step_rng
        state = {
            "format": STATE_FORMAT,
            "settings": self._identity(),
            "next_step": self.next_step,
            "rng": [version, list(internal), gauss],
            "population": self.population,
            "evaluated": [c.to_dict() for c in self.evaluated.values()],
            "archive": self.archive.to_dict(),
            "scores": self.scores,
            "history": self.history,
        }
        atomic_write(self.state_path, json.dumps(state))

    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"search state {self.state_path} is not valid JSON ({e}); remove it to start over") from e
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"{self.state_path} is not a search state ({STATE_FORMAT}); use another output folder")
        mine = json.loads(json.dumps(self._identity()))
        for key, value in mine.items():
            if state["settings"].get(key) != value:
                raise ValueError(
                    f"{self.state_path} holds a search with {key}={state['settings'].get(key)!r}, this run asks "
                    f"{key}={value!r}: resume with the same settings or use another output folder"
                )
        version, internal, gauss = state["rng"]
        self._step_rng = (version, tuple(internal), gauss)
        self.rng.setstate(self._step_rng)
        self.next_step = state["next_step"]
        self.population = state["population"]
        self.evaluated = {c.key: c for c in map(Candidate.from_dict, state["evaluated"])}
        self.archive = ParetoArchive.from_dict(state["archive"])
        self.scores = {k: float(v) for k, v in state["scores"].items()}
        self.history = state["history"]


def spread_budgets(low: float, high: float, count: int = 7) -> list[float]:
    """``count`` budgets from ``low`` to ``high``, evenly spaced on a log scale (A0–A6 style)."""
    if count < 1 or not 0 < low <= high:
        raise ValueError(f"need count >= 1 and 0 < low <= high, got count={count}, low={low}, high={high}")
    if count == 1:
        return [float(high)]
    ratio = (high / low) ** (1 / (count - 1))
    return [low * ratio**i for i in range(count)]


def select_family(candidates: Iterable[Candidate], budgets: Sequence[float],
                  rescore: Callable[[Candidate], float] | None = None, shortlist: int = 1) -> list[Candidate]:
    """One distinct genome per budget (ascending): the best-scoring one in its band, so the family spreads.

    Budget ``i``'s band is (budget ``i-1``, budget ``i``]; on a flat front the best under each budget
    would cluster at the low end. A band with no unchosen genome falls back to the best under the budget.
    With ``rescore``, the ``shortlist`` best of a band are scored again (e.g. on more images) and the best
    of those is chosen: the top search score of many noisy ones is more often luck than the runner-up's.
    """
    if shortlist < 1:
        raise ValueError(f"shortlist must be >= 1, got {shortlist}")
    pool = sorted(candidates, key=rank_key)
    if not pool:
        raise ConstraintError("no evaluated genomes to choose a family from")
    chosen: list[Candidate] = []
    floor = float("-inf")
    for budget in sorted(budgets):
        taken = {c.key for c in chosen}
        fits = [c for c in pool if c.cost <= budget and c.key not in taken]
        if not fits:
            cheapest = min(c.cost for c in pool)
            raise ConstraintError(
                f"no unchosen evaluated genome costs at most {budget:.6g} (cheapest evaluated: {cheapest:.6g}, "
                f"already chosen: {len(chosen)}); raise the budget or search the low end of the range more"
            )
        finalists = ([c for c in fits if c.cost > floor] or fits)[:shortlist]
        chosen.append(finalists[0] if rescore is None else max(finalists, key=rescore))
        floor = budget
    return chosen
