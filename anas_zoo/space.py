"""Search spaces and the genome (``ArchConfig``) of one sub-network.

A :class:`SearchSpace` lists the choices per stage; an :class:`ArchConfig` picks one value per gene.
:meth:`SearchSpace.plan` turns a genome into the concrete per-layer shapes that the supernet, the
static model and the MACs counter all share, so model code never depends on a particular preset.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

GENE_LISTS = ("width", "depth", "kernel_size", "expand_ratio")


class InvalidArchError(ValueError):
    """A genome that does not fit its search space."""


class UnknownSpaceError(KeyError, ValueError):
    """A search space name that is not registered (a KeyError for lookups, a ValueError for user input)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


#: Upper bound on classifier outputs: far above any dataset, far below a size that exhausts memory.
MAX_CLASSES = 100_000
MAX_RESOLUTION = 4096


def _positive_int(value, what: str, limit: int) -> int:
    """``value`` if it is an integer from 1 to ``limit`` (not a bool, not 24.5, not "24"), else InvalidArchError."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise InvalidArchError(f"{what} must be an integer from 1 to {limit}, got {value!r}")
    return value


def make_divisible(value: float, divisor: int = 8) -> int:
    """TF-slim channel rounding: nearest multiple of ``divisor``, never more than 10 % below ``value``."""
    rounded = max(1, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class ArchConfig:
    """One sub-network: input resolution plus widths[stem, mb1..mb7, mix], and per-stage depth/kernel/expand."""

    resolution: int
    width: tuple[int, ...]
    depth: tuple[int, ...]
    kernel_size: tuple[int, ...]
    expand_ratio: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in GENE_LISTS:
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "resolution", int(self.resolution))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict) -> ArchConfig:
        """A genome from its JSON form, every value checked: integer resolution, lists of positive integers."""
        expected = {"resolution", *GENE_LISTS}
        if not isinstance(data, dict):
            raise InvalidArchError(f"a genome must be a JSON object with keys {sorted(expected)}, got {data!r:.80}")
        missing, extra = expected - data.keys(), data.keys() - expected
        if missing or extra:
            raise InvalidArchError(
                f"genome keys must be exactly {sorted(expected)}; missing {sorted(missing)}, unexpected {sorted(extra)}"
            )
        _positive_int(data["resolution"], "genome resolution", MAX_RESOLUTION)
        for gene in GENE_LISTS:
            if not isinstance(data[gene], (list, tuple)) or not data[gene]:
                raise InvalidArchError(f"genome {gene} must be a non-empty list of integers, got {data[gene]!r:.80}")
            for value in data[gene]:
                _positive_int(value, f"every genome {gene} entry", MAX_RESOLUTION)
        return cls(**{k: data[k] for k in expected})

    @classmethod
    def from_json(cls, text: str) -> ArchConfig:
        return cls.from_dict(json.loads(text))

    def genes(self) -> tuple[int, ...]:
        """The genome as one flat tuple (resolution first): the features of a predictor."""
        return (self.resolution, *self.width, *self.depth, *self.kernel_size, *self.expand_ratio)

    def replace(self, **changes) -> ArchConfig:
        return ArchConfig(**{**asdict(self), **changes})


@dataclass(frozen=True)
class StageSpec:
    """Choices of one MBConv stage."""

    widths: tuple[int, ...]
    depths: tuple[int, ...]
    kernels: tuple[int, ...]
    expands: tuple[int, ...]
    stride: int
    se: bool


@dataclass(frozen=True)
class ConvPlan:
    """A concrete convolution: channels, kernel, stride, groups and the spatial size of its input."""

    c_in: int
    c_out: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bias: bool = False
    in_size: int = 1

    @property
    def out_size(self) -> int:
        return (self.in_size + 2 * (self.kernel // 2) - self.kernel) // self.stride + 1


@dataclass(frozen=True)
class BlockPlan:
    """A concrete MBConv block: its stage/position, convs, SE width and shortcut kind."""

    stage: int
    index: int
    c_in: int
    c_out: int
    mid: int
    kernel: int
    stride: int
    in_size: int
    se_mid: int | None
    expand: bool

    @property
    def out_size(self) -> int:
        return (self.in_size - 1) // self.stride + 1

    @property
    def identity_shortcut(self) -> bool:
        return self.c_in == self.c_out and self.stride == 1

    @property
    def shortcut_conv(self) -> bool:
        return self.c_in != self.c_out

    @property
    def shortcut_pool_padding(self) -> int:
        """Avg-pool padding of a strided shortcut: 0 for an even input side, 1 for an odd one."""
        return self.in_size % 2


@dataclass(frozen=True)
class NetPlan:
    """Every concrete shape of one sub-network, derived from a genome and its space."""

    resolution: int
    stem: ConvPlan
    blocks: tuple[BlockPlan, ...]
    head_expand: ConvPlan
    feature_mix: ConvPlan
    num_classes: int


@dataclass(frozen=True)
class SearchSpace:
    """A named weight-sharing search space: stem, seven MBConv stages, head, and input resolutions."""

    name: str
    resolutions: tuple[int, ...]
    stem_widths: tuple[int, ...]
    stem_stride: int
    stages: tuple[StageSpec, ...]
    mix_widths: tuple[int, ...]
    num_classes: int
    head_expand: int = 6
    description: str = field(default="", compare=False)

    # ----- genes -------------------------------------------------------------------------------
    def choices(self) -> dict[str, list[tuple[int, ...]] | tuple[int, ...]]:
        """Allowed values per gene: ``resolution`` a tuple, the lists one tuple per position."""
        return {
            "resolution": self.resolutions,
            "width": [self.stem_widths, *(s.widths for s in self.stages), self.mix_widths],
            "depth": [s.depths for s in self.stages],
            "kernel_size": [s.kernels for s in self.stages],
            "expand_ratio": [s.expands for s in self.stages],
        }

    def _gene_slots(self) -> Iterator[tuple[str, int | None, tuple[int, ...]]]:
        """(gene, position or None for resolution, allowed values) for every gene of a genome."""
        for gene, allowed in self.choices().items():
            if gene == "resolution":
                yield gene, None, allowed
            else:
                for i, values in enumerate(allowed):
                    yield gene, i, values

    @staticmethod
    def _get(arch: ArchConfig, gene: str, pos: int | None) -> int:
        value = getattr(arch, gene)
        return value if pos is None else value[pos]

    @staticmethod
    def _build(values: dict[tuple[str, int | None], int]) -> ArchConfig:
        fields: dict[str, list[int] | int] = {g: [] for g in GENE_LISTS}
        for (gene, pos), value in values.items():
            if pos is None:
                fields[gene] = value
            else:
                fields[gene].append(value)
        return ArchConfig(**fields)

    def validate(self, arch: ArchConfig) -> ArchConfig:
        """Return ``arch`` if every gene is allowed here, else raise naming the gene, value and choices."""
        for gene, allowed in self.choices().items():
            if gene == "resolution":
                continue
            got = getattr(arch, gene)
            if len(got) != len(allowed):
                raise InvalidArchError(
                    f"{gene} has {len(got)} entries, space '{self.name}' needs {len(allowed)}"
                )
        for gene, pos, allowed in self._gene_slots():
            value = self._get(arch, gene, pos)
            if value not in allowed:
                where = gene if pos is None else f"{gene}[{pos}]"
                raise InvalidArchError(
                    f"{where}={value} is not allowed in space '{self.name}'; allowed: {list(allowed)}"
                )
        return arch

    # ----- sampling ----------------------------------------------------------------------------
    def _pick(self, pick: Callable[[tuple[int, ...]], int]) -> ArchConfig:
        return self._build({(g, p): pick(v) for g, p, v in self._gene_slots()})

    def min_arch(self) -> ArchConfig:
        return self._pick(min)

    def max_arch(self) -> ArchConfig:
        return self._pick(max)

    def sample(self, rng: random.Random) -> ArchConfig:
        """A uniformly random genome (each gene independently)."""
        return self._pick(rng.choice)

    def mutate(self, arch: ArchConfig, rng: random.Random, prob: float = 0.2) -> ArchConfig:
        """Each gene, with probability ``prob``, is resampled to a *different* allowed value."""
        values = {}
        for gene, pos, allowed in self._gene_slots():
            value = self._get(arch, gene, pos)
            if len(allowed) > 1 and rng.random() < prob:
                value = rng.choice([v for v in allowed if v != value])
            values[(gene, pos)] = value
        return self._build(values)

    def neighbours(self, arch: ArchConfig) -> list[ArchConfig]:
        """Every genome that differs from ``arch`` in exactly one gene (one resolution, width, depth, ... change)."""
        base = {(g, p): self._get(arch, g, p) for g, p, _ in self._gene_slots()}
        return [self._build(base | {(g, p): v})
                for g, p, allowed in self._gene_slots() for v in allowed if v != base[(g, p)]]

    def crossover(
        self, a: ArchConfig, b: ArchConfig, rng: random.Random, prob: float = 0.5
    ) -> ArchConfig:
        """Uniform crossover: each gene from ``b`` with probability ``prob``, else from ``a``."""
        return self._build(
            {
                (g, p): self._get(b if rng.random() < prob else a, g, p)
                for g, p, _ in self._gene_slots()
            }
        )

    def size(self) -> int:
        """Number of distinct sub-networks (depths counted once each, as the genome does)."""
        total = 1
        for _, _, allowed in self._gene_slots():
            total *= len(allowed)
        return total

    # ----- concrete shapes ---------------------------------------------------------------------
    def plan(self, arch: ArchConfig, num_classes: int | None = None, resolution: int | None = None) -> NetPlan:
        """Concrete layer shapes of ``arch`` (validated); ``resolution`` overrides the genome's input size."""
        self.validate(arch)
        if num_classes is not None:
            _positive_int(num_classes, "num_classes", MAX_CLASSES)
        if resolution is not None:
            _positive_int(resolution, "resolution", MAX_RESOLUTION)
        size = resolution or arch.resolution
        stem = ConvPlan(3, arch.width[0], kernel=3, stride=self.stem_stride, in_size=size)
        size, c_in = stem.out_size, stem.c_out
        blocks = []
        for s, spec in enumerate(self.stages):
            c_out = arch.width[s + 1]
            for i in range(arch.depth[s]):
                stride = spec.stride if i == 0 else 1
                mid = make_divisible(round(c_in * arch.expand_ratio[s]), 8)
                block = BlockPlan(
                    stage=s,
                    index=i,
                    c_in=c_in,
                    c_out=c_out,
                    mid=mid,
                    kernel=arch.kernel_size[s],
                    stride=stride,
                    in_size=size,
                    se_mid=make_divisible(mid // 4, 8) if spec.se else None,
                    expand=arch.expand_ratio[s] != 1,
                )
                blocks.append(block)
                size, c_in = block.out_size, c_out
        head = ConvPlan(c_in, c_in * self.head_expand, in_size=size)
        mix = ConvPlan(head.c_out, arch.width[-1], in_size=1)
        return NetPlan(
            resolution=resolution or arch.resolution,
            stem=stem,
            blocks=tuple(blocks),
            head_expand=head,
            feature_mix=mix,
            num_classes=num_classes or self.num_classes,
        )


ATTENTIVENAS = SearchSpace(
    name="attentivenas",
    resolutions=(192, 224, 256, 288),
    stem_widths=(16, 24),
    stem_stride=2,
    stages=(
        StageSpec((16, 24), (1, 2), (3, 5), (1,), stride=1, se=False),
        StageSpec((24, 32), (3, 4, 5), (3, 5), (4, 5, 6), stride=2, se=False),
        StageSpec((32, 40), (3, 4, 5, 6), (3, 5), (4, 5, 6), stride=2, se=True),
        StageSpec((64, 72), (3, 4, 5, 6), (3, 5), (4, 5, 6), stride=2, se=False),
        StageSpec((112, 120, 128), (3, 4, 5, 6, 7, 8), (3, 5), (4, 5, 6), stride=1, se=True),
        StageSpec((192, 200, 208, 216), (3, 4, 5, 6, 7, 8), (3, 5), (6,), stride=2, se=True),
        StageSpec((216, 224), (1, 2), (3, 5), (6,), stride=1, se=True),
    ),
    mix_widths=(1792, 1984),
    num_classes=1000,
    description="The AttentiveNAS / AlphaNet ImageNet space (CVPR 2021), exact.",
)

CIFAR10 = SearchSpace(
    name="cifar10",
    resolutions=(24, 28, 32),
    stem_widths=(16, 24),
    stem_stride=1,
    stages=(
        StageSpec((16, 24), (1, 2), (3, 5), (1,), stride=1, se=False),
        StageSpec((24, 32), (2, 3), (3, 5), (3, 4, 5), stride=2, se=False),
        StageSpec((32, 40), (2, 3), (3, 5), (3, 4, 5), stride=2, se=True),
        StageSpec((64, 72), (2, 3, 4), (3, 5), (3, 4, 5), stride=2, se=False),
        StageSpec((96, 112), (2, 3, 4), (3, 5), (3, 4, 5), stride=1, se=True),
        StageSpec((128, 144, 160), (2, 3, 4), (3, 5), (6,), stride=1, se=True),
        StageSpec((160, 176), (1, 2), (3, 5), (6,), stride=1, se=True),
    ),
    mix_widths=(640, 768),
    num_classes=10,
    description=(
        "CIFAR-10 sized AttentiveNAS space: same genome, SE placement, activations and head as the ImageNet "
        "space, for 32x32 inputs on a CPU budget. Stem stride 1, then stages at 32/16/8/4/4/4/4 (total stride 8, "
        "as CIFAR networks use: the ImageNet space's stride 32 would leave 1x1 maps); resolutions 24/28/32; "
        "widths stem 16-24, mb1 16-24, mb2 24-32, mb3 32-40, mb4 64-72, mb5 96-112, mb6 128-160, mb7 160-176, "
        "mix 640-768; depths 1-2, 2-3, 2-3, 2-4, 2-4, 2-4, 1-2 (max 21 blocks); kernels 3/5; expand 3-5 "
        "(mb2-mb5), 6 (mb6-mb7). MACs 11.9 (smallest, res 24) to 70.6 MMACs (largest, res 32), median of uniform "
        "samples ~35 MMACs; params "
        "2.4-7.1 M. A 4x4 last stage costs about what the 2x2 one did per training step (small maps are "
        "overhead-bound on CPU) and gives the late stages spatial context."
    ),
)

_SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    """Make a preset available by name to the registry, CLIs and configs."""
    if space.name in _SPACES and _SPACES[space.name] != space:
        raise ValueError(f"a different search space named '{space.name}' is already registered")
    _SPACES[space.name] = space
    return space


def get_space(name: str | SearchSpace) -> SearchSpace:
    """Look up a preset by name (a SearchSpace passes through)."""
    if isinstance(name, SearchSpace):
        return name
    if isinstance(name, str) and name in _SPACES:
        return _SPACES[name]
    raise UnknownSpaceError(f"unknown search space {name!r}; available: {sorted(_SPACES)}")


def list_spaces() -> list[str]:
    return sorted(_SPACES)


def as_arch(value: ArchConfig | dict | str | Sequence) -> ArchConfig:
    """Accept a genome as an ArchConfig, a dict, or a JSON string."""
    if isinstance(value, ArchConfig):
        return value
    if isinstance(value, str):
        return ArchConfig.from_json(value)
    if isinstance(value, dict):
        return ArchConfig.from_dict(value)
    raise TypeError(f"expected an ArchConfig, dict or JSON string, got {type(value).__name__}")


register_space(ATTENTIVENAS)
register_space(CIFAR10)
