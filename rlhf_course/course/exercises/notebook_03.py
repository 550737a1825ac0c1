"""The exercises of notebook 03 (the reward model): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlhf_course.course.exercises.cases import generator
from rlhf_course.course.exercises.checker import exercise
from rlhf_course.feedback import rankings
from rlhf_course.phases import reward

exercise(
    id="03.1", notebook="03_reward_model", title="Cohen's κ",
    task="return κ = (p_o − p_e) / (1 − p_e): p_o the share of items both annotators labelled the same, p_e "
         "= Σ_c p_a(c)·p_b(c) the agreement expected by chance from each one's own label frequencies",
    reference=rankings.cohens_kappa,
    cases=lambda: [([1, 1, -1, -1], [1, -1, -1, -1]), ([1, 1, 1, -1, 0, 0], [1, 1, -1, -1, 0, 1]),
                   ([1, -1, 1, -1], [-1, 1, -1, 1])],
    mistakes={
        "That is the raw agreement p_o: κ corrects it for the agreement expected by chance.":
            lambda a, b: sum(x == y for x, y in zip(a, b)) / len(a),
        "Chance agreement must use each annotator's own label frequencies, p_a(c)·p_b(c), not p_a(c)².":
            lambda a, b: (lambda po, pe: (po - pe) / (1 - pe))(
                sum(x == y for x, y in zip(a, b)) / len(a), sum((a.count(c) / len(a)) ** 2 for c in set(a) | set(b))),
        "Chance agreement is Σ_c p_a(c)·p_b(c) over the labels, not 1 / (number of labels).":
            lambda a, b: (lambda po, pe: (po - pe) / (1 - pe))(
                sum(x == y for x, y in zip(a, b)) / len(a), 1 / len(set(a) | set(b))),
    },
)

exercise(
    id="03.2", notebook="03_reward_model", title="the pairs a ranking implies",
    task="return every (chosen, rejected) pair of answer indices the ranking implies: a ranking is a list of "
         "groups, best first ([[2], [0, 3], [1]]: 2 best, 0 and 3 tied, 1 worst); each answer beats every answer "
         "in every later group; tied answers give no pair. Keep the order: groups in turn, then answers in a group",
    reference=rankings.ranking_to_pairs,
    cases=lambda: [(["a", "b", "c", "d"], [[2], [0, 3], [1]]), (["a", "b", "c"], [[0], [1], [2]]),
                   (["a", "b", "c", "d"], [[3], [1], [0], [2]])],
    mistakes={
        "Only neighbours: the best answer also beats the worst one, not only the next group (K answers ranked "
        "strictly give K(K−1)/2 pairs).":
            lambda a, rk: [(c, r) for better, worse in zip(rk, rk[1:]) for c in better for r in worse],
        "Chosen and rejected are swapped: the earlier group is the better one.":
            lambda a, rk: [(r, c) for c, r in rankings.ranking_to_pairs(a, rk)],
        "Tied answers were paired: answers in the same group are equally good and give no pair.":
            lambda a, rk: rankings.ranking_to_pairs(a, rk) + [(x, y) for g in rk for x in g for y in g if x != y],
    },
)


def _bt_cases():
    g = generator(3)
    return [(torch.randn(8, generator=g), torch.randn(8, generator=g)),
            (torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 0.5]))]


exercise(
    id="03.3", notebook="03_reward_model", title="the Bradley–Terry loss",
    task="return −mean(log σ(r_chosen − r_rejected)) over the batch (use F.logsigmoid: it is stable where "
         "log(sigmoid(x)) is not)",
    reference=reward.bradley_terry_loss,
    cases=_bt_cases,
    mistakes={
        "The sign is flipped: the loss must fall as the chosen answer's reward rises above the rejected one's.":
            lambda c, r: -F.logsigmoid(r - c).mean(),
        "Without the log: the loss is the negative log-likelihood −log σ(Δ), not −σ(Δ).":
            lambda c, r: -torch.sigmoid(c - r).mean(),
        "Summed instead of averaged over the pairs of the batch.":
            lambda c, r: -F.logsigmoid(c - r).sum(),
    },
)
