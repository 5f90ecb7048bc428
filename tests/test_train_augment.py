"""TrivialAugment on uint8 batches: one operation per image as drawn, each doing what its name says, reproducible
from the loader's per-epoch draws (so a resumed run augments as the whole run would have)."""

import pytest
import torch

from anas_zoo.train.augment import LEVELS, OPS, trivial_augment, trivial_draws
from anas_zoo.train.data import TensorLoader, load_cifar10


@pytest.fixture(scope="module")
def images():
    """32 real CIFAR-10 training images."""
    return load_cifar10()["train"][0][::1500][:32].clone()


def _only(op: str, level: int, sign: int, n: int) -> torch.Tensor:
    return torch.tensor([[OPS.index(op), level, sign]] * n)


def test_draws_cover_every_operation_level_and_sign_reproducibly():
    draws = trivial_draws(20000, torch.Generator().manual_seed(0))
    assert draws.dtype == torch.int64 and draws.shape == (20000, 3)
    assert set(draws[:, 0].tolist()) == set(range(len(OPS))) and set(draws[:, 1].tolist()) == set(range(LEVELS))
    assert set(draws[:, 2].tolist()) == {-1, 1}
    assert torch.equal(draws, trivial_draws(20000, torch.Generator().manual_seed(0)))


def test_every_operation_keeps_shape_and_dtype_and_level_zero_changes_nothing(images):
    for op in OPS:
        out = trivial_augment(images, _only(op, LEVELS - 1, 1, len(images)))
        assert out.shape == images.shape and out.dtype == torch.uint8, op
        if op not in ("identity", "autocontrast", "equalize"):  # these two have no strength
            assert torch.equal(trivial_augment(images, _only(op, 0, 1, len(images))), images), op
            assert not torch.equal(out, images), op


def test_operations_do_what_their_names_say(images):
    n = len(images)
    solarized = trivial_augment(images, _only("solarize", LEVELS - 1, 1, n))  # threshold 0: every pixel inverted
    assert torch.equal(solarized, 255 - images)
    posterized = trivial_augment(images, _only("posterize", LEVELS - 1, 1, n))  # 2 bits kept
    assert set(posterized.unique().tolist()) <= {0, 64, 128, 192}
    darker = trivial_augment(images, _only("brightness", LEVELS - 1, -1, n))  # factor 0.01
    assert int(darker.max()) <= 3
    gray = trivial_augment(images, _only("color", LEVELS - 1, -1, n)).int()  # saturation 0.01: channels nearly equal
    assert int((gray.amax(1) - gray.amin(1)).max()) <= 3
    shifted = trivial_augment(images, _only("translate_x", 15, 1, n))  # 16 px to the right, black fill
    assert torch.equal(shifted[..., 16:], images[..., :16]) and int(shifted[..., :16].max()) == 0
    stretched = trivial_augment(images, _only("autocontrast", 0, 1, n))
    assert stretched.amin((2, 3)).max() == 0 and stretched.amax((2, 3)).min() == 255
    equalized = trivial_augment(images, _only("equalize", 0, 1, n))
    assert equalized.amax((2, 3)).min() >= images.amax((2, 3)).min()  # the histogram spread towards 255


def test_each_image_gets_its_own_operation(images):
    draws = trivial_draws(len(images), torch.Generator().manual_seed(1))
    out = trivial_augment(images, draws)
    for i in range(len(images)):
        assert torch.equal(out[i : i + 1], trivial_augment(images[i : i + 1], draws[i : i + 1])), i


def test_the_loader_augments_reproducibly_and_only_when_asked(images):
    labels = torch.arange(len(images)) % 10
    plain, trivial = (TensorLoader(images, labels, 8, train=True, seed=3, trivial_augment=t) for t in (False, True))
    first = [x for x, _ in trivial]
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in TensorLoader(
        images, labels, 8, train=True, seed=3, trivial_augment=True)]))
    assert not all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in plain]))
    resumed = TensorLoader(images, labels, 8, train=True, seed=3, trivial_augment=True)
    resumed.load_state_dict({"epoch": 0, "batch": 2})
    assert all(torch.equal(a, b) for a, b in zip(first[2:], [x for x, _ in resumed]))
