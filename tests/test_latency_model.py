"""The latency model: features consistent with the MACs counter, exact fit of a known cost, JSON round
trip, and a real fit from torch measurements on a tiny search space."""

import json
import random

import pytest

from anas_zoo.cli.bench import main as bench_main
from anas_zoo.flops import count_macs
from anas_zoo.search.latency_model import FORMAT, LatencyModel, build_latency_model, feature_names
from anas_zoo.space import SearchSpace, StageSpec, register_space

TINY = register_space(SearchSpace(
    name="latency_test_tiny",
    resolutions=(32, 48),
    stem_widths=(8, 16),
    stem_stride=2,
    stages=(
        StageSpec((8, 16), (1, 2), (3, 5), (1,), stride=1, se=False),
        StageSpec((16, 32), (1, 3), (3, 5), (3, 6), stride=2, se=True),
    ),
    mix_widths=(64, 128),
    num_classes=10,
))


def _macs_cost(arch):
    """A device whose latency is exactly 0.2 ms + 0.05 ms per MMAC (the analytic counter's MACs)."""
    return 0.2 + 0.05 * count_macs(arch, TINY) / 1e6


def _macs_costs(archs):
    return [_macs_cost(a) for a in archs]


def test_fit_recovers_a_cost_that_is_linear_in_work():
    model = build_latency_model(TINY, num_train=12, num_val=10, measure=_macs_costs, progress=False)
    assert model.validation["mape_percent"] < 1e-6
    assert model.validation["kendall_tau"] == pytest.approx(1.0)
    assert all(w >= 0 for w in model.weights)
    rng = random.Random(7)
    for arch in (TINY.sample(rng) for _ in range(5)):
        assert model.predict_ms(arch) == pytest.approx(_macs_cost(arch), rel=1e-6)
    assert [m["split"] for m in model.measurements].count("val") == 10
    assert model.measurements[0]["genome"] == TINY.min_arch().to_dict()


def test_save_and_load_round_trip_as_plain_json(tmp_path):
    model = build_latency_model(TINY, num_train=6, num_val=4, measure=_macs_costs, progress=False)
    path = model.save(tmp_path / "sub" / "lm.json")
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["features"] == feature_names(TINY)
    loaded = LatencyModel.load(path)
    arch = TINY.max_arch()
    assert loaded.predict_ms(arch) == pytest.approx(model.predict_ms(arch))
    assert loaded.predict_ms(arch.to_dict()) == loaded.predict_ms(arch.to_json())

    data["format"] = "something/else"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a latency model"):
        LatencyModel.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read"):
        LatencyModel.load(tmp_path / "missing.json")


@pytest.fixture
def restore_torch_threads():
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_real_fit_on_a_tiny_space_with_torch_measurements(restore_torch_threads):
    model = build_latency_model(TINY, backend="torch", threads=1, num_train=8, num_val=4, warmup=2, iters=3,
                                rounds=2, progress=False)
    assert model.setting["rounds"] == 2
    assert model.setting["backend"] == "torch" and model.setting["threads"] == 1
    assert all(m["ms"] > 0 for m in model.measurements) and len(model.measurements) == 12
    assert model.environment["threads"]["requested_intra_op"] == 1
    assert model.predict_ms(TINY.min_arch()) > 0
    # the largest sub-network does several times the smallest one's work: the fit must rank them
    assert model.predict_ms(TINY.max_arch()) > model.predict_ms(TINY.min_arch())
    assert -1.0 <= model.validation["kendall_tau"] <= 1.0 and model.validation["mape_percent"] >= 0


def test_anas_bench_latency_model_writes_a_model_the_search_can_load(restore_torch_threads, tmp_path, capsys):
    out = tmp_path / "model.json"
    code = bench_main(["latency-model", "--space", TINY.name, "--backend", "torch", "--num-train", "3", "--num-val", "2",
                       "--warmup", "0", "--iters", "1", "--rounds", "1", "--out", str(out), "--no-progress", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    model = LatencyModel.load(out)
    assert doc["path"] == str(out) and doc["setting"] == model.setting and model.setting["backend"] == "torch"
    assert doc["targets_met"] == (doc["validation"]["kendall_tau"] >= 0.85 and doc["validation"]["mape_percent"] <= 10)
    assert len(model.measurements) == 5 and model.predict_ms(TINY.max_arch()) > 0
    with pytest.raises(SystemExit) as usage:
        bench_main(["latency-model", "--space", TINY.name, "--rounds", "0", "--out", str(out)])
    assert usage.value.code == 2 and "--rounds: must be an integer >= 1, got '0'" in capsys.readouterr().err


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="num_train"):
        build_latency_model(TINY, num_train=2, num_val=4, measure=_macs_costs, progress=False)
