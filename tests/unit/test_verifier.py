"""The verifier's reward by value: each part it checks, the share it returns, the length's bounds, whole words only,
and the errors before training. (A generated story scoring 1, and the letter-not-spirit example: test_grpo.py.)"""

import pytest
import torch

from rlhf_course.world import verifier

PROMPT = "Write a happy story about a fox named Lily in the forest."


def _words(n: int) -> str:
    return " ".join(["la"] * n)


@pytest.mark.parametrize("n, length", [(24, 0.0), (25, 1.0), (100, 1.0), (101, 0.0)])
def test_the_length_is_25_to_100_words_both_ends_included(n, length):
    assert verifier.verify_answer(PROMPT, _words(n))["length"] == length


@pytest.mark.parametrize("answer, parts, reward", [
    # name, animal, place, ending, length
    ("Lily the fox sat in the forest. The end.", (1, 1, 1, 1, 0), 4 / 5),
    (_words(30) + " LILY, a Fox, left the FOREST. The end.", (1, 1, 1, 1, 1), 1.0),  # any case
    ("Lily's fox-friend went to the forest!", (1, 1, 1, 0, 0), 3 / 5),  # "Lily's" has the word lily in it
    ("Lilypad saw foxes near forests. The end.", (0, 0, 0, 1, 0), 1 / 5),  # whole words only: no plurals
    ("Tom the cat in the park. The end  ", (0, 0, 0, 0, 0), 0.0),  # "The end" needs its full stop
    ("  " + _words(40) + " The end.\n\n", (0, 0, 0, 1, 1), 2 / 5),  # surrounding white space is ignored
])
def test_each_part_and_the_share_of_parts(answer, parts, reward):
    assert tuple(verifier.verify_answer(PROMPT, answer).values()) == parts
    assert list(verifier.verify_answer(PROMPT, answer)) == list(verifier.VERIFIED_PARTS)
    assert verifier.verifier_reward(PROMPT, answer) == pytest.approx(reward)


def test_verifier_scores_are_one_number_per_answer_in_order():
    prompts = [PROMPT, "Write a sad story about a cat named Tom in the park."]
    answers = ["Lily the fox sat in the forest. The end.", "Tom the cat."]
    scores = verifier.verifier_scores(verifier.verifier_reward, prompts, answers)
    torch.testing.assert_close(scores, torch.tensor([0.8, 0.4]))  # Tom, cat: 2 of 5
    # any callable (prompt, answer) → number; an int is a number too
    assert verifier.verifier_scores(lambda p, a: len(a), prompts, answers).tolist() == [40.0, 12.0]


def test_prompts_the_verifier_cannot_check_are_named():
    verifier.check_verifiable([PROMPT])
    with pytest.raises(ValueError, match="prompt 1 asks for no animal and no place"):
        verifier.check_verifiable([PROMPT, "Write a story about Lily."])
    with pytest.raises(ValueError, match="prompt 0 asks for no name"):
        verifier.check_verifiable(["Write a story about a fox in the forest."])
