import math

import pytest
import torch
import torch.nn.functional as F

from anas_zoo.train.losses import alpha_divergence, distillation_loss, label_smoothing_ce, soft_target_ce


def _logits(seed, n=6, c=5, scale=2.0):
    return torch.randn(n, c, generator=torch.Generator().manual_seed(seed)) * scale


def test_label_smoothing_matches_the_mixture_of_one_hot_and_uniform():
    z, y = _logits(0), torch.tensor([0, 1, 2, 3, 4, 0])
    target = F.one_hot(y, 5).float() * 0.9 + 0.1 / 5
    expected = -(target * F.log_softmax(z, 1)).sum(1).mean()
    assert torch.allclose(label_smoothing_ce(z, y, 0.1), expected, atol=1e-6)


def test_soft_target_ce_is_entropy_plus_kl_and_its_gradient_vanishes_at_the_teacher():
    s, t = _logits(1), _logits(2)
    p, log_q = F.softmax(t, 1), F.log_softmax(s, 1)
    kl = (p * (p.log() - log_q)).sum(1).mean()
    entropy = -(p * p.log()).sum(1).mean()
    assert torch.allclose(soft_target_ce(s, t), kl + entropy, atol=1e-6)
    student = t.clone().requires_grad_(True)
    soft_target_ce(student, t).backward()
    assert student.grad.abs().max() < 1e-6


def test_teacher_is_detached():
    t = _logits(3).requires_grad_(True)
    soft_target_ce(_logits(4), t)
    alpha_divergence(_logits(4), t)
    loss = soft_target_ce(_logits(4).requires_grad_(True), t) + alpha_divergence(_logits(4).requires_grad_(True), t)
    loss.backward()
    assert t.grad is None


def test_alpha_divergence_is_zero_at_the_teacher_and_positive_elsewhere():
    t = _logits(5)
    assert alpha_divergence(t.clone(), t).abs() < 1e-6
    assert alpha_divergence(_logits(6), t) > 0.01


def test_alpha_one_limit_is_kl_and_the_adaptive_loss_takes_the_larger_divergence():
    s, t = _logits(7, scale=0.5), _logits(8, scale=0.5)
    p, q = F.softmax(t, 1), F.softmax(s, 1)
    kl_pq = (p * (p.log() - q.log())).sum(1).mean()
    assert torch.allclose(alpha_divergence(s, t, 1.0, 1.0), kl_pq, atol=1e-6)
    near_one = alpha_divergence(s, t, 0.999, 0.999)
    assert math.isclose(float(near_one), float(kl_pq), rel_tol=1e-2)
    lo, hi = alpha_divergence(s, t, -1.0, -1.0), alpha_divergence(s, t, 1.0, 1.0)
    both = alpha_divergence(s, t, -1.0, 1.0)
    assert float(both) >= max(float(lo), float(hi)) - 1e-6


def test_clipping_bounds_the_loss_and_keeps_gradients_finite_for_extreme_logits():
    t = torch.tensor([[30.0, -30.0, 0.0]])
    s = torch.tensor([[-30.0, 30.0, 0.0]], requires_grad=True)
    loss = alpha_divergence(s, t, -1.0, 1.0, clip=5.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    # gradient of -(1/α) Σ q·w·∇log q is bounded by the clipped weight: |∂/∂z| <= 2·clip/|α|
    assert s.grad.abs().max() <= 2 * 5.0 + 1e-4


def test_alpha_divergence_gradient_matches_autograd_of_the_exact_value_without_clipping():
    s, t = _logits(9, scale=0.3).requires_grad_(True), _logits(10, scale=0.3)
    alpha_divergence(s, t, 0.5, 0.5, clip=1e9).backward()
    reference = s.detach().clone().requires_grad_(True)
    p, q = F.softmax(t, 1), F.softmax(reference, 1)
    (((p**0.5 * q**0.5).sum(1) - 1) / (0.5 * -0.5)).mean().backward()
    assert torch.allclose(s.grad, reference.grad, atol=1e-5)


def test_distillation_loss_by_name():
    assert distillation_loss("kd") is soft_target_ce
    assert distillation_loss("alpha") is alpha_divergence
    with pytest.raises(ValueError, match="allowed"):
        distillation_loss("mse")
