"""Rewards a program can check (RLVR, notebook 07): the parts of a request that can be verified literally.

A reward model learns what people like from their rankings, and sees only what its training taught it to see
(notebook 03's probes: it barely notices whether the requested animal and place appear). For some parts of a
request no person is needed: a program can check them. DeepSeek-R1 and Tülu 3 train with such rewards (a maths
answer that matches, code whose tests pass). Here the program checks the story's request:

- `name`, `animal`, `place`: the requested word appears in the answer;
- `ending`: the answer ends with "The end.";
- `length`: 25–100 words.

It is not the gold judge: it cannot tell a story from a list of the requested words, or a happy story from a sad
one. A policy trained on it alone learns the letter of the check, and notebook 07 measures what that costs.
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch

from rlhf_course.world import END_SENTENCE, parse_request

VERIFIED_PARTS = ("name", "animal", "place", "ending", "length")
REQUESTED_PARTS = ("name", "animal", "place")  # what a prompt must ask for, for the verifier to check it
Verifier = Callable[[str, str], float]  # (prompt, answer) -> a finite number


def verify_answer(prompt: str, answer: str) -> dict[str, float]:
    """Each checkable part of the request, 1.0 if the answer satisfies it literally, else 0.0."""
    request = parse_request(prompt)
    text = answer.strip()
    words = set(re.findall(r"[a-z]+", text.lower()))
    parts = {part: float(getattr(request, part).lower() in words) for part in REQUESTED_PARTS}
    parts["ending"] = float(text.endswith(END_SENTENCE))
    parts["length"] = float(25 <= len(re.findall(r"[A-Za-z']+", text)) <= 100)
    return parts


def verifier_reward(prompt: str, answer: str) -> float:
    """The verifier's reward in [0, 1]: the share of `VERIFIED_PARTS` the answer satisfies."""
    parts = verify_answer(prompt, answer)
    return sum(parts.values()) / len(parts)


def check_verifiable(prompts: list[str]) -> None:
    """A clear error when a prompt does not ask for what the verifier checks (then it could never score it)."""
    for index, prompt in enumerate(prompts):
        request = parse_request(prompt)
        missing = [part for part in REQUESTED_PARTS if getattr(request, part) is None]
        if missing:
            raise ValueError(f"prompt {index} asks for no {' and no '.join(missing)}, which the verifier checks "
                             f"(train_prompts must name a name, an animal and a place): {prompt[:80]!r}")


def verifier_scores(verifier: Verifier, prompts: list[str], answers: list[str]) -> torch.Tensor:
    """`verifier(prompt, answer)` for each pair as a (B,) float tensor; a non-number or NaN is a clear error."""
    values = []
    for index, (prompt, answer) in enumerate(zip(prompts, answers)):
        value = verifier(prompt, answer)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            name = getattr(verifier, "__name__", repr(verifier))
            raise ValueError(f"the verifier {name} returned {value!r} for answer {index} (prompt {prompt[:60]!r}): "
                             "a verifier must return a finite number for every answer")
        values.append(float(value))
    return torch.tensor(values)
