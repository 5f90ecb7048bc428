"""Shared fixtures: deterministic torch, a small thread count (CI has 2 cores), an isolated weight store,
and the CIFAR-10 archive beside the checkout as ``ANAS_ZOO_DATA`` unless it is set (as the Makefile does).

``make test`` runs the suite in pytest-xdist workers, one per core; each worker's torch then uses one thread,
so the workers share the cores without oversubscribing them."""

import os
from pathlib import Path

import pytest
import torch
from torch import nn

from anas_zoo.supernet import SuperNet
from anas_zoo.train.data import DATA_ENV

os.environ.setdefault(DATA_ENV, str(Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpeg/cifar10-jpeg.tar.xz"))
#: Set in each pytest-xdist worker ("gw0", "gw1", ...); absent in a plain pytest run.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


@pytest.fixture(autouse=True, scope="session")
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(1 if XDIST_WORKER else 2)


@pytest.fixture(scope="session")
def _decoded_data_cache(tmp_path_factory):
    """One decoded-CIFAR-10 cache for the whole run, shared by its xdist workers (``load_cifar10`` locks it, so
    one worker decodes while the others wait): decoding the 60,000-image archive takes longer than most tests,
    and the cache is keyed by the source's identity, so sharing it changes no test's data."""
    root = tmp_path_factory.getbasetemp()
    cache = (root.parent if XDIST_WORKER else root) / "decoded_data"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path_factory, monkeypatch, _decoded_data_cache):
    """Point the local weight store at a fresh folder so tests never see the user's imported weights; its
    decoded-data folder is the run's shared cache."""
    home = tmp_path_factory.mktemp("anas_zoo_home")
    (home / "data").symlink_to(_decoded_data_cache, target_is_directory=True)
    monkeypatch.setenv("ANAS_ZOO_HOME", str(home))


@pytest.fixture(scope="module")
def supernet():
    """An ImageNet-space supernet in eval mode with random weights *and* random BN statistics, so
    parity checks cover the buffers too."""
    torch.manual_seed(0)
    net = SuperNet("attentivenas")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
    return net.eval()
