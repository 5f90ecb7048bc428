"""TrivialAugment (Müller & Hutter, ICCV 2021), "wide" space, on uint8 image batches.

Each image gets one operation, drawn uniformly from :data:`OPS`, at a strength drawn uniformly from 31 levels (and
a random sign where the operation has one). The draws are plain tensors made up front (:func:`trivial_draws`), so a
loader can draw them from its per-epoch generator and a resumed run augments exactly as the whole run would have.
Geometric operations fill with black, as torchvision's ``TrivialAugmentWide`` does by default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The operations, in draw order; ``trivial_draws`` column 0 indexes this tuple.
OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness", "color", "contrast",
       "sharpness", "posterize", "solarize", "autocontrast", "equalize")
LEVELS = 31  # strength levels 0..30, as in the paper
#: Strength at the top level: shear as tan(angle), translation in pixels, rotation in degrees, enhancement factors
#: as 1 +- this, posterize as bits removed (8 -> 2), solarize as the threshold's distance below 256.
MAX_STRENGTH = {"shear_x": 0.99, "shear_y": 0.99, "translate_x": 32.0, "translate_y": 32.0, "rotate": 135.0,
                "brightness": 0.99, "color": 0.99, "contrast": 0.99, "sharpness": 0.99, "posterize": 6.0,
                "solarize": 256.0}
GRAY = (0.2989, 0.587, 0.114)  # ITU-R 601-2 luma, as PIL's convert("L")


def trivial_draws(n: int, generator: torch.Generator) -> torch.Tensor:
    """n×3 int64 draws: operation index, strength level, sign (+1/-1)."""
    op = torch.randint(0, len(OPS), (n, 1), generator=generator)
    level = torch.randint(0, LEVELS, (n, 1), generator=generator)
    sign = torch.randint(0, 2, (n, 1), generator=generator) * 2 - 1
    return torch.cat([op, level, sign], 1)


def trivial_augment(images: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Apply each row of ``draws`` (:func:`trivial_draws`) to the matching image of a uint8 N×3×H×W batch."""
    out = images.clone()
    for index, name in enumerate(OPS):
        chosen = torch.nonzero(draws[:, 0] == index).flatten()
        if name == "identity" or len(chosen) == 0:
            continue
        strength = draws[chosen, 1].float() / (LEVELS - 1) * MAX_STRENGTH.get(name, 0.0)
        signed = strength * draws[chosen, 2].float()
        out[chosen] = _apply(name, images[chosen], strength, signed)
    return out


def _apply(name: str, images: torch.Tensor, strength: torch.Tensor, signed: torch.Tensor) -> torch.Tensor:
    if name in ("shear_x", "shear_y", "translate_x", "translate_y", "rotate"):
        return _affine(images, _matrices(name, signed, images.shape[-1]))
    x = images.float()
    if name == "brightness":
        return _blend(x, torch.zeros_like(x), 1 + signed)
    if name == "color":
        return _blend(x, _gray(x).expand_as(x), 1 + signed)
    if name == "contrast":
        return _blend(x, _gray(x).mean((1, 2, 3), keepdim=True).round().expand_as(x), 1 + signed)
    if name == "sharpness":
        return _blend(x, _smoothed(x), 1 + signed)
    if name == "posterize":
        drop = strength.round().to(torch.uint8).view(-1, 1, 1, 1)  # low bits cleared: 0..6
        return images >> drop << drop
    if name == "solarize":
        threshold = (256 - strength).view(-1, 1, 1, 1)
        return torch.where(x >= threshold, 255 - images, images)
    if name == "autocontrast":
        low, high = x.amin((2, 3), keepdim=True), x.amax((2, 3), keepdim=True)
        scale = torch.where(high > low, 255 / (high - low).clamp(min=1), torch.ones_like(high))
        return _to_uint8(torch.where(high > low, (x - low) * scale, x))
    return torch.stack([torch.stack([_equalize_channel(c) for c in image]) for image in images])


def _matrices(name: str, signed: torch.Tensor, size: int) -> torch.Tensor:
    """m×2×3 affine maps from output to input positions, in ``affine_grid``'s [-1, 1] coordinates."""
    theta = torch.zeros(len(signed), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    if name == "shear_x":
        theta[:, 0, 1] = signed
    elif name == "shear_y":
        theta[:, 1, 0] = signed
    elif name == "translate_x":
        theta[:, 0, 2] = -2 * signed / size
    elif name == "translate_y":
        theta[:, 1, 2] = -2 * signed / size
    else:
        angle = torch.deg2rad(signed)
        theta[:, 0, 0], theta[:, 0, 1] = torch.cos(angle), -torch.sin(angle)
        theta[:, 1, 0], theta[:, 1, 1] = torch.sin(angle), torch.cos(angle)
    return theta


def _affine(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False).to(torch.uint8)


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * torch.tensor(GRAY).view(1, 3, 1, 1)).sum(1, keepdim=True).round()


def _smoothed(x: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (centre weight 5 of 13) inside the image, the border pixels as they are."""
    kernel = torch.ones(3, 1, 3, 3)
    kernel[:, :, 1, 1] = 5
    inner = F.conv2d(x, kernel / 13, groups=3).round()
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = inner
    return out


def _blend(x: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``other + factor × (x - other)`` per image, clamped: PIL's ImageEnhance."""
    return _to_uint8(other + factor.view(-1, 1, 1, 1) * (x - other))


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return x.round().clamp(0, 255).to(torch.uint8)


def _equalize_channel(channel: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize of one uint8 channel: spread the histogram over 0..255 (unchanged when flat)."""
    histogram = torch.bincount(channel.flatten().long(), minlength=256)
    nonzero = histogram[histogram > 0]
    step = (int(histogram.sum()) - int(nonzero[-1])) // 255
    if step == 0:
        return channel
    lut = ((torch.cumsum(histogram, 0) - histogram + step // 2) // step).clamp(max=255).to(torch.uint8)
    return lut[channel.long()]

