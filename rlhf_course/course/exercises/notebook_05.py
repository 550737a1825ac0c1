"""The exercises of notebook 05 (evaluation): for each, the reference, the inputs it is checked on
and the typical mistakes with the hint each earns. Registered in id order.
"""

from __future__ import annotations

import math

from rlhf_course.course.exercises.checker import exercise
from rlhf_course.phases import evaluation

exercise(
    id="05.1", notebook="05_evaluation", title="the win rate",
    task="return the share of prompts where scores beat baseline_scores (same order) by more than tie_margin, "
         "ties (|a − b| ≤ tie_margin) counting half",
    reference=evaluation.win_rate,
    cases=lambda: [([0.5, 0.7, 0.2, 0.9], [0.4, 0.7, 0.3, 0.9], 1e-9), ([0.1, 0.2, 0.3], [0.1, 0.25, 0.2], 0.01),
                   # more wins than losses (a tie left out of the denominator changes the rate), and ties that
                   # are not equal: +0.005, +0.004 and −0.004 within the margin 0.01, and a difference of exactly
                   # the margin 0.25
                   ([0.9, 0.5, 0.8, 0.1, 0.7], [0.1, 0.5, 0.2, 0.1, 0.9], 1e-9),
                   ([0.300, 0.300, 0.300, 0.5, 0.6], [0.295, 0.296, 0.304, 0.1, 0.2], 0.01),
                   ([0.5, 0.75, 0.5], [0.25, 0.5, 0.0], 0.25)],
    mistakes={
        "Ties count half a win, not nothing.": lambda a, b, t: sum(x > y + t for x, y in zip(a, b)) / len(a),
        "Ties count half a win, not a whole one.": lambda a, b, t: sum(x >= y - t for x, y in zip(a, b)) / len(a),
        "Compare prompt by prompt, not each model's mean.": lambda a, b, t: float(sum(a) > sum(b)),
    },
)

exercise(
    id="05.2", notebook="05_evaluation", title="the KL of best-of-n",
    task="return KL(best-of-n ‖ the sampler) = log n − (n − 1)/n nats (Stiennon et al. 2020)",
    reference=evaluation.best_of_n_kl,
    cases=lambda: [(n,) for n in (1, 2, 4, 16, 128)],
    mistakes={
        "log n alone overestimates it: subtract (n − 1)/n.": lambda n: math.log(n),
        "The sign is flipped: KL is never negative, log n − (n − 1)/n.": lambda n: (n - 1) / n - math.log(n),
        "It is (n − 1)/n that is subtracted, not 1.": lambda n: math.log(n) - 1,
    },
)
