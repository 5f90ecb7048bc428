"""The published AttentiveNAS A0–A6 and AlphaNet A5 genomes, with their reported ImageNet figures.

Their weights are the authors' (CC-BY-NC 4.0) and cannot be bundled: ``anas-zoo import-official``
turns the released supernet file into local weight sets that ``load(..., pretrained=True)`` finds.
"""

from __future__ import annotations

from anas_zoo.space import ArchConfig
from anas_zoo.zoo import ModelEntry, WeightSpec, imagenet_preprocessing, register_model

ATTENTIVENAS_PAPER = "AttentiveNAS: Improving Neural Architecture Search via Attentive Sampling (CVPR 2021)"
ALPHANET_PAPER = "AlphaNet: Improved Training of Supernets with Alpha-Divergence (ICML 2021)"
OFFICIAL_LICENSE = "cc-by-nc-4.0"


def _how_to_get(kind: str, filename: str) -> str:
    return (
        f"These are the authors' {kind} weights (CC-BY-NC 4.0, not redistributable): download "
        f"{filename} from the authors' release, then run `anas-zoo import-official {filename} "
        f"--kind {kind} --calib-data /path/to/imagenet/train`."
    )


def _reported(top1: float, macs_m: int) -> dict:
    return {
        "dataset": "imagenet-1k",
        "split": "val",
        "top1": top1,
        "mflops_reported": macs_m,
        "source": "reported",
    }


# name: (res, width, depth, kernel, expand, reported MFLOPs, AttentiveNAS top-1, AlphaNet top-1, MACs, params)
_PAPER_TABLE = {
    "attentivenas_a0": (192, (16, 16, 24, 32, 64, 112, 192, 216, 1792), (1, 3, 3, 3, 3, 3, 1),
                        (3, 3, 3, 3, 3, 3, 3), (1, 4, 4, 4, 4, 6, 6), 203, 77.3, 77.87, 203389568, 8954184),
    "attentivenas_a1": (224, (16, 16, 24, 32, 64, 112, 192, 216, 1984), (1, 3, 3, 3, 3, 3, 1),
                        (3, 3, 3, 5, 3, 5, 3), (1, 4, 4, 4, 4, 6, 6), 279, 78.4, 78.94, 279238816, 9452872),
    "attentivenas_a2": (224, (16, 16, 24, 32, 64, 112, 200, 224, 1984), (1, 3, 3, 3, 3, 4, 1),
                        (3, 3, 3, 3, 3, 5, 3), (1, 4, 5, 4, 4, 6, 6), 317, 78.8, 79.20, 316730080, 11149824),
    "attentivenas_a3": (224, (16, 16, 24, 32, 64, 112, 208, 224, 1984), (2, 3, 3, 4, 3, 5, 1),
                        (3, 3, 3, 5, 3, 3, 3), (1, 4, 4, 4, 4, 6, 6), 357, 79.1, 79.41, 356518400, 12784928),
    "attentivenas_a4": (256, (16, 16, 24, 32, 64, 112, 192, 216, 1984), (1, 3, 3, 4, 3, 5, 1),
                        (3, 3, 3, 5, 3, 5, 3), (1, 4, 4, 5, 4, 6, 6), 444, 79.8, 80.01, 443530752, 11809640),
    "attentivenas_a5": (256, (16, 16, 24, 32, 72, 112, 192, 216, 1792), (1, 3, 3, 3, 4, 6, 1),
                        (3, 3, 3, 5, 3, 3, 3), (1, 4, 5, 4, 4, 6, 6), 491, 80.1, None, 490520064, 12597464),
    "attentivenas_a6": (288, (16, 16, 24, 32, 64, 112, 216, 224, 1984), (1, 3, 3, 4, 4, 6, 1),
                        (3, 3, 3, 3, 3, 5, 3), (1, 4, 6, 5, 4, 6, 6), 709, 80.7, 80.78, 709007232, 15154792),
    "alphanet_a5": (256, (16, 16, 24, 32, 64, 112, 208, 216, 1984), (1, 3, 3, 4, 4, 5, 1),
                    (3, 3, 3, 3, 3, 5, 3), (1, 4, 4, 5, 4, 6, 6), 491, None, 80.29, 491481088, 12970512),
}

ATTENTIVENAS_TAG = "in1k"
ALPHANET_TAG = "alphanet_in1k"


def _register() -> None:
    for name, (res, width, depth, kernel, expand, mflops, top1, alpha_top1, macs, params) in _PAPER_TABLE.items():
        weights = []
        if top1 is not None:
            weights.append(WeightSpec(
                ATTENTIVENAS_TAG, OFFICIAL_LICENSE, (_reported(top1, mflops),),
                _how_to_get("attentivenas", "attentive_nas_pretrained.pth.tar"),
                "AttentiveNAS supernet weights (BestUp-3), ImageNet-1k", kind="imported",
            ))
        if alpha_top1 is not None:
            weights.append(WeightSpec(
                ALPHANET_TAG, OFFICIAL_LICENSE, (_reported(alpha_top1, mflops),),
                _how_to_get("alphanet", "alphanet_pretrained.pth.tar"),
                "AlphaNet supernet weights (alpha-divergence KD), ImageNet-1k", kind="imported",
            ))
        family = "AlphaNet" if name.startswith("alphanet") else "AttentiveNAS"
        register_model(ModelEntry(
            name=name,
            arch=ArchConfig(res, width, depth, kernel, expand),
            space="attentivenas",
            num_classes=1000,
            macs=macs,
            params=params,
            preprocessing=imagenet_preprocessing(res),
            weights=tuple(weights),
            description=f"{family} {name.rsplit('_', 1)[1].upper()} (paper genome, {mflops} MFLOPs, ImageNet-1k)",
            paper=ALPHANET_PAPER if family == "AlphaNet" else ATTENTIVENAS_PAPER,
        ))


_register()
