"""The exercises of notebook 06 (DPO): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlhf_course.course.exercises.cases import IGNORE, generator, logits_and_labels_cases
from rlhf_course.course.exercises.checker import exercise
from rlhf_course.engine import generation
from rlhf_course.phases import dpo


def _dpo_cases():
    g = generator(6)
    return [tuple(torch.randn(5, generator=g) * 3 - 20 for _ in range(4)) + (0.1,),
            tuple(torch.randn(3, generator=g) - 10 for _ in range(4)) + (0.5,)]


exercise(
    id="06.1", notebook="06_dpo", title="the DPO loss",
    task="return −mean(log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))])) over the batch: "
         "inputs are summed answer log-probs, chosen (w) and rejected (l)",
    reference=dpo.dpo_loss,
    cases=_dpo_cases,
    mistakes={
        "The reference is missing: DPO compares each answer's log-prob with the reference model's.":
            lambda pc, pr, rc, rr, b: -F.logsigmoid(b * (pc - pr)).mean(),
        "β goes inside the log-sigmoid, scaling the difference of the two margins.":
            lambda pc, pr, rc, rr, b: -b * F.logsigmoid((pc - rc) - (pr - rr)).mean(),
        "The sign is flipped: the chosen answer's margin minus the rejected answer's.":
            lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pr - rr) - (pc - rc))).mean(),
        "Summed over the batch: the loss is the mean over the pairs, so it does not grow with the batch size.":
            lambda pc, pr, rc, rr, b: -F.logsigmoid(b * ((pc - rc) - (pr - rr))).sum(),
    },
)


exercise(
    id="06.2", notebook="06_dpo", title="an answer's log-probability",
    task="return, for each row, the sum over answer tokens of log softmax(logits[:, :-1])[label of the next "
         "token]: targets = labels[:, 1:]; positions whose label is IGNORE_INDEX (prompt, padding) add nothing",
    reference=generation.answer_logprob_sums_from_logits,  # what DPO trains with
    cases=logits_and_labels_cases,
    mistakes={
        "Summed over the prompt and the padding too: only tokens with a label count.":
            lambda lo, lab: torch.log_softmax(lo[:, :-1], -1).gather(2, lab[:, 1:].clamp(min=0)[..., None]).squeeze(2)
            .sum(1),
        "No shift: the logits at position t give the probability of the token at t+1.":
            lambda lo, lab: (torch.log_softmax(lo, -1).gather(2, lab.clamp(min=0)[..., None]).squeeze(2)
                             * (lab != IGNORE)).sum(1),
        "Averaged instead of summed: the probability of a whole answer is the product of its tokens' "
        "probabilities, so log-probs add up.":
            lambda lo, lab: generation.answer_logprob_sums_from_logits(lo, lab) / (lab[:, 1:] != IGNORE).sum(1),
    },
)
