"""Time-budget planning: how many steps a run can take and still end within ``time_budget_minutes``.

Kept apart from the trainer as plain arithmetic on measured seconds, so the plan can be tested without
training anything; :class:`~anas_zoo.train.trainer.Trainer` measures the seconds and adopts the plan.
"""

from __future__ import annotations

#: Sandwich steps timed (then undone) to budget a run whose largest subnet first trains alone.
SANDWICH_PROBE_STEPS = 4


def steps_within_budget(budget: float, spent: float, step: int, step_seconds: float, eval_seconds: float,
                        eval_interval: int | None, total_steps: int, sandwich_seconds: float | None = None,
                        sandwich_from: int = 0) -> int:
    """The last step T <= ``total_steps`` (and >= ``step``) at which a run that has spent ``spent`` of ``budget``
    seconds at ``step`` ends in time: its remaining steps (``step_seconds`` each before step ``sandwich_from``,
    where the largest subnet trains alone, ``sandwich_seconds`` from there), the evaluations among them (every
    ``eval_interval`` steps before T) and the final one."""
    planned, cost = step, spent
    for end in range(step + 1, total_steps + 1):
        cost += step_seconds if end <= sandwich_from or sandwich_seconds is None else sandwich_seconds
        evals = 1 + ((end - 1) // eval_interval - step // eval_interval if eval_interval else 0)
        if cost + evals * eval_seconds > budget:
            break
        planned = end
    return planned
