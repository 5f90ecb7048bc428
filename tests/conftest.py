"""Shared fixtures: deterministic torch, a small thread count (CI has 2 cores), an isolated weight store."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory, monkeypatch):
    """Point the local weight store at a fresh folder so tests never see the user's imported weights."""
    monkeypatch.setenv("ANAS_ZOO_HOME", str(tmp_path_factory.mktemp("anas_zoo_home")))
