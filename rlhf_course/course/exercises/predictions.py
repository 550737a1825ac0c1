"""Predict, then run: a question a notebook asks before an experiment it runs anyway (`ask`), and the answer the
measured numbers prove right after it (`reveal`); the course's four questions are registered here, in the order the
book lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Prediction:
    id: str
    question: str
    choices: dict[str, str]  # letter → answer
    answer: Callable  # the measured numbers → the letter that is right
    why: str  # what the result shows, printed with it


PREDICTIONS: dict[str, Prediction] = {}


def prediction(**fields) -> Prediction:
    item = Prediction(**fields)
    PREDICTIONS[item.id] = item
    return item


def ask(prediction_id: str) -> None:
    """Print the question and its choices; write your letter into the notebook's `my_prediction` before running on."""
    item = PREDICTIONS[prediction_id]
    print(f"Predict, then run ({item.id}): {item.question}")
    for letter, text in item.choices.items():
        print(f"  {letter}) {text}")


def _shown(value) -> str:
    """A measured number as the reveal prints it: floats (alone or in a list) to 3 decimals."""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def right_answer(prediction_id: str, **measured) -> str:
    """The letter of the choice that the measured numbers prove right."""
    return PREDICTIONS[prediction_id].answer(**measured)


def reveal(prediction_id: str, guess: str | None, **measured) -> None:
    """Print which choice the run proved right, against your `guess` (None: no guess), and what it shows.

    Returns nothing, so that a cell ending on `reveal(...)` shows the message once and no stray value after it."""
    item = PREDICTIONS[prediction_id]
    right = right_answer(prediction_id, **measured)
    numbers = ", ".join(f"{k} = {_shown(v)}" for k, v in measured.items())
    verdict = ("" if guess is None else "You were right. " if str(guess).strip().lower() == right
               else f"You said {guess}. ")
    print(f"{verdict}The run says {right}) {item.choices[right]} ({numbers}). {item.why}")


prediction(
    id="03.P", question="The gold annotator cares whether a story is set in the requested place (a tenth of its "
    "score). Shown the same story set in the requested place and set elsewhere, how often will the reward model "
    "prefer the right place?",
    choices={"a": "almost always (more than 80% of pairs)", "b": "about as often as a coin would (40-60%)",
             "c": "mostly the wrong one (less than 40%)"},
    answer=lambda place_probe: "a" if place_probe > 0.8 else "b" if place_probe >= 0.4 else "c",
    why="Checking the place means comparing a word of the answer with a word of the prompt, which this small "
        "model barely learned (even SFT copies the place rarely); a reward model can only reward what it sees.")

prediction(
    id="04.P", question="Sampling at temperature 0.7 instead of 1 avoids many rare mistakes. Compared at 0.7, "
    "will PPO's gain over SFT be larger, about the same (within 0.01), or smaller than at temperature 1?",
    choices={"a": "larger", "b": "about the same", "c": "smaller"},
    answer=lambda gain, gain_at_t07: "a" if gain_at_t07 > gain + 0.01 else "c" if gain_at_t07 < gain - 0.01 else "b",
    why="Part of PPO's gain is only that the policy got surer, which a colder sampler gives SFT for free; what is "
        "left at 0.7 is what PPO learned beyond that.")

prediction(
    id="05.P", question="Best-of-n keeps, of n SFT answers, the one a proxy trained on only 120 pairs likes most. "
    "As n grows from 1 to 64, what happens to the gold score of the pick?",
    choices={"a": "it keeps rising", "b": "it rises, then falls", "c": "it falls from the start"},
    answer=lambda gold_by_n: ("a" if max(range(len(gold_by_n)), key=gold_by_n.__getitem__) == len(gold_by_n) - 1
                              else "c" if max(range(len(gold_by_n)), key=gold_by_n.__getitem__) == 0 else "b"),
    why="The first few picks are better answers; past some n the proxy's favourite is more and more often one of "
        "its mistakes. That is over-optimisation (Gao et al. 2022).")

prediction(
    id="07.P", question="GRPO trained on the verifier alone, which checks the requested name, animal and place, the "
    "ending and the length (half of the gold judge's weight, literally), and nothing else. Its gold score against "
    "GRPO's with the reward model?",
    choices={"a": "higher than with the reward model", "b": "it rises over SFT, but less than with the reward model",
             "c": "it does not rise over SFT (less than +0.01)"},
    answer=lambda gold_gain, reward_model_gain: ("c" if gold_gain < 0.01 else "a" if gold_gain > reward_model_gain
                                                 else "b"),
    why="The verifier rewards what it checks and is blind to the rest: the mood, rudeness, spam and repetition, "
        "which the reward model learned from the rankings. Of what it checks it teaches the habits every answer "
        "shares (the ending, the length), not the words each prompt asks for (compare the animal and place bars); "
        "what it does not check is free to get worse.")
