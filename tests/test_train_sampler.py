import random

import pytest
from train_helpers import TINY

from anas_zoo.flops import count_macs
from anas_zoo.space import InvalidArchError, get_space
from anas_zoo.train.sampler import AccuracyPredictor, MacsPrior, Sampler, sample_in_range


@pytest.fixture(scope="module")
def prior():
    return MacsPrior(TINY, num_samples=300, seed=0)


def test_bucket_width_is_25_mmacs_on_the_imagenet_space_and_scales_with_the_space():
    imagenet = MacsPrior("attentivenas", num_samples=20)
    assert 24e6 <= imagenet.width <= 26e6
    cifar = MacsPrior("cifar10", num_samples=20)
    assert cifar.width < imagenet.width / 10


def test_attentive_candidates_share_one_bucket_drawn_from_the_prior(prior):
    sampler = Sampler(TINY, "bestup", k=3, prior=prior)
    rng = random.Random(1)
    for _ in range(10):
        candidates = sampler.candidates(rng)
        assert len(candidates) == 3
        buckets = {prior.bucket_of(count_macs(a, TINY)) for a in candidates}
        assert len(buckets) == 1 and buckets.pop() in prior.pool


def test_prior_buckets_follow_the_uniform_macs_histogram(prior):
    rng = random.Random(2)
    draws = [prior.draw_bucket(rng) for _ in range(3000)]
    common = max(prior.pool, key=lambda b: len(prior.pool[b]))
    rare = min(prior.pool, key=lambda b: len(prior.pool[b]))
    assert draws.count(common) > draws.count(rare)
    expected = len(prior.pool[common]) / sum(len(v) for v in prior.pool.values())
    assert abs(draws.count(common) / 3000 - expected) < 0.05


def test_bestup_picks_the_lowest_loss_and_worstup_the_highest(prior):
    rng = random.Random(3)
    candidates = Sampler(TINY, "bestup", 3, prior).candidates(rng)
    losses = [0.7, 0.2, 0.9]
    assert Sampler(TINY, "bestup", 3, prior).pick(candidates, losses) == candidates[1]
    assert Sampler(TINY, "worstup", 3, prior).pick(candidates, losses) == candidates[2]


def test_uniform_proposes_one_subnet_and_same_seed_same_draws(prior):
    uniform = Sampler(TINY, "uniform")
    assert not uniform.needs_scores and len(uniform.candidates(random.Random(0))) == 1
    attentive = Sampler(TINY, "worstup", 4, prior)
    assert attentive.candidates(random.Random(9)) == attentive.candidates(random.Random(9))


def test_bad_sampler_settings_are_named():
    with pytest.raises(ValueError, match="unknown sampler 'best'"):
        Sampler(TINY, "best")
    with pytest.raises(ValueError, match="k"):
        Sampler(TINY, "bestup", k=0, prior=None)


def test_accuracy_predictor_recovers_a_linear_rule_and_ranks_by_it():
    space = get_space("cifar10")
    rng = random.Random(4)
    archs = [space.sample(rng) for _ in range(80)]
    truth = [0.5 + 0.01 * sum(a.depth) + 0.002 * a.resolution for a in archs]
    predictor = AccuracyPredictor.fit(archs, truth, ridge=1e-9)
    predicted = predictor.predict(archs)
    assert max(abs(p - t) for p, t in zip(predicted, truth)) < 1e-6
    again = AccuracyPredictor.from_dict(predictor.to_dict())
    losses = again.loss(archs[:3])
    best = Sampler(space, "bestup", 3, MacsPrior(space, 20)).pick(archs[:3], losses)
    assert best == archs[max(range(3), key=lambda i: truth[i])]


def test_sampling_within_a_macs_range():
    space, rng = get_space("attentivenas"), random.Random(0)
    for _ in range(20):
        arch = sample_in_range(space, rng, 300e6, 400e6)
        assert 300e6 <= count_macs(arch) <= 400e6
    with pytest.raises(InvalidArchError, match="spans 203.4-1939.3 MMACs"):
        sample_in_range(space, rng, 10e6, 20e6, max_tries=50)
