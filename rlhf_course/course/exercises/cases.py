"""What several notebooks' exercises build their inputs from. Inputs are small, seeded and built fresh for every
check.
"""

from __future__ import annotations

import torch

from rlhf_course.phases import sft

IGNORE = sft.IGNORE_INDEX


def generator(seed: int) -> torch.Generator:
    """A generator of its own for each case, so that the inputs do not depend on what ran before."""
    return torch.Generator().manual_seed(seed)


def logits_and_ids(seed: int, B: int = 2, T: int = 5, V: int = 7):
    """Random logits (B, T, V) and token ids (B, T)."""
    g = generator(seed)
    return torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g)


def logits_and_labels_cases():
    """Logits and labels of prompt + answer, the prompt and one row's padding labelled IGNORE_INDEX (02.2, 06.2)."""
    cases = []
    for seed in (0, 1):
        logits, ids = logits_and_ids(seed, B=2, T=6)
        labels = ids.clone()
        labels[:, :2] = IGNORE  # the prompt
        labels[1, 5:] = IGNORE  # padding
        cases.append((logits, labels))
    return cases
