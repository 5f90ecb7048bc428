"""Hugging Face Hub downloads: fetch a published repo's weight set and build its model.

Published repos hold ``config.json`` (a weight record in the local store's format) beside the weights,
so :func:`anas_zoo.store.read_weights` verifies a download exactly like a local file. Downloads go
through ``hf_hub_download`` and its cache, so ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_HUB_OFFLINE`` and
``HF_ENDPOINT`` apply as for any Hub library. This module never imports the registry: the registry
(:mod:`anas_zoo.zoo`) calls it for ``hf-hub:`` names and Hub-hosted weight tags.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import httpx2
from huggingface_hub import constants, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError

from anas_zoo.pretrained_cfg import PretrainedCfg
from anas_zoo.space import SearchSpace, StageSpec, get_space
from anas_zoo.static import StaticNet
from anas_zoo.store import WeightsError, load_into, read_record

HUB_PREFIX = "hf-hub:"
CONFIG_FILE = "config.json"
TIMEOUT_ENV = "ANAS_ZOO_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT = 60.0

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
#: A revision is a branch, tag or commit; huggingface_hub writes it into the cache as a path (refs/REVISION), so
#: only plain ref components are allowed: no '..', no leading '.' or '/', no control characters or spaces.
_REVISION_PART = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
MAX_REVISION_LENGTH = 255
#: What a failed Hub request can raise: HTTP errors, missing entries, offline/connection errors.
HUB_ERRORS = (HfHubHTTPError, EntryNotFoundError, HFValidationError, OSError, httpx2.HTTPError)


class HubUnavailableError(WeightsError):
    """A Hub repo that could not be reached or read (offline, no connection, missing repo or file)."""


def _valid_revision(revision: str) -> bool:
    """A git-ref-like revision (``main``, ``v1.0``, ``refs/pr/1``, a 40-hex commit) that stays a path inside the cache."""
    parts = revision.split("/")
    return (len(revision) <= MAX_REVISION_LENGTH and not revision.endswith(".lock") and ".." not in revision
            and all(_REVISION_PART.match(part) for part in parts))


def parse_hub_name(name: str) -> tuple[str, str | None]:
    """``'hf-hub:ORG/REPO@rev'`` (prefix optional) → ``('ORG/REPO', 'rev')``; no ``@rev`` → revision None.

    Both parts become paths in the Hub cache, so anything that could leave it is refused.
    """
    ref = name.removeprefix(HUB_PREFIX)
    repo_id, at, revision = ref.partition("@")
    if not _REPO_ID.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ValueError(f"bad Hub repo {name!r}: expected {HUB_PREFIX}ORG/REPO or {HUB_PREFIX}ORG/REPO@REVISION "
                         "(letters, digits, '_', '-', '.'; no '..' or '--')")
    if at and not _valid_revision(revision):
        raise ValueError(f"bad Hub revision {revision!r} in {name!r}: give a branch, tag or commit made of letters, "
                         "digits, '_', '-', '.' and '/' between parts (no '..', no leading '.' or '/')")
    return repo_id, revision or None


def _where(repo_id: str, revision: str | None, cache_dir) -> str:
    return (f"the Hugging Face Hub repo {repo_id}@{revision or 'main'} at {constants.ENDPOINT} "
            f"(cache {cache_dir or constants.HF_HUB_CACHE})")


def hub_error_reason(error: BaseException) -> str:
    """One line on why a Hub request failed: the offline setting, or the error's first line and its cause."""
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set and the files are not in the cache"
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    cause = error.__cause__
    return f"{text} ({type(cause).__name__}: {cause})" if cause is not None else text


def hub_timeout() -> float:
    """Seconds a whole Hub fetch may take: ``$ANAS_ZOO_HUB_TIMEOUT``, default 60."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_HUB_TIMEOUT
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{TIMEOUT_ENV}={text!r} is not a positive number of seconds")
    return seconds


def _within(seconds: float, work, what: str):
    """``work()``, or :class:`HubUnavailableError` when it has not returned after ``seconds``.

    huggingface_hub's own timeouts bound each socket read, not a request nor a whole download, so a server that
    accepts and never answers (or trickles bytes) would block forever; the work runs in a daemon thread that is
    abandoned when the limit passes.
    """
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = work()
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e

    worker = threading.Thread(target=target, name="anas_zoo-hub-fetch", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise HubUnavailableError(f"{what}: no complete answer within {seconds:g} s (set {TIMEOUT_ENV} to wait longer)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def fetch(name: str, weights: bool = True, cache_dir=None, token=None) -> Path:
    """Path of a published repo's ``config.json`` in the Hub cache, with its weights next to it when ``weights``.

    Both files come from the same commit: the weights are fetched at the commit that served the config.
    The whole fetch must end within :func:`hub_timeout` seconds.
    """
    repo_id, revision = parse_hub_name(name)
    seconds = hub_timeout()

    def download() -> Path:
        try:
            config = Path(hf_hub_download(repo_id, CONFIG_FILE, revision=revision, cache_dir=cache_dir, token=token))
            record = read_record(config)
            if Path(record["file"]).name != record["file"]:
                raise WeightsError(f"{repo_id}/{CONFIG_FILE} names weights '{record['file']}' outside the repo root")
            if weights:
                hf_hub_download(repo_id, record["file"], revision=config.parent.name, cache_dir=cache_dir, token=token)
        except HUB_ERRORS as e:
            raise HubUnavailableError(f"{_where(repo_id, revision, cache_dir)}: {hub_error_reason(e)}") from e
        return config

    return _within(seconds, download, _where(repo_id, revision, cache_dir))


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
    if "num_classes" not in record:
        raise WeightsError(f"{config} has no 'num_classes' field")
    try:
        space = space_of(record)
    except (KeyError, TypeError, ValueError) as e:
        raise WeightsError(f"{config}: 'space_spec' does not describe a search space ({e})") from None
    model = StaticNet(record["genome"], space, record["num_classes"], **kwargs)
    try:
        model.pretrained_cfg = PretrainedCfg.from_record({**record, "hub": name}, hub_id=name.removeprefix(HUB_PREFIX))
    except ValueError as e:
        raise WeightsError(f"{config}: {e}") from None
    if pretrained:
        load_into(model, config)
        model.eval()
    return model
