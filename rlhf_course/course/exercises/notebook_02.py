"""The exercises of notebook 02 (supervised fine-tuning): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import torch.nn.functional as F

from rlhf_course.course.exercises.cases import IGNORE, logits_and_labels_cases
from rlhf_course.course.exercises.checker import exercise
from rlhf_course.phases import sft


def _mask_cases():
    return [([5, 6, 7], [5, 6, 7, 8, 9, 1], "p"), ([3], [3, 4, 1], "q"), ([2, 2], [2, 2, 2, 1], "r")]


exercise(
    id="02.1", notebook="02_sft", title="the prompt mask",
    task="return {'input_ids': full_ids, 'labels': ...} where labels are full_ids with every prompt token "
         "(the first len(prompt_ids)) replaced by IGNORE_INDEX (−100)",
    reference=sft.mask_prompt,
    cases=_mask_cases,
    mistakes={
        "Nothing was masked: the prompt's tokens must not be trained on (set their labels to IGNORE_INDEX).":
            lambda p, f, _: {"input_ids": f, "labels": list(f)},
        "Off by one: exactly the first len(prompt_ids) labels are IGNORE_INDEX, the answer's first token is kept.":
            lambda p, f, _: {"input_ids": f, "labels": [IGNORE] * (len(p) + 1) + f[len(p) + 1:]},
        "The answer was masked instead of the prompt.":
            lambda p, f, _: {"input_ids": f, "labels": f[: len(p)] + [IGNORE] * (len(f) - len(p))},
    },
)

exercise(
    id="02.2", notebook="02_sft", title="the SFT loss",
    task="return the mean cross-entropy over answer tokens only: logits[:, :-1] predict labels[:, 1:], and "
         "labels equal to IGNORE_INDEX (prompt, padding) are left out of the mean (F.cross_entropy's ignore_index)",
    reference=sft.sft_loss,
    cases=logits_and_labels_cases,
    mistakes={
        "No shift: the logits at position t predict the label at t+1.":
            lambda lo, lab: F.cross_entropy(lo.flatten(0, 1), lab.flatten(), ignore_index=IGNORE),
        "The ignored tokens were averaged in as zeros: the mean is over answer tokens only (ignore_index does it).":
            lambda lo, lab: F.cross_entropy(lo[:, :-1].flatten(0, 1), lab[:, 1:].flatten(), ignore_index=IGNORE,
                                            reduction="sum") / lab[:, 1:].numel(),
        "Summed instead of averaged over the answer tokens.":
            lambda lo, lab: F.cross_entropy(lo[:, :-1].flatten(0, 1), lab[:, 1:].flatten(), ignore_index=IGNORE,
                                            reduction="sum"),
    },
)
