"""Batches of preference pairs and of texts to score: what the reward model (notebook 03) and DPO (notebook 06) share.

Both learn from the pairs that rankings imply (`{"prompt", "chosen", "rejected"}`). A ranking of K answers gives
K(K−1)/2 pairs but only K distinct answers, so the pairs of one ranking share a batch and each distinct answer goes
through the model once (InstructGPT, Ouyang et al. 2022, §3.5): `ranking_batches`, `distinct_answers`. Scoring many
(prompt, answer) texts after training goes in batches of similar length, so little of each batch is padding:
`scored_by_length`.
"""

from __future__ import annotations

import math

from rlhf_course.engine.training import shuffled_batches


def scored_by_length(prompts: list[str], answers: list[str], batch_size: int, score_rows) -> list[float]:
    """`score_rows(rows) -> scores` called on batches of row indices of similar length (so little of each
    batch is padding); the scores of all (prompt, answer) pairs, in the order given."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(answers[i]))
    scores = [0.0] * len(prompts)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        for i, value in zip(rows, score_rows(rows), strict=True):
            scores[i] = value
    return scores


def group_by_prompt(pairs) -> list[list[int]]:
    """Indices of `pairs` grouped by prompt (the pairs one ranking implies), in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, pair in enumerate(pairs):
        groups.setdefault(pair["prompt"], []).append(i)
    return list(groups.values())


def ranking_batches(pairs, batch_size: int, epochs: float, seed: int = 0):
    """Batches of about `batch_size` pairs made of whole rankings (all pairs of a prompt together), shuffled
    afresh each epoch: `(total_steps, iterator of lists of pairs)`."""
    groups = group_by_prompt(pairs)
    prompts_per_step = max(1, round(batch_size * len(groups) / max(1, len(pairs))))
    total_steps = max(1, round(epochs * math.ceil(len(groups) / prompts_per_step)))
    batches = shuffled_batches(len(groups), prompts_per_step, total_steps, seed)
    return total_steps, ([pairs[i] for g in group_indices for i in groups[g]] for group_indices in batches)


def distinct_answers(batch: list[dict]) -> tuple[list[tuple[str, str]], list[int], list[int]]:
    """The distinct (prompt, answer) texts in a batch of pairs, and where each pair's chosen and rejected
    answers are in that list: `(texts, chosen_index, rejected_index)`."""
    index: dict[tuple[str, str], int] = {}
    chosen_index = [index.setdefault((p["prompt"], p["chosen"]), len(index)) for p in batch]
    rejected_index = [index.setdefault((p["prompt"], p["rejected"]), len(index)) for p in batch]
    return list(index), chosen_index, rejected_index
