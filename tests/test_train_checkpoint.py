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


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # inside the last tensor's bytes: the header stays readable
    path.write_bytes(bytes(data))


def test_a_flipped_byte_is_detected_on_read(tmp_path):
    model, optimizer = _trained()
    path = save_checkpoint(tmp_path / "ck.safetensors", model, optimizer, {"step": 1})
    ck.read_checkpoint(path)
    _flip_last_byte(path)
    with pytest.raises(CheckpointError, match="is damaged: its content does not match the sha256"):
        ck.read_checkpoint(path)
    slim = ck.slim_checkpoint(save_checkpoint(tmp_path / "full.safetensors", model, optimizer), tmp_path / "s.safetensors")
    _flip_last_byte(slim)
    with pytest.raises(CheckpointError, match="is damaged"):
        load_supernet(slim)


def test_restore_falls_back_to_the_previous_checkpoint_when_the_last_is_damaged(tmp_path):
    model, optimizer = _trained()
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model, optimizer, {"step": 1}, keep_previous=True)
    assert not ck.previous_path(path).exists()  # nothing to keep yet
    save_checkpoint(path, model, optimizer, {"step": 2}, keep_previous=True)
    assert ck.read_checkpoint(ck.previous_path(path))[1]["state"] == {"step": 1}
    other, other_opt = _trained(seed=1)
    assert ck.restore_latest(path, other, other_opt) == ({"step": 2}, path, None)
    _flip_last_byte(path)
    state, used, reason = ck.restore_latest(path, other, other_opt)
    assert (state, used) == ({"step": 1}, ck.previous_path(path)) and "is damaged" in reason
    _flip_last_byte(ck.previous_path(path))
    with pytest.raises(CheckpointError, match="last.safetensors is damaged.*previous checkpoint cannot be restored"):
        ck.restore_latest(path, other, other_opt)


def test_temp_files_of_a_killed_write_are_removed_by_the_next_write_but_a_live_ones_are_kept(tmp_path):
    import fcntl
    import os

    model, optimizer = _trained()
    stale, live = tmp_path / ".ck.safetensors.k1ll3d.tmp", tmp_path / ".ck.safetensors.l1ve.tmp"
    stale.write_bytes(b"x" * 1000)
    live.write_bytes(b"y")
    other = tmp_path / ".other.safetensors.k1ll3d.tmp"  # another output's temp file is not this write's business
    other.write_bytes(b"z")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a writer in another process that is still running
    try:
        save_checkpoint(tmp_path / "ck.safetensors", model, optimizer)
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ck.safetensors.l1ve.tmp", ".other.safetensors.k1ll3d.tmp",
                                                          "ck.safetensors"]
