"""A tiny search space and synthetic data so training tests run in seconds on 2 cores."""

from __future__ import annotations

import torch

from anas_zoo.space import SearchSpace, StageSpec, register_space
from anas_zoo.train.config import TrainConfig
from anas_zoo.train.data import TensorLoader

TINY = register_space(
    SearchSpace(
        name="train_tiny",
        resolutions=(8, 12),
        stem_widths=(8,),
        stem_stride=1,
        stages=(
            StageSpec((8,), (1,), (3,), (1,), stride=1, se=False),
            StageSpec((8, 16), (1, 2), (3, 5), (2, 3), stride=2, se=False),
            StageSpec((16,), (1, 2), (3,), (2,), stride=1, se=True),
            StageSpec((16, 24), (1,), (3,), (2,), stride=2, se=False),
            StageSpec((24,), (1, 2), (3, 5), (2,), stride=1, se=True),
            StageSpec((24, 32), (1,), (3,), (2,), stride=1, se=True),
            StageSpec((32,), (1,), (3,), (2,), stride=1, se=True),
        ),
        mix_widths=(32, 48),
        num_classes=4,
    )
)


def synthetic_data(n: int = 96, seed: int = 0) -> dict:
    """Learnable 4-class images (class = brightest quadrant) as a Trainer data dict."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.randint(0, 120, (n, 3, 12, 12), generator=g, dtype=torch.uint8)
    for i, label in enumerate(labels.tolist()):
        r, c = divmod(label, 2)
        images[i, :, r * 6 : r * 6 + 6, c * 6 : c * 6 + 6] += 120
    return {
        "num_classes": 4,
        "train_loader": lambda bs, rank, world: TensorLoader(images, labels, bs, True, seed=seed, rank=rank, world_size=world),
        "calib_loader": lambda: TensorLoader(images, labels, 32, False, shuffle=True),
        "val_loader": lambda: TensorLoader(images, labels, 32, False),
    }


def tiny_config(out_dir, **overrides) -> TrainConfig:
    values = dict(
        space="train_tiny", batch_size=16, epochs=2, lr=0.4, warmup_epochs=0.5, sampler="bestup", k=3,
        rank_subbatch=8, prior_samples=200, out_dir=str(out_dir), resume=None, eval_every=0, calib_batches=2,
        log_every=1, checkpoint_every=1000, progress=False, channels_last=False, threads=1,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)


def params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def tiny_cifar10_checkpoint(path, recipe: dict):
    """A saved 10-class TINY supernet whose classifier gives O(1) logits (so accuracies are not all ties)."""
    from anas_zoo.supernet import SuperNet
    from anas_zoo.train.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = SuperNet(TINY, num_classes=10)
    with torch.no_grad():
        net.classifier.weight.normal_(0, 0.5)
    return save_checkpoint(path, net, state=recipe), net
