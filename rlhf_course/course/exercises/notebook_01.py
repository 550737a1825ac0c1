"""The exercises of notebook 01 (the base model): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import math

import torch.nn.functional as F

from rlhf_course.course.exercises.cases import logits_and_ids
from rlhf_course.course.exercises.checker import exercise
from rlhf_course.engine import training
from rlhf_course.phases import pretrain

exercise(
    id="01.1", notebook="01_base_model", title="the next-token loss",
    task="return the mean cross-entropy of predicting token t+1 from the logits at position t: "
         "F.cross_entropy over logits[:, :-1] and input_ids[:, 1:], flattened to (B·(T−1), V) and (B·(T−1),)",
    reference=pretrain.next_token_loss,
    cases=lambda: [logits_and_ids(0), logits_and_ids(1, B=3, T=4)],
    mistakes={
        "No shift: the logits at position t predict token t+1, not token t (use logits[:, :-1] and "
        "input_ids[:, 1:]).": lambda lo, ids: F.cross_entropy(lo.flatten(0, 1), ids.flatten()),
        "Shifted the wrong way: logits[:, 1:] against input_ids[:, :-1] predicts the past.":
            lambda lo, ids: F.cross_entropy(lo[:, 1:].flatten(0, 1), ids[:, :-1].flatten()),
        "Summed instead of averaged: the loss should be a mean over the B·(T−1) predictions.":
            lambda lo, ids: F.cross_entropy(lo[:, :-1].flatten(0, 1), ids[:, 1:].flatten(), reduction="sum"),
    },
)

exercise(
    id="01.2", notebook="01_base_model", title="warm-up and cosine decay",
    task="return the learning rate at `step`: linear warm-up to max_lr over warmup_steps (step 0 gets "
         "max_lr/warmup_steps), then cosine decay to min_ratio·max_lr at total_steps",
    reference=training.cosine_lr,
    # several schedules, so that a floor, length or warm-up written in as a number instead of read from the
    # arguments is caught: floor 0.1, floor 0 (to 0 at the end), floor ½ with no warm-up at all
    cases=lambda: ([(s, 100, 10, 3e-3, 0.1) for s in (0, 4, 9, 10, 40, 99, 100, 120)]
                   + [(s, 50, 5, 1e-3, 0.0) for s in (0, 4, 5, 27, 50)] + [(s, 20, 0, 1.0, 0.5) for s in (0, 10, 19)]),
    mistakes={
        "No warm-up: the first steps should climb linearly from max_lr/warmup_steps to max_lr.":
            lambda s, t, w, lr, m: lr * (m + (1 - m) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / t)))),
        "The decay ends at 0: it should end at min_ratio · max_lr.":
            lambda s, t, w, lr, m: lr * (s + 1) / w if s < w else lr * 0.5 * (
                1 + math.cos(math.pi * min(1.0, (s - w) / max(1, t - w)))),
        "Off by one in the warm-up: step 0 gets max_lr/warmup_steps, step warmup_steps−1 gets max_lr.":
            lambda s, t, w, lr, m: lr * s / w if s < w else training.cosine_lr(s, t, w, lr, m),
    },
)
