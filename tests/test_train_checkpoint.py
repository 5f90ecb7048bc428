import pytest
import torch
from safetensors import safe_open
from train_helpers import TINY

from anas_zoo.supernet import SuperNet
from anas_zoo.train import checkpoint as ck
from anas_zoo.train.checkpoint import CheckpointError, load_supernet, restore, save_checkpoint


def _trained(seed=0):
    torch.manual_seed(seed)
    model = SuperNet(TINY, 4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_rebuilds_the_supernet_and_restores_optimizer_and_rng(tmp_path):
    model, optimizer = _trained()
    torch.manual_seed(123)
    path = save_checkpoint(tmp_path / "ck.safetensors", model, optimizer, {"step": 7, "nested": {"a": [1, 2]}})
    expected_draw = torch.rand(3)
    with safe_open(path, framework="pt") as f:  # plain safetensors: no pickle anywhere
        assert any(k.startswith("optim.") for k in f.keys())
    rebuilt = load_supernet(path)
    assert rebuilt.space.name == "train_tiny" and rebuilt.num_classes == 4
    for (k, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), k
    other, other_opt = _trained(seed=1)
    assert restore(path, other, other_opt) == {"step": 7, "nested": {"a": [1, 2]}}
    assert torch.equal(torch.rand(3), expected_draw)
    original, restored = optimizer.state_dict()["state"], other_opt.state_dict()["state"]
    assert original.keys() == restored.keys()
    for index, slots in original.items():
        assert torch.equal(slots["momentum_buffer"], restored[index]["momentum_buffer"])


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, optimizer = _trained()
    path = save_checkpoint(tmp_path / "ck.safetensors", model, optimizer, {"step": 1})
    before = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        open(filename, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, optimizer, {"step": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.safetensors"]


def test_foreign_or_missing_files_fail_clearly(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_supernet(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_supernet(junk)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(CheckpointError, match="not an anas_zoo supernet checkpoint"):
        load_supernet(tmp_path / "other.safetensors")


def test_restore_refuses_a_different_space(tmp_path):
    model, optimizer = _trained()
    path = save_checkpoint(tmp_path / "ck.safetensors", model, optimizer)
    with pytest.raises(CheckpointError, match="train_tiny"):
        restore(path, SuperNet(TINY, 3))


def test_slim_checkpoint_keeps_the_supernet_and_recipe_but_cannot_resume(tmp_path):
    model, optimizer = _trained()
    full = save_checkpoint(tmp_path / "full.safetensors", model, optimizer, {"step": 3, "config": {"seed": 1}})
    slim = ck.slim_checkpoint(full, tmp_path / "slim.safetensors")
    assert slim.stat().st_size < full.stat().st_size
    with safe_open(slim, framework="pt") as f:
        assert all(k.startswith("model.") for k in f.keys())
    rebuilt = load_supernet(slim)
    for (k, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        assert torch.equal(a, b), k
    tensors, meta = ck.read_checkpoint(slim)
    assert meta["state"] == {"step": 3, "config": {"seed": 1}} and meta["slim"] is True
    with pytest.raises(CheckpointError, match="no optimizer or RNG state"):
        restore(slim, *_trained(seed=1))


def test_a_float16_slim_checkpoint_rebuilds_the_supernet_rounded_to_float16(tmp_path):
    model, optimizer = _trained()
    full = save_checkpoint(tmp_path / "full.safetensors", model, optimizer, {"step": 3})
    slim = ck.slim_checkpoint(full, tmp_path / "slim.safetensors", dtype="float16")
    tensors, meta = ck.read_checkpoint(slim)
    assert meta["dtype"] == "float16" and meta["state"] == {"step": 3}
    assert {v.dtype for v in tensors.values() if v.is_floating_point()} == {torch.float16}
    rebuilt = load_supernet(slim)
    for (k, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values()):
        expected = a.half().float() if a.is_floating_point() else a
        assert b.dtype == a.dtype and torch.equal(b, expected), k
