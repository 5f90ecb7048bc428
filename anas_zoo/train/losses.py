"""Losses of the sandwich rule: label-smoothed CE (largest subnet), in-place distillation (the others).

The teacher is always the largest subnet's *detached* logits on the same images (T = 1).
``soft_target_ce`` is AttentiveNAS's KD loss; ``alpha_divergence`` is AlphaNet's adaptive one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_smoothing_ce(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Cross-entropy against one-hot labels mixed with ``smoothing`` of the uniform distribution."""
    return F.cross_entropy(logits.float(), target, label_smoothing=smoothing)


def soft_target_ce(logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against the teacher's softmax: -Σ p_teacher · log p_student, batch mean."""
    teacher = F.softmax(teacher_logits.detach().float(), dim=1)
    return -(teacher * F.log_softmax(logits.float(), dim=1)).sum(1).mean()


def _alpha_div(log_p: torch.Tensor, log_q: torch.Tensor, alpha: float, clip: float) -> torch.Tensor:
    """Per-sample D_α(p‖q) = (Σ p^α q^(1−α) − 1) / (α(α−1)), teacher p, student q.

    The value is exact (float64, capped at 1e6 so it stays finite); the gradient is AlphaNet's
    estimator −(1/α) Σ q·w·∇log q with the importance weight w = (p/q)^α clipped at ``clip``, which
    keeps it bounded where the student puts little mass. α → 1 (KL(p‖q)) and α → 0 (KL(q‖p)) use
    their limits, whose gradients are bounded already.
    """
    q = log_q.exp()
    if abs(alpha - 1.0) < 1e-6:
        return (log_p.exp() * (log_p - log_q)).sum(1)
    if abs(alpha) < 1e-6:
        return (q * (log_q - log_p)).sum(1)
    mixed = torch.exp(alpha * log_p.double() + (1.0 - alpha) * log_q.detach().double()).sum(1)
    value = ((mixed - 1.0) / (alpha * (alpha - 1.0))).clamp(0.0, 1e6).to(log_q.dtype)
    weight = torch.exp(alpha * (log_p - log_q)).clamp(max=clip).detach()
    surrogate = -(q.detach() * weight * log_q).sum(1) / alpha
    return value + surrogate - surrogate.detach()


def alpha_divergence(
    logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    alpha_min: float = -1.0,
    alpha_max: float = 1.0,
    clip: float = 5.0,
) -> torch.Tensor:
    """AlphaNet's adaptive α-divergence: per sample the larger of D_{α_min} and D_{α_max}, batch mean.

    Taking the larger divergence penalises both over- and under-estimating the teacher's uncertainty.
    """
    log_p = F.log_softmax(teacher_logits.detach().float(), dim=1)
    log_q = F.log_softmax(logits.float(), dim=1)
    lo = _alpha_div(log_p, log_q, alpha_min, clip)
    hi = _alpha_div(log_p, log_q, alpha_max, clip)
    return torch.maximum(lo, hi).mean()


DISTILLATION_LOSSES = {"kd": soft_target_ce, "alpha": alpha_divergence}


def distillation_loss(name: str):
    """The distillation loss called ``name`` ('kd' or 'alpha')."""
    try:
        return DISTILLATION_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown distillation loss '{name}'; allowed: {sorted(DISTILLATION_LOSSES)}") from None
