"""CIFAR-10 decoding/caching/splitting, tensor batches, sharding and the image-folder pipeline, on tiny files."""

import tarfile
import threading

import pytest
import torch
from filelock import FileLock
from PIL import Image

from anas_zoo.train import data as datasets
from anas_zoo.train.data import (
    CIFAR10_CLASSES,
    DataError,
    TensorLoader,
    calibration_loader,
    cifar10_loader,
    cifar10_split,
    cutmix,
    data_dir,
    image_folder_loader,
    load_cifar10,
    random_crop_flip,
)


def make_cifar_folder(root, per_class=2):
    """A CIFAR-10 shaped folder: train/ and test/ with ``per_class`` 32x32 JPEGs per class (colour = class)."""
    for split in ("train", "test"):
        for label, cls in enumerate(CIFAR10_CLASSES):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (label * 25, i * 100, 50)).save(root / split / cls / f"{i:04d}.jpg")
    return root


def test_folder_and_archive_decode_to_the_same_cached_tensors(tmp_path, monkeypatch):
    monkeypatch.setenv("ANAS_ZOO_HOME", str(tmp_path / "home"))  # an empty cache: this test counts its files
    folder = make_cifar_folder(tmp_path / "cifar")
    data = load_cifar10(folder)
    images, labels = data["train"]
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == [i // 2 for i in range(20)]
    assert abs(int(images[4, 0].float().mean()) - 2 * 25) <= 3  # class 2's red channel survived JPEG
    archive = tmp_path / "cifar.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(folder / "train", arcname="train")
        tar.add(folder / "test", arcname="test")
    from_archive = load_cifar10(archive)
    assert torch.equal(from_archive["test"][0], data["test"][0])
    assert len(list(data_dir().glob("cifar10-*.safetensors"))) == 2
    assert torch.equal(load_cifar10(archive)["train"][1], labels)  # cache hit


def test_a_reader_waits_while_another_process_decodes_the_same_source(tmp_path, monkeypatch):
    """DDP ranks and parallel test workers load at once: the second waits on the cache's lock, then reads the file."""
    monkeypatch.setenv("ANAS_ZOO_HOME", str(tmp_path / "home"))
    folder = make_cifar_folder(tmp_path / "cifar")
    cache = data_dir() / f"cifar10-{datasets._source_key(folder)}.safetensors"
    cache.parent.mkdir(parents=True)
    result = {}
    reader = threading.Thread(target=lambda: result.update(load_cifar10(folder)))
    with FileLock(cache.with_name(cache.name + ".lock")):  # another process is decoding
        reader.start()
        reader.join(timeout=2)
        assert reader.is_alive() and not cache.exists() and not result
    reader.join(timeout=60)
    assert not reader.is_alive() and cache.exists() and result["train"][0].shape == (20, 3, 32, 32)


def test_the_data_setting_names_the_source_and_its_absence_says_how_to_set_it(tmp_path, monkeypatch):
    folder = make_cifar_folder(tmp_path / "cifar")
    monkeypatch.setenv("ANAS_ZOO_DATA", str(folder))
    assert torch.equal(load_cifar10()["test"][1], load_cifar10(folder)["test"][1])
    monkeypatch.delenv("ANAS_ZOO_DATA")
    with pytest.raises(DataError, match=r"^no CIFAR-10 data given: pass --data PATH or set ANAS_ZOO_DATA=PATH [^\n]*$"):
        load_cifar10()


def test_missing_or_malformed_data_names_the_path(tmp_path):
    with pytest.raises(DataError, match="nope.*does not exist.*train/<class>/\\*.jpg"):
        load_cifar10(tmp_path / "nope")
    folder = make_cifar_folder(tmp_path / "cifar")
    for f in (folder / "test" / "truck").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="no test images of classes \\['truck'\\]"):
        load_cifar10(folder)
    (folder / "test" / "truck" / "0000.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot decode image .*truck/0000.jpg"):
        load_cifar10(folder)


def test_split_is_deterministic_disjoint_and_class_balanced():
    labels = torch.arange(1000) % 10
    images = torch.arange(1000)[:, None, None, None].expand(1000, 3, 1, 1)
    data = {"train": (images, labels), "test": (images[:5], labels[:5])}
    a, b = cifar10_split(data, 0.1, seed=3), cifar10_split(data, 0.1, seed=3)
    assert torch.equal(a["val"][0], b["val"][0])
    held, kept = set(a["val"][0][:, 0, 0, 0].tolist()), set(a["train"][0][:, 0, 0, 0].tolist())
    assert len(held) == 100 and not held & kept and len(held | kept) == 1000
    assert torch.bincount(a["val"][1]).tolist() == [10] * 10
    assert held != set(cifar10_split(data, 0.1, seed=4)["val"][0][:, 0, 0, 0].tolist())
    with pytest.raises(ValueError, match="holdout_fraction"):
        cifar10_split(data, 1.5)


def test_crop_flip_moves_pixels_as_drawn():
    image = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    same = random_crop_flip(image, torch.tensor([[2, 2, 0]]), padding=2)
    assert torch.equal(same, image)
    flipped = random_crop_flip(image, torch.tensor([[2, 2, 1]]), padding=2)
    assert torch.equal(flipped, image.flip(3))
    shifted = random_crop_flip(image, torch.tensor([[3, 2, 0]]), padding=2)
    assert torch.equal(shifted[0, 0, :3], image[0, 0, 1:]) and shifted[0, 0, 3].sum() == 0


def test_cutmix_pastes_one_box_from_the_permuted_batch_and_reports_the_share_kept():
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()  # image i is all i
    shares = []
    for seed in range(20):
        mixed, order, keep = cutmix(images, torch.Generator().manual_seed(seed))
        assert sorted(order.tolist()) == [0, 1, 2, 3]
        for i in range(4):
            own = mixed[i] == i
            assert torch.equal(own.all(0), own.any(0))  # every channel of a pixel comes from the same image
            pasted = ~own[0]
            if order[i] != i:
                assert abs(own[0].float().mean().item() - keep) < 1e-9
                rows, cols = pasted.any(1).nonzero().flatten(), pasted.any(0).nonzero().flatten()
                if len(rows):  # the pasted pixels fill one box, all from image order[i]
                    box = mixed[i, :, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
                    assert len(rows) * len(cols) == pasted.sum() and (box == order[i]).all()
        again = cutmix(images, torch.Generator().manual_seed(seed))
        assert torch.equal(again[0], mixed) and again[2] == keep
        shares.append(keep)
    assert min(shares) < 0.3 and max(shares) > 0.7  # the box's area is drawn over the whole range


def test_calibration_batches_hold_every_image_once_augmented_as_in_training():
    images = torch.randint(1, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(10)
    batches = list(calibration_loader((images, labels), 4))
    assert [len(y) for _, y in batches] == [4, 4, 2] and sorted(torch.cat([y for _, y in batches]).tolist()) == list(range(10))
    again = list(calibration_loader((images, labels), 4))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))  # fixed draws: every candidate sees the same
    plain = list(cifar10_loader((images, labels), 4, train=False, shuffle=True))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, plain))  # same order as the unaugmented loader ...
    x, plain_x = torch.cat([x for x, _ in batches]), torch.cat([x for x, _ in plain])
    padded = x == x.amin()  # ... with training's zero-padded borders (the images themselves hold no 0)
    assert not torch.equal(x, plain_x) and padded.any() and not (plain_x == x.amin()).any()


def test_loader_resumes_mid_epoch_and_ranks_shard_the_global_batch():
    images = torch.randint(0, 255, (40, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(40)
    whole = TensorLoader(images, labels, 8, seed=5)
    epochs = [[y.tolist() for _, y in whole] for _ in range(2)]
    assert sorted(sum(epochs[0], [])) == list(range(40)) and epochs[0] != epochs[1]
    resumed = TensorLoader(images, labels, 8, seed=5)
    resumed.load_state_dict({"epoch": 1, "batch": 3})
    assert [y.tolist() for _, y in resumed] == epochs[1][3:]
    global_batch = TensorLoader(images, labels, 8, seed=5, resolution=12)
    ranks = [TensorLoader(images, labels, 4, seed=5, rank=r, world_size=2, resolution=12) for r in (0, 1)]
    for (x, y), (x0, _), (x1, y1) in zip(global_batch, *ranks):
        assert x.shape == (8, 3, 12, 12)
        assert torch.equal(x[0::2], x0) and torch.equal(x[1::2], x1) and torch.equal(y[1::2], y1)


def test_image_folder_applies_the_published_eval_and_train_preprocessing(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (300 + 40 * i, 260), (200 if cls == "a" else 10, 90, 40)).save(tmp_path / cls / f"{i}.JPEG")
    (tmp_path / "a" / "notes.txt").write_text("ignored")
    x, y = next(iter(image_folder_loader(tmp_path, 192, False, 6, num_workers=0)))
    assert x.shape == (6, 3, 192, 192) and y.tolist() == [0, 0, 0, 1, 1, 1]
    red = (200 / 255 - 0.485) / 0.229
    assert abs(float(x[0, 0].mean()) - red) < 0.05
    x, y = next(iter(image_folder_loader(tmp_path, 64, True, 4, num_workers=0)))
    assert x.shape == (4, 3, 64, 64)
    with pytest.raises(DataError, match="does not exist"):
        image_folder_loader(tmp_path / "missing", 64, False, 4)
