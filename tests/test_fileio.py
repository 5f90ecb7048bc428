"""Outputs of several files: built in a staging folder that killed runs' successors clean up, moved in all or none."""

import fcntl
import os
import threading

import pytest

from anas_zoo.fileio import move_into_place, staging_folder


def test_staging_removes_the_folders_killed_runs_left_but_not_a_live_writers(tmp_path):
    stale, live, other = tmp_path / ".out.k1ll3d.tmp", tmp_path / ".out.l1ve.tmp", tmp_path / ".other.k1ll3d.tmp"
    for folder in (stale, live, other):
        folder.mkdir()
        (folder / "half.safetensors").write_bytes(b"x" * 100)
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a writer in another process that is still running
    try:
        with staging_folder(tmp_path, "out") as work:
            assert work.parent == tmp_path and work.name.startswith(".out.") and work.name.endswith(".tmp")
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, work.name])
            (work / "a.json").write_text("{}")
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name, live.name]  # the block's own folder is gone too


def test_staging_folder_is_removed_when_the_block_fails(tmp_path):
    with pytest.raises(OSError), staging_folder(tmp_path / "new", "out") as work:
        (work / "a.json").write_text("{}")
        raise OSError(28, "No space left on device")
    assert list((tmp_path / "new").iterdir()) == []


def test_moves_land_all_or_none(tmp_path):
    with staging_folder(tmp_path, "set") as work:
        (work / "w.safetensors").write_text("weights")
        (work / "w.json").write_text("record")
        (tmp_path / "w.json").mkdir()  # in the way of the second file
        moves = [(work / "w.safetensors", tmp_path / "w.safetensors"), (work / "w.json", tmp_path / "w.json")]
        with pytest.raises(IsADirectoryError, match="w.json"):
            move_into_place(moves)
        assert not (tmp_path / "w.safetensors").exists() and (work / "w.safetensors").exists()
        (tmp_path / "w.json").rmdir()
        move_into_place(moves)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json", "w.safetensors"]
    assert (tmp_path / "w.json").read_text() == "record"


def test_moves_into_a_staging_folder_do_not_wait_on_its_own_lock(tmp_path):
    """A weight set is staged inside a family's staging folder and moved there: that folder is already held."""
    listed = []

    def nested() -> None:
        with staging_folder(tmp_path, "family") as family, staging_folder(family, "set") as inner:
            (inner / "w.json").write_text("{}")
            move_into_place([(inner / "w.json", family / "w.json")])
            listed.append((family / "w.json").read_text())

    worker = threading.Thread(target=nested, daemon=True)  # a deadlock leaves it blocked, not the test run
    worker.start()
    worker.join(timeout=60)
    assert listed == ["{}"] and list(tmp_path.iterdir()) == []
