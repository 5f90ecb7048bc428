import json
import random

import pytest

from anas_zoo.space import ATTENTIVENAS, ArchConfig, InvalidArchError, get_space, make_divisible

SPACE = ATTENTIVENAS


def test_attentivenas_preset_matches_the_paper_table():
    table = [  # widths, depths, kernels, expands, stride, se   (DESIGN.md §3)
        ((16, 24), (1, 2), (3, 5), (1,), 1, False),
        ((24, 32), (3, 4, 5), (3, 5), (4, 5, 6), 2, False),
        ((32, 40), (3, 4, 5, 6), (3, 5), (4, 5, 6), 2, True),
        ((64, 72), (3, 4, 5, 6), (3, 5), (4, 5, 6), 2, False),
        ((112, 120, 128), (3, 4, 5, 6, 7, 8), (3, 5), (4, 5, 6), 1, True),
        ((192, 200, 208, 216), (3, 4, 5, 6, 7, 8), (3, 5), (6,), 2, True),
        ((216, 224), (1, 2), (3, 5), (6,), 1, True),
    ]
    got = [(s.widths, s.depths, s.kernels, s.expands, s.stride, s.se) for s in SPACE.stages]
    assert got == table
    assert SPACE.resolutions == (192, 224, 256, 288)
    assert SPACE.stem_widths == (16, 24) and SPACE.stem_stride == 2
    assert SPACE.mix_widths == (1792, 1984)
    assert sum(SPACE.max_arch().depth) == 37
    assert 4.0e11 < SPACE.size() < 5.0e11


def test_make_divisible_follows_the_tf_slim_rule():
    assert make_divisible(24 * 6) == 144
    assert make_divisible(60) == 64
    assert make_divisible(1296 // 4) == 328
    assert make_divisible(10) == 16  # 8 would be more than 10 % below 10


def test_plan_reproduces_the_official_max_shapes():
    blocks = SPACE.plan(SPACE.max_arch()).blocks
    shapes = [(b.c_in, b.c_out, b.mid, b.se_mid) for b in blocks]
    assert shapes[2] == (24, 32, 144, None)
    assert shapes[7] == (32, 40, 192, 48)
    assert shapes[8] == (40, 40, 240, 64)
    assert shapes[19] == (72, 128, 432, 112)
    assert shapes[35] == (216, 224, 1296, 328)
    assert shapes[36] == (224, 224, 1344, 336)


def test_genome_is_immutable_hashable_and_round_trips_json():
    arch = SPACE.sample(random.Random(1))
    with pytest.raises(AttributeError):
        arch.resolution = 224
    assert arch == ArchConfig.from_json(arch.to_json())
    assert arch == ArchConfig.from_dict(json.loads(json.dumps(arch.to_dict())))
    assert len({arch, ArchConfig.from_json(arch.to_json())}) == 1
    assert len(arch.genes()) == 31


@pytest.mark.parametrize(
    "change, message",
    [
        ({"resolution": 200}, "resolution=200 is not allowed in space 'attentivenas'; allowed: [192, 224, 256, 288]"),
        ({"width": (16, 16, 24, 48, 64, 112, 192, 216, 1792)}, "width[3]=48 is not allowed"),
        ({"depth": (1, 3, 3, 3, 3, 3, 3)}, "depth[6]=3 is not allowed in space 'attentivenas'; allowed: [1, 2]"),
        ({"kernel_size": (3, 3, 7, 3, 3, 3, 3)}, "kernel_size[2]=7"),
        ({"expand_ratio": (4, 4, 4, 4, 4, 6, 6)}, "expand_ratio[0]=4 is not allowed in space 'attentivenas'; allowed: [1]"),
        ({"depth": (1, 3, 3)}, "depth has 3 entries, space 'attentivenas' needs 7"),
    ],
)
def test_validation_names_gene_value_and_allowed_values(change, message):
    with pytest.raises(InvalidArchError) as err:
        SPACE.validate(SPACE.min_arch().replace(**change))
    assert message in str(err.value)


def test_from_dict_rejects_missing_and_unknown_keys():
    data = SPACE.min_arch().to_dict()
    data.pop("depth")
    data["depths"] = [1] * 7
    with pytest.raises(InvalidArchError, match=r"missing \['depth'\], unexpected \['depths'\]"):
        ArchConfig.from_dict(data)


def test_min_max_and_uniform_sampling_stay_in_the_space():
    assert SPACE.min_arch().width == (16, 16, 24, 32, 64, 112, 192, 216, 1792)
    assert SPACE.max_arch().depth == (2, 5, 6, 6, 8, 8, 2)
    rng = random.Random(0)
    samples = [SPACE.sample(rng) for _ in range(200)]
    for arch in samples:
        SPACE.validate(arch)
    assert len(set(samples)) == 200
    assert {a.resolution for a in samples} == set(SPACE.resolutions)


def test_mutation_resamples_each_gene_to_a_different_value():
    rng = random.Random(0)
    arch = SPACE.sample(rng)
    assert SPACE.mutate(arch, rng, prob=0.0) == arch
    mutated = SPACE.mutate(arch, rng, prob=1.0)
    for gene, pos, allowed in SPACE._gene_slots():
        before, after = SPACE._get(arch, gene, pos), SPACE._get(mutated, gene, pos)
        assert (after != before) == (len(allowed) > 1), (gene, pos)
    changed = [SPACE.mutate(arch, rng, prob=0.2) for _ in range(300)]
    rate = sum(a != b for c in changed for a, b in zip(c.genes(), arch.genes())) / (300 * 31)
    multi = sum(len(v) > 1 for _, _, v in SPACE._gene_slots()) / 31
    assert abs(rate - 0.2 * multi) < 0.03


def test_neighbours_differ_from_the_genome_in_exactly_one_gene():
    arch = SPACE.sample(random.Random(1))
    near = SPACE.neighbours(arch)
    assert len(near) == len({n.to_json() for n in near}) == sum(len(v) - 1 for _, _, v in SPACE._gene_slots())
    for n in near:
        SPACE.validate(n)
        assert sum(a != b for a, b in zip(n.genes(), arch.genes())) == 1


def test_uniform_crossover_takes_each_gene_from_a_parent():
    rng = random.Random(3)
    a, b = SPACE.min_arch(), SPACE.max_arch()
    children = [SPACE.crossover(a, b, rng) for _ in range(200)]
    for child in children:
        SPACE.validate(child)
        assert all(c in (x, y) for c, x, y in zip(child.genes(), a.genes(), b.genes()))
    from_b = sum(c == y != x for ch in children for c, x, y in zip(ch.genes(), a.genes(), b.genes()))
    differing = sum(x != y for x, y in zip(a.genes(), b.genes())) * 200
    assert abs(from_b / differing - 0.5) < 0.05
    assert SPACE.crossover(a, b, rng, prob=0.0) == a


def test_unknown_space_lists_available():
    with pytest.raises(KeyError, match="unknown search space 'nope'; available: .*attentivenas"):
        get_space("nope")
