"""The official supernet's state-dict keys against ours: the names both ways, every shape checked.

The official supernet numbers its blocks across stages, nests each layer one level deeper, keeps
``bn_tracking`` buffers and a 1×1 shortcut conv on every block; our :class:`~anas_zoo.supernet.SuperNet`
names blocks by stage and keeps a shortcut conv only where widths can differ. :func:`to_ours` maps a released
state dict onto ours, :func:`to_official` writes ours in the released layout.
"""

from __future__ import annotations

import re
from itertools import accumulate

import torch

from anas_zoo.official.errors import OfficialCheckpointError
from anas_zoo.supernet import SuperNet

_BLOCK_PARTS = {
    "expand": "mobile_inverted_conv.inverted_bottleneck",
    "dw": "mobile_inverted_conv.depth_conv",
    "project": "mobile_inverted_conv.point_linear",
    "shortcut": "shortcut",
}
_OUR_KEY = re.compile(
    r"stem\.(?P<stem>conv|bn)\.(?P<stem_leaf>\w+)"
    r"|stages\.(?P<stage>\d+)\.(?P<index>\d+)\.(?:"
    r"(?P<part>expand|dw|project|shortcut)\.(?P<layer>conv|bn)\.(?P<leaf>\w+)"
    r"|se\.(?P<se>reduce|expand)\.(?P<se_leaf>\w+))"
    r"|head\.expand\.(?P<head>conv|bn)\.(?P<head_leaf>\w+)"
    r"|head\.mix\.weight"
    r"|classifier\.(?P<fc_leaf>\w+)"
)


def _official_name(key: str, block_offsets: list[int]) -> str:
    """The official name of one of our supernet's state-dict keys (without the ``module.`` prefix)."""
    m = _OUR_KEY.fullmatch(key)
    if m is None:
        raise OfficialCheckpointError(f"our supernet key {key!r} has no official counterpart")
    g = m.groupdict()
    if g["stem"]:
        return f"first_conv.{g['stem']}.{g['stem']}.{g['stem_leaf']}"
    if g["stage"]:
        block = f"blocks.{block_offsets[int(g['stage'])] + int(g['index'])}"
        if g["se"]:
            return f"{block}.mobile_inverted_conv.depth_conv.se.fc.{g['se']}.{g['se_leaf']}"
        return f"{block}.{_BLOCK_PARTS[g['part']]}.{g['layer']}.{g['layer']}.{g['leaf']}"
    if g["head"]:
        return f"last_conv.final_expand_layer.{g['head']}.{g['head']}.{g['head_leaf']}"
    if g["fc_leaf"]:
        return f"classifier.linear.linear.{g['fc_leaf']}"
    return "last_conv.feature_mix_layer.conv.conv.weight"


def key_map(supernet: SuperNet) -> dict[str, str]:
    """Our state-dict key → the official key (no ``module.`` prefix), for every key of ``supernet``."""
    offsets = [0, *accumulate(max(stage.depths) for stage in supernet.space.stages)]
    return {key: _official_name(key, offsets) for key in supernet.state_dict()}


def unused_shortcuts(supernet: SuperNet) -> dict[str, tuple[int, ...]]:
    """Official shortcut convs of blocks whose residual is always identity in our supernet, with their shapes.

    The official supernet keeps a 1×1 shortcut conv on every block; ours only where widths can differ.
    """
    plan = supernet.space.plan(supernet.space.max_arch(), supernet.num_classes)
    ours = set(key_map(supernet).values())
    shapes = {}
    for n, block in enumerate(plan.blocks):
        name = f"blocks.{n}.shortcut.conv.conv.weight"
        if name not in ours:
            shapes[name] = (block.c_out, block.c_in, 1, 1)
    return shapes


def _ignored(key: str, unused: dict) -> bool:
    return ".bn_tracking." in key or key.endswith("num_batches_tracked") or key in unused


def to_ours(state: dict[str, torch.Tensor], supernet: SuperNet) -> dict[str, torch.Tensor]:
    """Our state dict from an official one: every non-ignored key consumed, every shape checked.

    Ignored: ``bn_tracking`` buffers, ``num_batches_tracked`` and the shortcut convs of identity blocks
    (see :func:`unused_shortcuts`); BN ``num_batches_tracked`` come back as 0. ``supernet`` only
    provides names and shapes.
    """
    names = key_map(supernet)
    ours_of = {official: ours for ours, official in names.items()}
    unused = unused_shortcuts(supernet)
    target = supernet.state_dict()
    prefixed = all(k.startswith("module.") for k in state)
    result, unexpected = {}, []
    for key, tensor in state.items():
        name = key[len("module."):] if prefixed else key
        if _ignored(name, unused):
            continue
        if name not in ours_of:
            unexpected.append(key)
            continue
        ours = ours_of[name]
        if tensor.shape != target[ours].shape:
            raise OfficialCheckpointError(
                f"shape mismatch for {key}: the checkpoint has {tuple(tensor.shape)}, "
                f"our supernet's {ours} is {tuple(target[ours].shape)}"
            )
        result[ours] = tensor.to(target[ours].dtype)
    prefix = "module." if prefixed else ""
    missing = [prefix + names[k] for k in names if k not in result and not k.endswith("num_batches_tracked")]
    if missing:
        raise OfficialCheckpointError(
            f"the checkpoint lacks {len(missing)} key(s) our supernet needs: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    if unexpected:
        raise OfficialCheckpointError(
            f"the checkpoint has {len(unexpected)} key(s) that map to nothing in our supernet: "
            f"{', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "")
        )
    counters = {k: torch.zeros((), dtype=torch.int64) for k in target if k.endswith("num_batches_tracked")}
    return {**counters, **result}


def to_official(supernet: SuperNet) -> dict[str, torch.Tensor]:
    """The full official layout of ``supernet``'s weights: ``module.`` prefix, ``bn_tracking`` buffers and a
    shortcut conv on every block (zeros where ours is always identity) — what the released file holds."""
    state, weights = {}, supernet.state_dict()
    for ours, official in key_map(supernet).items():
        tensor = weights[ours].detach().clone()
        state[f"module.{official}"] = tensor
        if ours.endswith(".bn.running_mean"):
            module = official[: -len(".bn.running_mean")]
            for j in range(2):
                tracking = f"module.{module}.bn_tracking.{j}"
                state[f"{tracking}.running_mean"] = torch.zeros_like(tensor)
                state[f"{tracking}.running_var"] = torch.ones_like(tensor)
                state[f"{tracking}.num_batches_tracked"] = torch.tensor(0, dtype=torch.int64)
    for name, shape in unused_shortcuts(supernet).items():
        state[f"module.{name}"] = torch.zeros(shape)
    return state
