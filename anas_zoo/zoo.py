"""The model registry: names, weight tags with their metadata, ``list_models`` and ``load``.

Names follow timm: ``attentivenas_a0`` is an architecture, ``attentivenas_a0.in1k`` one set of
weights for it. Each entry records its MACs and params; a test recomputes them from the genome.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field

from anas_zoo.data_config import DataConfig
from anas_zoo.hub_fetch import HubUnavailableError, fetch, load_from_hub
from anas_zoo.pretrained_cfg import PretrainedCfg
from anas_zoo.space import ArchConfig, get_space
from anas_zoo.static import StaticNet
from anas_zoo.store import WeightsError, find_local, load_into, read_record, search_dirs, verify_weights


class UnknownModelError(ValueError):
    """A model name or weight tag that is not registered."""


@dataclass(frozen=True)
class WeightSpec:
    """One set of weights for an architecture: licence, metrics and how a user obtains it."""

    tag: str
    license: str
    metrics: tuple[dict, ...]
    how_to_get: str
    description: str = ""
    hub_repo: str = ""  # "ORG/REPO[@revision]" that publishes these weights; empty: not on the Hub
    kind: str = ""  # how the weights were made: "supernet" (sliced, no retraining), "finetuned", "imported", ...


@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: genome, space, recorded MACs/params, preprocessing and weight tags."""

    name: str
    arch: ArchConfig
    space: str
    num_classes: int
    macs: int
    params: int
    preprocessing: DataConfig
    weights: tuple[WeightSpec, ...] = ()
    classes: tuple[str, ...] | None = None
    description: str = ""
    paper: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    def weight(self, tag: str | None) -> WeightSpec:
        if not self.weights:
            raise UnknownModelError(f"'{self.name}' has no pretrained weights registered")
        if tag is None:
            return self.weights[0]
        for spec in self.weights:
            if spec.tag == tag:
                return spec
        raise UnknownModelError(
            f"unknown weight tag '{tag}' for '{self.name}'; available: {[w.tag for w in self.weights]}"
        )

    def metadata(self, tag: str | None = None) -> dict:
        """The metadata record of this model (and of weight tag ``tag`` when given)."""
        record = {
            "name": self.name,
            "space": self.space,
            "genome": self.arch.to_dict(),
            "resolution": self.arch.resolution,
            "num_classes": self.num_classes,
            "macs": self.macs,
            "params": self.params,
            "preprocessing": self.preprocessing.to_dict(),
            "classes": list(self.classes) if self.classes else None,
            "description": self.description,
            "paper": self.paper,
        }
        if tag is not None or self.weights:
            spec = self.weight(tag)
            record.update(tag=spec.tag, license=spec.license, metrics=list(spec.metrics), kind=spec.kind)
        return record

    def pretrained_cfg(self, tag: str | None = None) -> PretrainedCfg:
        """The typed config of weight tag ``tag`` (default: the first), or of the bare architecture when it has
        no weights."""
        if not self.weights:
            return PretrainedCfg.from_record(self.metadata())
        return PretrainedCfg.from_record(self.metadata(tag), hub_id=self.weight(tag).hub_repo or None)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add an architecture to the registry (its space must be registered)."""
    get_space(entry.space).validate(entry.arch)
    if entry.name in _REGISTRY and _REGISTRY[entry.name] != entry:
        raise ValueError(f"a different model named '{entry.name}' is already registered")
    _REGISTRY[entry.name] = entry
    return entry


def split_name(name: str) -> tuple[str, str | None]:
    """``'arch.tag'`` → ``('arch', 'tag')``; ``'arch'`` → ``('arch', None)``."""
    arch, _, tag = name.partition(".")
    return arch, tag or None


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name`` (a tag suffix is ignored); unknown names list close matches."""
    arch, _ = split_name(name)
    try:
        return _REGISTRY[arch]
    except KeyError:
        close = difflib.get_close_matches(arch, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model '{name}'{hint} (anas-zoo list shows all {len(_REGISTRY)} models)"
        ) from None


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching a glob; ``pretrained=True`` lists ``name.tag`` for every weight set."""
    names = []
    for entry in sorted(_REGISTRY.values(), key=lambda e: e.name):
        candidates = [f"{entry.name}.{w.tag}" for w in entry.weights] if pretrained else [entry.name]
        names += [n for n in candidates if fnmatch.fnmatch(n, pattern)]
    return names


def find_weights(name: str, tag: str | None = None):
    """Path of the local JSON record for ``name`` (with tag), or None when not present locally."""
    entry = get_entry(name)
    spec = entry.weight(tag or split_name(name)[1])
    return find_local(f"{entry.name}.{spec.tag}")


def resolve_weights(entry: ModelEntry, spec: WeightSpec):
    """JSON record of a weight set, offline first: bundled checkpoints/, the local store, then its Hub repo."""
    stem = f"{entry.name}.{spec.tag}"
    path = find_local(stem)
    if path is not None:
        return path
    hub = "no Hugging Face Hub repo is registered for them"
    if spec.hub_repo:
        try:
            return fetch(spec.hub_repo)
        except HubUnavailableError as e:
            hub = f"not available from {e}"
    looked = ", ".join(str(d) for d in search_dirs())
    raise WeightsError(f"no local weights for '{stem}' (looked in {looked}) and {hub}. {spec.how_to_get}")


def load(
    name: str, pretrained: bool | None = None, num_classes: int | None = None, **kwargs
) -> StaticNet:
    """Build a registered model; ``pretrained=True`` loads its weights strictly and returns it in eval mode.

    ``name`` may carry a weight tag (``attentivenas_a0.in1k``). A ``num_classes`` different from the
    entry's replaces the classifier with a freshly initialised one. ``kwargs`` go to :class:`StaticNet`.
    ``hf-hub:ORG/REPO[@revision]`` loads a published repo, with its weights unless ``pretrained=False``.
    """
    if name.startswith("hf-hub:"):
        model = load_from_hub(name, pretrained=pretrained is not False, **kwargs)
    else:
        entry = get_entry(name)
        _, tag = split_name(name)
        model = StaticNet(entry.arch, entry.space, entry.num_classes, **kwargs)
        model.pretrained_cfg = entry.pretrained_cfg(tag)
        if pretrained:
            load_into(model, resolve_weights(entry, entry.weight(tag)))
            model.eval()
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model


def load_record(json_path) -> StaticNet:
    """The model holding the weight set whose ``.json`` record is at ``json_path``, registered or not (say a
    fine-tuning candidate in a run's output folder), loaded strictly and hash-checked, in eval mode."""
    record = read_record(json_path)
    model = StaticNet(record["genome"], record.get("space", "attentivenas"), record.get("num_classes"))
    load_into(model, json_path)
    return model.eval()


def load_weight_set(weights: str) -> StaticNet:
    """The pretrained model of a weight set given as a registered ``NAME.TAG`` or as the path of its ``.json``
    record (:func:`load_record`), in eval mode: what benchmarks take to compare a candidate with shipped weights."""
    return load_record(weights) if weights.endswith(".json") else load(weights, pretrained=True)


def model_info(name: str) -> dict:
    """Everything known about a model, including which of its weight sets are available locally."""
    entry = get_entry(name)
    tag = split_name(name)[1]
    if tag is not None:
        entry.weight(tag)  # an unknown tag is an error, not silently the architecture's info
    info = entry.metadata()
    info.pop("tag", None)
    info.pop("license", None)
    info.pop("metrics", None)
    info.pop("kind", None)
    info["weights"] = [
        {
            "tag": w.tag,
            "kind": w.kind,
            "license": w.license,
            "metrics": list(w.metrics),
            **_local_state(f"{entry.name}.{w.tag}"),
            "how_to_get": w.how_to_get,
        }
        for w in entry.weights
    ]
    return info


def _local_state(stem: str) -> dict:
    """``available``: weight set ``stem`` is here and verifies; ``corrupted``: why a copy that is here does not."""
    path = find_local(stem)
    if path is None:
        return {"available": False, "corrupted": None}
    try:
        verify_weights(path)
    except WeightsError as e:
        return {"available": False, "corrupted": str(e)}
    return {"available": True, "corrupted": None}

