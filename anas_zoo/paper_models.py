"""The published AttentiveNAS A0–A6 and AlphaNet A5 genomes, with their reported ImageNet figures.

Their weights are the authors' (CC-BY-NC 4.0) and cannot be bundled: ``anas-zoo import-official``
turns the released supernet file into local weight sets that ``load(..., pretrained=True)`` finds.
"""

from __future__ import annotations

from dataclasses import dataclass

from anas_zoo.data_config import DataConfig
from anas_zoo.space import ArchConfig
from anas_zoo.zoo import ModelEntry, WeightSpec, register_model

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


@dataclass(frozen=True)
class PaperModel:
    """One published genome and what the papers report for it (a top-1 of None: that paper gives none)."""

    name: str
    arch: ArchConfig
    mflops: int  # the MFLOPs the papers report
    attentivenas_top1: float | None
    alphanet_top1: float | None
    macs: int  # our count of the genome (tests/test_flops.py rounds it to ``mflops``)
    params: int

    @property
    def family(self) -> str:
        return "AlphaNet" if self.name.startswith("alphanet") else "AttentiveNAS"


PAPER_MODELS = (
    PaperModel("attentivenas_a0", ArchConfig(192, (16, 16, 24, 32, 64, 112, 192, 216, 1792), (1, 3, 3, 3, 3, 3, 1),
                                             (3, 3, 3, 3, 3, 3, 3), (1, 4, 4, 4, 4, 6, 6)),
               mflops=203, attentivenas_top1=77.3, alphanet_top1=77.87, macs=203389568, params=8954184),
    PaperModel("attentivenas_a1", ArchConfig(224, (16, 16, 24, 32, 64, 112, 192, 216, 1984), (1, 3, 3, 3, 3, 3, 1),
                                             (3, 3, 3, 5, 3, 5, 3), (1, 4, 4, 4, 4, 6, 6)),
               mflops=279, attentivenas_top1=78.4, alphanet_top1=78.94, macs=279238816, params=9452872),
    PaperModel("attentivenas_a2", ArchConfig(224, (16, 16, 24, 32, 64, 112, 200, 224, 1984), (1, 3, 3, 3, 3, 4, 1),
                                             (3, 3, 3, 3, 3, 5, 3), (1, 4, 5, 4, 4, 6, 6)),
               mflops=317, attentivenas_top1=78.8, alphanet_top1=79.20, macs=316730080, params=11149824),
    PaperModel("attentivenas_a3", ArchConfig(224, (16, 16, 24, 32, 64, 112, 208, 224, 1984), (2, 3, 3, 4, 3, 5, 1),
                                             (3, 3, 3, 5, 3, 3, 3), (1, 4, 4, 4, 4, 6, 6)),
               mflops=357, attentivenas_top1=79.1, alphanet_top1=79.41, macs=356518400, params=12784928),
    PaperModel("attentivenas_a4", ArchConfig(256, (16, 16, 24, 32, 64, 112, 192, 216, 1984), (1, 3, 3, 4, 3, 5, 1),
                                             (3, 3, 3, 5, 3, 5, 3), (1, 4, 4, 5, 4, 6, 6)),
               mflops=444, attentivenas_top1=79.8, alphanet_top1=80.01, macs=443530752, params=11809640),
    PaperModel("attentivenas_a5", ArchConfig(256, (16, 16, 24, 32, 72, 112, 192, 216, 1792), (1, 3, 3, 3, 4, 6, 1),
                                             (3, 3, 3, 5, 3, 3, 3), (1, 4, 5, 4, 4, 6, 6)),
               mflops=491, attentivenas_top1=80.1, alphanet_top1=None, macs=490520064, params=12597464),
    PaperModel("attentivenas_a6", ArchConfig(288, (16, 16, 24, 32, 64, 112, 216, 224, 1984), (1, 3, 3, 4, 4, 6, 1),
                                             (3, 3, 3, 3, 3, 5, 3), (1, 4, 6, 5, 4, 6, 6)),
               mflops=709, attentivenas_top1=80.7, alphanet_top1=80.78, macs=709007232, params=15154792),
    PaperModel("alphanet_a5", ArchConfig(256, (16, 16, 24, 32, 64, 112, 208, 216, 1984), (1, 3, 3, 4, 4, 5, 1),
                                         (3, 3, 3, 3, 3, 5, 3), (1, 4, 4, 5, 4, 6, 6)),
               mflops=491, attentivenas_top1=None, alphanet_top1=80.29, macs=491481088, params=12970512),
)

ATTENTIVENAS_TAG = "in1k"
ALPHANET_TAG = "alphanet_in1k"


def _register() -> None:
    for model in PAPER_MODELS:
        weights = []
        if model.attentivenas_top1 is not None:
            weights.append(WeightSpec(
                ATTENTIVENAS_TAG, OFFICIAL_LICENSE, (_reported(model.attentivenas_top1, model.mflops),),
                _how_to_get("attentivenas", "attentive_nas_pretrained.pth.tar"),
                "AttentiveNAS supernet weights (BestUp-3), ImageNet-1k", kind="imported",
            ))
        if model.alphanet_top1 is not None:
            weights.append(WeightSpec(
                ALPHANET_TAG, OFFICIAL_LICENSE, (_reported(model.alphanet_top1, model.mflops),),
                _how_to_get("alphanet", "alphanet_pretrained.pth.tar"),
                "AlphaNet supernet weights (alpha-divergence KD), ImageNet-1k", kind="imported",
            ))
        register_model(ModelEntry(
            name=model.name,
            arch=model.arch,
            space="attentivenas",
            num_classes=1000,
            macs=model.macs,
            params=model.params,
            preprocessing=DataConfig.imagenet(model.arch.resolution),
            weights=tuple(weights),
            description=(f"{model.family} {model.name.rsplit('_', 1)[1].upper()} (paper genome, {model.mflops} "
                         "MFLOPs, ImageNet-1k)"),
            paper=ALPHANET_PAPER if model.family == "AlphaNet" else ATTENTIVENAS_PAPER,
        ))


_register()
