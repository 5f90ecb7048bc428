"""benchmarks/fit_gap.py: a bundled weight set measured on the training part, the held-out part and the test split
of real CIFAR-10 images, each split sampled across all its classes."""

import shutil

import pytest
import torch
from bench_helpers import load_benchmark

from anas_zoo.store import BUNDLED_DIR, WeightsError
from anas_zoo.train.data import cifar10_split, load_cifar10


def test_spread_samples_a_class_sorted_split_evenly():
    labels = torch.arange(10).repeat_interleave(100)  # sorted by class, as the archive is: a prefix is one class
    images = torch.zeros(1000, 3, 2, 2, dtype=torch.uint8)
    picked_images, picked = load_benchmark("fit_gap").spread((images, labels), 50)
    assert len(picked) == len(picked_images) == 50
    assert torch.bincount(picked, minlength=10).tolist() == [5] * 10
    assert len(load_benchmark("fit_gap").spread((images, labels), 5000)[1]) == 1000


def test_a_bundled_member_scores_on_every_split_and_reports_the_gap():
    fit_gap = load_benchmark("fit_gap")
    splits = {name: fit_gap.spread(split, 100) for name, split in cifar10_split(load_cifar10()).items()}
    row = fit_gap.measure("attentivenas_cifar10_a0.cifar10_ft", splits)
    assert row["images"] == {"train": 100, "val": 100, "test": 100}
    assert row["test_top1"] > 50  # the trained weights on real images (chance is 10 %)
    assert all(0 <= row[f"{name}_top1"] <= 100 for name in splits)
    assert abs(row["train_minus_val"] - (row["train_top1"] - row["val_top1"])) <= 0.01 + 1e-9  # both sides rounded


def test_a_weight_set_outside_the_registry_is_measured_from_its_record(tmp_path):
    """A candidate written by ``anas-zoo finetune --out`` is diagnosed from its .json record: the same figures as
    the registered weights it copies, and a tampered copy is refused."""
    fit_gap = load_benchmark("fit_gap")
    splits = {name: fit_gap.spread(split, 50) for name, split in cifar10_split(load_cifar10()).items()}
    stem = "attentivenas_cifar10_a0.cifar10_ft"
    for suffix in (".json", ".safetensors"):
        shutil.copy(BUNDLED_DIR / f"{stem}{suffix}", tmp_path / f"{stem}{suffix}")
    record = str(tmp_path / f"{stem}.json")
    by_record, by_name = fit_gap.measure(record, splits), fit_gap.measure(stem, splits)
    assert by_record["weights"] == record
    assert {k: v for k, v in by_record.items() if k != "weights"} == {k: v for k, v in by_name.items() if k != "weights"}
    weights = tmp_path / f"{stem}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        fit_gap.measure(record, splits)
