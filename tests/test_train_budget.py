"""The time-budget plan: how many steps fit, pricing steps and evaluations (no training needed)."""

from anas_zoo.train.budget import steps_within_budget


def test_the_budgeted_length_counts_the_remaining_steps_and_evaluations():
    # 10 s spent at step 10, 1 s a step, 5 s an evaluation (every 20 steps, plus the final one), 100 s budget:
    # ending at 80 costs 10 + 70 + 4 * 5 = 100 s (evaluations at 20, 40, 60 and the end); at 81, 106 s.
    assert steps_within_budget(100, 10, 10, 1.0, 5.0, 20, 1000) == 80
    assert steps_within_budget(100, 10, 10, 1.0, 5.0, None, 1000) == 95
    assert steps_within_budget(100, 10, 10, 1.0, 5.0, 20, 50) == 50
    assert steps_within_budget(100, 200, 10, 1.0, 5.0, 20, 1000) == 10


def test_the_budgeted_length_prices_largest_only_and_sandwich_steps_apart():
    # 10 s spent at step 10; steps up to 20 train the largest alone (1 s), later ones the sandwich (3 s); final
    # evaluation 5 s: ending at 45 costs 10 + 10 + 25 * 3 + 5 = 100 s, at 46 103 s.
    assert steps_within_budget(100, 10, 10, 1.0, 5.0, None, 1000, sandwich_seconds=3.0, sandwich_from=20) == 45
    assert steps_within_budget(100, 10, 10, 1.0, 5.0, None, 1000, sandwich_seconds=3.0, sandwich_from=90) == 91
