"""anas_zoo: AttentiveNAS supernets, their A0–A6 style sub-networks, and tools to deploy them.

    >>> import anas_zoo
    >>> anas_zoo.list_models("attentivenas_*")
    >>> model = anas_zoo.load("attentivenas_a0")            # random init; pretrained=True for weights
"""

from anas_zoo import bundled as _bundled  # noqa: F401  (registers the bundled CIFAR-10 family)
from anas_zoo import paper_models as _paper_models  # noqa: F401  (registers the paper models)
from anas_zoo.data_config import DataConfig, create_transform
from anas_zoo.flops import count_macs, count_params
from anas_zoo.pretrained_cfg import PretrainedCfg, resolve_data_config
from anas_zoo.provenance import __version__
from anas_zoo.space import ArchConfig, InvalidArchError, SearchSpace, get_space, list_spaces, register_space
from anas_zoo.static import StaticNet
from anas_zoo.store import WeightsError
from anas_zoo.supernet import SuperNet
from anas_zoo.zoo import UnknownModelError, list_models, load, model_info

__all__ = [
    "__version__",
    "ArchConfig",
    "DataConfig",
    "InvalidArchError",
    "PretrainedCfg",
    "SearchSpace",
    "StaticNet",
    "SuperNet",
    "UnknownModelError",
    "WeightsError",
    "count_macs",
    "count_params",
    "create_transform",
    "get_space",
    "list_models",
    "list_spaces",
    "load",
    "model_info",
    "register_space",
    "resolve_data_config",
]
