"""Evolutionary search on a tiny space with a synthetic score: constraint, archive, dedup, resume, outputs, CLI."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from anas_zoo.cli import search as cli_search
from anas_zoo.cli.search import main as search_main
from anas_zoo.evaluate import evaluate_subnet
from anas_zoo.flops import count_macs
from anas_zoo.pareto import front_of
from anas_zoo.search import held_out
from anas_zoo.search.evolution import (
    ConstraintError,
    EvolutionarySearch,
    EvolutionSettings,
    latency_cost,
    select_family,
    spread_budgets,
)
from anas_zoo.search.latency_model import LatencyModel, feature_names
from anas_zoo.search.pareto_archive import Candidate, ParetoArchive, write_pareto
from anas_zoo.space import ArchConfig, SearchSpace, StageSpec, get_space, register_space
from anas_zoo.supernet import SuperNet
from anas_zoo.train.checkpoint import save_checkpoint
from anas_zoo.train.data import cifar10_split

TINY = register_space(SearchSpace(
    name="tiny_search_test",
    resolutions=(16, 24),
    stem_widths=(8, 16),
    stem_stride=2,
    stages=tuple(StageSpec((8, 16), (1, 2), (3, 5), (1,) if s == 0 else (2, 3), stride=1 + (s % 2), se=s >= 4)
                 for s in range(7)),
    mix_widths=(32, 48),
    num_classes=10,
))
#: Eight genomes in all: only resolution, the stem width and the mix width vary.
FEW = register_space(SearchSpace(
    name="few_search_test",
    resolutions=(16, 24),
    stem_widths=(8, 16),
    stem_stride=2,
    stages=tuple(StageSpec((8,), (1,), (3,), (1,), stride=1, se=False) for _ in range(7)),
    mix_widths=(32, 48),
    num_classes=10,
))
LO, HI = count_macs(TINY.min_arch(), TINY), count_macs(TINY.max_arch(), TINY)
SMALL = EvolutionSettings(population=16, generations=4, mutations=8, crossovers=8, seed=3)


class CountingScore:
    """A deterministic synthetic accuracy (grows with MACs, plus a per-genome hash term) that counts calls."""

    def __init__(self, space=TINY, fail_after: int | None = None):
        self.space, self.fail_after, self.calls = space, fail_after, []

    def __call__(self, arch) -> float:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append(arch.to_json())
        noise = int(hashlib.sha256(arch.to_json().encode()).hexdigest()[:8], 16) / 16**8
        return math.log(count_macs(arch, self.space)) + 0.5 * noise


def snapshot(result):
    return ([c.to_dict() for c in result.evaluated], result.archive.to_dict(),
            [c.key for c in result.population])


def test_every_evaluated_genome_and_archive_member_meets_the_constraint():
    lo, hi = LO + 0.2 * (HI - LO), LO + 0.5 * (HI - LO)
    result = EvolutionarySearch(TINY, CountingScore(), lo, hi, settings=SMALL, progress=False).run()
    assert len(result.evaluated) == SMALL.population + SMALL.generations * (SMALL.mutations + SMALL.crossovers)
    for c in result.evaluated:
        assert lo <= c.cost <= hi and c.cost == count_macs(c.arch, TINY) == c.macs
    assert result.archive.members() and all(lo <= c.cost <= hi for c in result.archive.members())


def test_the_first_population_is_the_ends_half_a_population_of_their_neighbours_then_random_genomes():
    result = EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=replace(SMALL, generations=0),
                                progress=False).run()
    first = [c.arch for c in result.evaluated]
    near = {n.to_json() for end in (TINY.min_arch(), TINY.max_arch()) for n in TINY.neighbours(end)}
    assert len(first) == SMALL.population and first[:2] == [TINY.min_arch(), TINY.max_arch()]
    assert all(a.to_json() in near for a in first[2:10]), "population // 2 one-gene neighbours of the ends"
    assert sum(a.to_json() not in near for a in first[10:]) >= 4, "the rest drawn uniformly"


def test_latency_cost_constrains_by_the_models_prediction():
    class ToyLatency:
        def predict_ms(self, arch):
            return 0.1 * arch.resolution + 0.05 * sum(arch.depth)

    budget = 0.1 * 16 + 0.05 * 9  # resolution 24 never fits
    result = EvolutionarySearch(TINY, CountingScore(), 0.0, budget, cost=latency_cost(ToyLatency()),
                                settings=SMALL, progress=False).run()
    assert result.evaluated and all(c.cost <= budget for c in result.evaluated)
    assert all(c.cost == pytest.approx(ToyLatency().predict_ms(c.arch)) for c in result.evaluated)
    assert {c.arch.resolution for c in result.evaluated} == {16}


def test_archive_never_gets_worse_across_generations(tmp_path):
    state = tmp_path / "state.json"
    previous: dict[int, Candidate] = {}
    for generations in range(5):
        settings = EvolutionSettings(population=12, generations=generations, mutations=6, crossovers=6, seed=1)
        search = EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=settings, state_path=state,
                                    progress=False)
        best = search.run().archive.best
        assert set(previous) <= set(best)
        assert all(best[b].accuracy >= c.accuracy for b, c in previous.items())
        previous = dict(best)
    assert any(c.accuracy > 0 for c in previous.values())


def test_archive_keeps_the_best_per_bucket_and_the_front_is_non_dominated():
    def cand(cost, score, res=16):
        return Candidate(TINY.min_arch().replace(resolution=res, width=(8 + cost,) + TINY.min_arch().width[1:]),
                         float(cost), 0, 0, score)

    archive = ParetoArchive(origin=0, bucket_width=10)
    assert archive.offer(cand(1, 0.5)) and archive.offer(cand(2, 0.6)) and not archive.offer(cand(3, 0.55))
    assert archive.offer(cand(15, 0.4)) and archive.offer(cand(25, 0.7))
    assert [(c.cost, c.accuracy) for c in archive.members()] == [(2, 0.6), (15, 0.4), (25, 0.7)]
    assert [(c.cost, c.accuracy) for c in archive.front()] == [(2, 0.6), (25, 0.7)]
    front = front_of([cand(5, 0.3), cand(4, 0.3), cand(6, 0.2)], lambda c: c.cost, lambda c: c.accuracy)
    assert [(c.cost, c.accuracy) for c in front] == [(4, 0.3)]
    with pytest.raises(ValueError, match="bucket width"):
        ParetoArchive(0, 0)


def test_each_genome_is_scored_once_even_when_the_space_runs_out():
    score = CountingScore(FEW)
    lo, hi = count_macs(FEW.min_arch(), FEW), count_macs(FEW.max_arch(), FEW)
    settings = EvolutionSettings(population=5, generations=3, mutations=4, crossovers=4, max_tries=200)
    result = EvolutionarySearch(FEW, score, lo, hi, settings=settings, progress=False).run()
    assert len(score.calls) == len(set(score.calls)) == len(result.evaluated) == FEW.size() == 8


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path):
    whole = EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, progress=False).run()

    state = tmp_path / "state.json"
    half = EvolutionSettings(**{**SMALL.__dict__, "generations": 2})
    EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=half, state_path=state, progress=False).run()
    assert json.loads(state.read_text())["next_step"] == 3
    score = CountingScore()
    resumed = EvolutionarySearch(TINY, score, LO, HI, settings=SMALL, state_path=state, progress=False).run()
    assert snapshot(resumed) == snapshot(whole)
    assert len(score.calls) == 2 * (SMALL.mutations + SMALL.crossovers)


def test_a_crash_mid_generation_resumes_without_rescoring_saved_genomes(tmp_path):
    whole = EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, progress=False).run()
    state = tmp_path / "state.json"
    settings = EvolutionSettings(**{**SMALL.__dict__, "save_every": 1})
    crashing = CountingScore(fail_after=SMALL.population + 5)
    with pytest.raises(KeyboardInterrupt):
        EvolutionarySearch(TINY, crashing, LO, HI, settings=settings, state_path=state, progress=False).run()
    saved = json.loads(state.read_text())
    assert saved["next_step"] == 1 and len(saved["scores"]) == SMALL.population + 5
    score = CountingScore()
    resumed = EvolutionarySearch(TINY, score, LO, HI, settings=settings, state_path=state, progress=False).run()
    assert snapshot(resumed) == snapshot(whole)
    assert not set(score.calls) & set(crashing.calls)
    assert len(score.calls) + len(crashing.calls) == len(whole.evaluated)


def test_resume_refuses_a_state_made_with_other_settings(tmp_path):
    state = tmp_path / "state.json"
    EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, state_path=state, progress=False).run()
    other = EvolutionSettings(**{**SMALL.__dict__, "seed": 4})
    with pytest.raises(ValueError, match="seed=3.*seed=4"):
        EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=other, state_path=state, progress=False)
    scored_by = {"supernet_sha256": "ab12", "eval_samples": 30}
    EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, state_path=tmp_path / "s2.json",
                       progress=False, score_identity=scored_by).run()
    with pytest.raises(ValueError, match="eval_samples.: 30.*eval_samples.: 40"):
        EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, state_path=tmp_path / "s2.json",
                           progress=False, score_identity={**scored_by, "eval_samples": 40})
    state.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, state_path=state, progress=False)


def test_an_unreachable_range_fails_with_the_span_of_the_space():
    with pytest.raises(ConstraintError, match="spans"):
        EvolutionarySearch(TINY, CountingScore(), HI + 1, HI + 2, settings=SMALL, progress=False)
    with pytest.raises(ValueError, match="empty"):
        EvolutionarySearch(TINY, CountingScore(), HI, LO, settings=SMALL, progress=False)
    narrow = EvolutionSettings(population=4, generations=0, max_tries=50)
    gap = LO + 1  # above the smallest genome, below every other one
    with pytest.raises(ConstraintError, match="after 50 tries"):
        EvolutionarySearch(TINY, CountingScore(), gap, gap, settings=narrow, progress=False).run()
    with pytest.raises(ValueError, match="mutate_prob"):
        EvolutionSettings(mutate_prob=0)


def test_family_picks_a_distinct_best_genome_in_each_budget_band():
    base = TINY.min_arch()
    pool = [Candidate(base.replace(width=(8 + i,) + base.width[1:]), cost, 0, 0, score)
            for i, (cost, score) in enumerate([(10, 0.50), (12, 0.55), (15, 0.52), (19, 0.70), (30, 0.60)])]
    family = select_family(pool, [20, 11, 16])
    assert [(c.cost, c.accuracy) for c in family] == [(10, 0.50), (12, 0.55), (19, 0.70)]
    assert [(c.cost, c.accuracy) for c in select_family(pool, [20, 20])] == [(19, 0.70), (12, 0.55)]
    with pytest.raises(ConstraintError, match="cheapest evaluated: 10"):
        select_family(pool, [11, 11])
    flat = [Candidate(base.replace(width=(8 + i,) + base.width[1:]), cost, 0, 0, score)
            for i, (cost, score) in enumerate([(10, 0.50), (11, 0.80), (12, 0.79), (18, 0.75), (25, 0.78)])]
    assert [c.cost for c in select_family(flat, [12, 20, 30])] == [11, 18, 25], "each budget's own band first"
    with pytest.raises(ValueError, match="shortlist must be >= 1, got 0"):
        select_family(pool, [20], shortlist=0)
    budgets = spread_budgets(2.0, 7.0, 7)
    assert budgets[0] == pytest.approx(2.0) and budgets[-1] == pytest.approx(7.0)
    assert all(b / a == pytest.approx(3.5 ** (1 / 6)) for a, b in itertools.pairwise(budgets))


def test_family_rescoring_picks_the_best_of_each_bands_shortlist():
    base = TINY.min_arch()
    pool = [Candidate(base.replace(width=(8 + i,) + base.width[1:]), cost, 0, 0, score)
            for i, (cost, score) in enumerate([(10, 0.60), (11, 0.58), (12, 0.55), (18, 0.70), (19, 0.65)])]
    second_look = {10: 0.50, 11: 0.57, 12: 0.99, 18: 0.60, 19: 0.64}
    rescored = []

    def rescore(c: Candidate) -> float:
        rescored.append(c.cost)
        return second_look[c.cost]

    family = select_family(pool, [15, 20], rescore, shortlist=2)
    assert [c.cost for c in family] == [11, 19], "the best second look among each band's two best search scores"
    assert sorted(rescored) == [10, 11, 18, 19], "the third best of a band (cost 12) is never scored again"
    assert [c.cost for c in select_family(pool, [15, 20], rescore, shortlist=1)] == [10, 18]


def test_pareto_outputs_list_the_archive_with_the_front_flagged(tmp_path):
    result = EvolutionarySearch(TINY, CountingScore(), LO, HI, settings=SMALL, progress=False).run()
    paths = write_pareto(tmp_path, result.archive, result.evaluated, "macs", "MMACs", 1e6, {"space": TINY.name})
    document = json.loads(paths["json"].read_text())
    front = {c.key for c in result.archive.front()}
    assert document["space"] == TINY.name and document["evaluated"] == len(result.evaluated)
    assert [m["on_front"] for m in document["members"]] == [c.key in front for c in result.archive.members()]
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == len(result.archive.best)
    assert {"genome", "macs", "params", "accuracy"} <= set(document["members"][0])
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, message", [
    (["--min-macs", "50", "--max-macs", "10"], "--min-macs 50.*--max-macs 10"),
    (["--latency-budget-ms", "5"], "--latency-model"),
    (["--latency-budget-ms", "5", "--latency-model", "m.json", "--max-macs", "9"], "either"),
    (["--population", "0"], "--population"),
    (["--space", "no_such_space"], "no_such_space"),
])
def test_cli_rejects_bad_usage_with_one_line(tmp_path, capsys, argv, message):
    code = search_main(["--supernet", str(tmp_path / "s.json"), "--data", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err
    assert __import__("re").search(message, err), err


def test_cli_without_data_says_how_to_give_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("ANAS_ZOO_DATA", raising=False)
    code = search_main(["--supernet", str(tmp_path / "s.json"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "pass --data PATH or set ANAS_ZOO_DATA" in err and "\n" not in err.strip()


def test_cli_names_a_missing_checkpoint(tmp_path, capsys):
    code = search_main(["--supernet", str(tmp_path / "missing.json"), "--data", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and "missing.json" in err


@pytest.fixture
def tiny_supernet_cli(tmp_path, monkeypatch):
    """A saved tiny supernet, synthetic CIFAR-shaped data, and a record of every genome the CLI scores.

    Only the CIFAR-10 decoder is replaced (by a small synthetic set of the same layout: decoding is the
    data module's job and needs all 60,000 images); splitting, batching, BN calibration and scoring are real.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convolutions: extra threads only add contention on a shared 2-core machine
    torch.manual_seed(0)
    recipe = {"config": {"data": "cifar10", "holdout_fraction": 0.2, "seed": 5}}
    checkpoint = save_checkpoint(tmp_path / "supernet.safetensors", SuperNet(TINY, num_classes=10), state=recipe)
    generator = torch.Generator().manual_seed(0)
    fake = {split: (torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                    torch.arange(n) % 10) for split, n in (("train", 400), ("test", 50))}
    monkeypatch.setattr(cli_search, "load_cifar10", lambda source: fake)
    splits = []

    def recorded_split(data, holdout_fraction, seed):
        splits.append((holdout_fraction, seed))
        return cifar10_split(data, holdout_fraction, seed=seed)

    monkeypatch.setattr(cli_search, "cifar10_split", recorded_split)
    scored = []

    def counting_evaluate(supernet, arch, *args, **kwargs):
        scored.append(arch.to_json())
        return evaluate_subnet(supernet, arch, *args, **kwargs)

    monkeypatch.setattr(held_out, "evaluate_subnet", counting_evaluate)
    argv = ["--supernet", str(checkpoint), "--data", str(tmp_path), "--population", "5", "--generations", "1",
            "--mutations", "2", "--crossovers", "2", "--calib-batches", "2", "--eval-samples", "30",
            "--batch-size", "16", "--json", "--device", "cpu"]
    yield argv, scored, splits
    torch.set_num_threads(threads)


def test_cli_searches_a_real_supernet_checkpoint_and_resumes(tiny_supernet_cli, tmp_path, capsys):
    argv, scored, splits = tiny_supernet_cli
    out = tmp_path / "search"
    argv = [*argv, "--min-macs", "0.05", "--max-macs", "0.2", "--family", "2", "--family-shortlist", "2",
            "--out", str(out)]
    assert search_main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    searched, rescored = scored[:9], scored[9:]
    assert first["evaluated"] == len(set(searched)) == 9
    assert 2 <= len(rescored) == len(set(rescored)) <= 4, "at most the two best of each band are scored again"
    for member in first["family"]:
        assert ArchConfig.from_dict(member["genome"]).to_json() in rescored
        assert member["held_out_samples"] == 80 and 0 <= member["held_out_top1"] <= 1  # all 20 % of 400 images
    assert splits == [(0.2, 5)] and first["holdout"] == {"fraction": 0.2, "seed": 5}  # the training's own split
    assert first["front"] and all(50_000 <= m["macs"] <= 200_000 and 0 <= m["accuracy"] <= 1 for m in first["front"])
    assert len({json.dumps(m["genome"]) for m in first["family"]}) == 2
    assert all(m["macs"] <= m["budget_macs"] for m in first["family"])
    assert {Path(p).name for p in first["files"].values()} == {"pareto.json", "pareto.csv", "pareto.png",
                                                                "family.json"}
    assert (out / "search_state.json").exists()

    assert search_main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["front"] == first["front"] and again["family"] == first["family"]
    assert len(scored) == 9 + len(rescored), "a rerun scores no genome again, for the search or the family"


def test_an_interrupted_family_rescoring_keeps_what_it_scored(tiny_supernet_cli, tmp_path, capsys, monkeypatch):
    argv, scored, _ = tiny_supernet_cli
    argv = [*argv, "--min-macs", "0.05", "--max-macs", "0.2", "--family", "2", "--family-shortlist", "2",
            "--out", str(tmp_path / "search")]
    counting = held_out.evaluate_subnet

    def crash_on_the_second_rescore(*args, **kwargs):
        if len(scored) == 10:
            raise KeyboardInterrupt
        return counting(*args, **kwargs)

    monkeypatch.setattr(held_out, "evaluate_subnet", crash_on_the_second_rescore)
    assert search_main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    first_rescore = scored[9]
    monkeypatch.setattr(held_out, "evaluate_subnet", counting)
    assert search_main(argv) == 0
    assert first_rescore not in scored[10:], "the re-score saved before the interruption is not made again"


def test_cli_constrains_by_a_latency_model(tiny_supernet_cli, tmp_path, capsys):
    argv, scored, _ = tiny_supernet_cli
    model = LatencyModel(TINY.name, feature_names(TINY), [0.2, 0.01, 1.0, 0.5, 0.6, 0.1, 0.1, 0.05])
    budget = 1.5 * model.predict_ms(TINY.min_arch())
    assert budget < model.predict_ms(TINY.max_arch())
    path = model.save(tmp_path / "latency.json")
    argv = [*argv, "--latency-budget-ms", str(budget), "--latency-model", str(path), "--out", str(tmp_path / "o")]
    assert search_main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cost"] == "latency_ms" and len(scored) == result["evaluated"] > 0
    for member in result["front"]:
        assert member["cost"] == pytest.approx(model.predict_ms(member["genome"])) and member["cost"] <= budget

    LatencyModel("cifar10", feature_names(get_space("cifar10")), model.weights).save(path)
    assert search_main(argv) == 1
    assert "built for space 'cifar10'" in capsys.readouterr().err
