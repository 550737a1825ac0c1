"""The exercises of notebook 07 (GRPO): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import torch

from rlhf_course.course.exercises.cases import generator
from rlhf_course.course.exercises.checker import exercise
from rlhf_course.phases import grpo


def _group_cases():
    g = generator(7)
    rewards = torch.randn(3, 4, generator=g)
    rewards[1] = 0.5  # a group whose answers all scored the same
    return [(rewards,), (torch.randn(2, 6, generator=g) * 2 + 1,)]


exercise(
    id="07.1", notebook="07_grpo", title="the leave-one-out baseline",
    task="rewards is (prompts, K): return each answer's reward minus the mean reward of the other K − 1 answers "
         "to the same prompt (RLOO)",
    reference=grpo.rloo_advantages,
    cases=_group_cases,
    mistakes={
        "Leave the answer itself out: the baseline is the mean of the other K − 1 answers, not of all K.":
            lambda r: r - r.mean(1, keepdim=True),
        "The baseline comes from the same prompt's answers (a row), not from the whole batch.":
            lambda r: r - (r.sum() - r) / (r.numel() - 1),
        "Divide the others' sum by K − 1, their number, not by K.":
            lambda r: r - (r.sum(1, keepdim=True) - r) / r.shape[1],
    },
)

exercise(
    id="07.2", notebook="07_grpo", title="GRPO's group-normalised advantage",
    task="rewards is (prompts, K): return (r − mean) / (std + eps) within each prompt's group, std the sample "
         "standard deviation (K − 1); with normalize_std=False only r − mean (Dr. GRPO)",
    reference=grpo.grpo_advantages,
    cases=lambda: [case + (flag,) for case in _group_cases() for flag in (True, False)],
    mistakes={
        "Mean and std are per group (per row, dim 1), not over the whole batch.":
            lambda r, n=True, eps=1e-4: (r - r.mean()) / ((r.std() + eps) if n else 1),
        "Add eps to the std: a group whose answers all got the same reward has std 0, and must get advantage 0.":
            lambda r, n=True, eps=1e-4: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) if n else 1),
        "With normalize_std=False (Dr. GRPO) do not divide by the std at all.":
            lambda r, n=True, eps=1e-4: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps),
    },
)
