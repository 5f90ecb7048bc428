"""Hugging Face Hub downloads: fetch a published repo's weight set and build its model.

Published repos hold ``config.json`` (a weight record in the local store's format) beside the weights,
so :func:`anas_zoo.store.load_weights` verifies a download exactly like a local file. Downloads go
through ``hf_hub_download`` and its cache, so ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and
``HF_ENDPOINT`` apply as for any Hub library. This module never imports the registry: the registry
(:mod:`anas_zoo.zoo`) calls it for ``hf-hub:`` names and Hub-hosted weight tags.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx2
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError

from anas_zoo.space import SearchSpace, StageSpec, get_space
from anas_zoo.static import StaticNet
from anas_zoo.store import WeightsError, load_into, read_record

HUB_PREFIX = "hf-hub:"
CONFIG_FILE = "config.json"

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
#: What a failed Hub request can raise: HTTP errors, missing entries, offline/connection errors.
_HUB_ERRORS = (HfHubHTTPError, EntryNotFoundError, HFValidationError, OSError, httpx2.HTTPError)


class HubUnavailableError(WeightsError):
    """A Hub repo that could not be reached or read (offline, no connection, missing repo or file)."""


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """``'hf-hub:ORG/REPO@rev'`` (prefix optional) → ``('ORG/REPO', 'rev')``; no ``@rev`` → revision None."""
    ref = name.removeprefix(HUB_PREFIX)
    repo_id, _, revision = ref.partition("@")
    if not _REPO_ID.match(repo_id) or "@" in revision or (ref.endswith("@") and not revision):
        raise ValueError(f"bad Hub repo '{name}': expected {HUB_PREFIX}ORG/REPO or {HUB_PREFIX}ORG/REPO@REVISION")
    return repo_id, revision or None


def _where(repo_id: str, revision: str | None, cache_dir) -> str:
    return (f"the Hugging Face Hub repo {repo_id}@{revision or 'main'} at {constants.ENDPOINT} "
            f"(cache {cache_dir or constants.HF_HUB_CACHE})")


def _reason(error: BaseException) -> str:
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set and the files are not in the cache"
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    cause = error.__cause__
    return f"{text} ({type(cause).__name__}: {cause})" if cause is not None else text


def fetch(name: str, weights: bool = True, cache_dir=None, token=None) -> Path:
    """Path of a published repo's ``config.json`` in the Hub cache, with its weights next to it when ``weights``.

    Both files come from the same commit: the weights are fetched at the commit that served the config.
    """
    repo_id, revision = parse_hub_name(name)
    try:
        config = Path(hf_hub_download(repo_id, CONFIG_FILE, revision=revision, cache_dir=cache_dir, token=token))
        record = read_record(config)
        if Path(record["file"]).name != record["file"]:
            raise WeightsError(f"{repo_id}/{CONFIG_FILE} names weights '{record['file']}' outside the repo root")
        if weights:
            hf_hub_download(repo_id, record["file"], revision=config.parent.name, cache_dir=cache_dir, token=token)
    except _HUB_ERRORS as e:
        raise HubUnavailableError(f"{_where(repo_id, revision, cache_dir)}: {_reason(e)}") from e
    return config


def space_of(record: dict) -> SearchSpace:
    """The search space a published record was built in: its embedded ``space_spec``, else the registered one."""
    spec = record.get("space_spec")
    if not spec:
        return get_space(record["space"])
    tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "stages"}
    stages = tuple(StageSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
                   for s in spec["stages"])
    return SearchSpace(**tuples, stages=stages)


def load_from_hub(name: str, pretrained: bool = True, cache_dir=None, token=None, **kwargs) -> StaticNet:
    """Build the model of a published repo (``hf-hub:ORG/REPO[@rev]``); with ``pretrained`` its verified weights, eval mode."""
    config = fetch(name, weights=pretrained, cache_dir=cache_dir, token=token)
    record = read_record(config)
    model = StaticNet(record["genome"], space_of(record), record["num_classes"], **kwargs)
    model.pretrained_cfg = {**record, "hub": name}
    if pretrained:
        load_into(model, config)
        model.eval()
    return model
