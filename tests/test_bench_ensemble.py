"""benchmarks/ensemble_top1.py: bundled weight sets alone and as an ensemble on real CIFAR-10 test images."""

from bench_helpers import load_benchmark

import anas_zoo
from anas_zoo.evaluate import evaluate
from anas_zoo.pretrained_cfg import resolve_data_config
from anas_zoo.train.data import cifar10_loader, load_cifar10

FT, SUPERNET = "attentivenas_cifar10_a0.cifar10_ft", "attentivenas_cifar10_a0.cifar10"


def test_each_weight_set_scores_as_evaluated_and_an_ensemble_of_one_set_twice_is_that_set():
    images, labels = load_cifar10()["test"]
    test = (images[::50], labels[::50])  # 200 images across the class-sorted split
    report = load_benchmark("ensemble_top1").ensemble([FT, SUPERNET], test)
    assert report["images"] == 200 and list(report["top1"]) == [FT, SUPERNET]
    for name, top1 in report["top1"].items():
        model = anas_zoo.load(name, pretrained=True)
        config = resolve_data_config(model)
        loader = cifar10_loader(test, 64, train=False, shuffle=False, resolution=config.resolution, mean=config.mean,
                                std=config.std)
        assert top1 == round(evaluate(model, loader)["top1"], 2)
    assert report["top1"][FT] > 50 and 0 <= report["ensemble_top1"] <= 100  # trained weights (chance is 10 %)
    assert load_benchmark("ensemble_top1").ensemble([FT, FT], test)["ensemble_top1"] == report["top1"][FT]
