"""Every exercise's check passes the reference and rejects each typical mistake with that mistake's hint."""

import nbformat
import pytest
import torch

from rlhf_course.course import exercises
from rlhf_course.course.exercises import predictions
from rlhf_course.engine import training
from rlhf_course.phases import ppo

CASES = [(ex_id, hint) for ex_id, ex in exercises.EXERCISES.items() for hint in ex.mistakes]


def test_there_are_at_least_fifteen_exercises_each_with_three_mistakes():
    assert len(exercises.EXERCISES) >= 15
    assert all(len(ex.mistakes) >= 3 for ex in exercises.EXERCISES.values())


@pytest.mark.parametrize("ex_id", list(exercises.EXERCISES))
def test_the_reference_passes(ex_id, capsys):
    exercises.check(ex_id, exercises.EXERCISES[ex_id].reference)
    assert f"✓ Exercise {ex_id}" in capsys.readouterr().out


@pytest.mark.parametrize("ex_id, hint", CASES)
def test_each_typical_mistake_fails_with_its_hint(ex_id, hint):
    wrong = exercises.EXERCISES[ex_id].mistakes[hint]
    with pytest.raises(exercises.ExerciseFailed) as failure:
        exercises.check(ex_id, wrong)
    assert hint in str(failure.value)


def test_an_unknown_mistake_gets_what_was_expected_and_a_crash_says_where():
    with pytest.raises(exercises.ExerciseFailed, match="expected"):
        exercises.check("05.2", lambda n: 42.0)
    with pytest.raises(exercises.ExerciseFailed, match="raised ZeroDivisionError"):
        exercises.check("05.2", lambda n: 1 / 0)


def test_a_stub_says_which_exercise_is_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 03.3: write it")

    with pytest.raises(exercises.ExerciseNotDone, match="Exercise 03.3 .*not done yet"):
        exercises.check("03.3", stub)


def test_the_student_edition_stubs_each_solution_and_keeps_the_rest(tmp_path):
    source = ("import torch\n\ndef loss(a, b):\n    \"\"\"doc\"\"\"\n    # BEGIN SOLUTION 03.3\n    x = a - b\n"
              "    return x.mean()\n    # END SOLUTION\n\nexercises.check(\"03.3\", loss)\n")
    stubbed = exercises.stub_solutions(source)
    assert "x = a - b" not in stubbed and "BEGIN SOLUTION" not in stubbed
    assert "    raise NotImplementedError('Exercise 03.3: " in stubbed
    assert stubbed.startswith("import torch\n\ndef loss(a, b):\n    \"\"\"doc\"\"\"\n")
    assert stubbed.endswith("exercises.check(\"03.3\", loss)\n")
    compile(stubbed, "cell", "exec")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nbformat.write(nb, tmp_path / "03_x.ipynb")
    [written] = exercises.student_edition([tmp_path / "03_x.ipynb"], tmp_path / "student")
    assert "NotImplementedError" in nbformat.read(written, as_version=4).cells[0].source


def test_the_books_exercise_page_is_current():
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "book" / "exercises.md"
    assert page.read_text(encoding="utf-8") == exercises.index_markdown(), (
        "book/exercises.md is out of date: python -c \"from rlhf_course.course import exercises; "
        "open('book/exercises.md', 'w').write(exercises.index_markdown())\"")


def test_every_exercise_is_in_its_notebook_with_its_solution_folded_in_the_book():
    from pathlib import Path

    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    for ex in exercises.EXERCISES.values():
        cells = nbformat.read(notebooks / f"{ex.notebook}.ipynb", as_version=4).cells
        [solution] = [c for c in cells if ex.id in exercises.exercises_in(c.source)]
        assert "hide-input" in solution.metadata.get("tags", []), ex.id
        assert any(f'exercises.check("{ex.id}",' in c.source for c in cells), ex.id


def test_a_prediction_is_revealed_from_the_measured_numbers(capsys):
    exercises.ask("05.P")
    assert "b) it rises, then falls" in capsys.readouterr().out
    # reveal prints and returns nothing: a cell that ends on it shows its message and no stray letter
    assert exercises.reveal("05.P", "b", gold_by_n=[0.6, 0.7, 0.65]) is None
    out = capsys.readouterr().out
    assert out.startswith("You were right. The run says b)")
    assert "gold_by_n = [0.600, 0.700, 0.650]" in out and out.count("The run says") == 1
    assert exercises.reveal("04.P", "a", gain=0.11, gain_at_t07=0.05) is None
    assert "You said a. The run says c)" in capsys.readouterr().out
    assert predictions.right_answer("03.P", place_probe=0.45) == "b"
    exercises.reveal("03.P", None, place_probe=0.45)
    assert capsys.readouterr().out.startswith("The run says b)")


# Wrong answers no hint names, which inputs with as many wins as losses, exact ties only, one floor, one β or ε,
# or pre-masked tensors let through: each must now differ from the reference on some input.
def _win_rate_ties_left_out(a, b, t):  # a tie neither wins nor counts: wins / decided prompts
    decided = [(x, y) for x, y in zip(a, b) if abs(x - y) > t]
    return sum(x > y for x, y in decided) / len(decided)


def _gae_inputs_not_masked(rewards, values, mask, gamma, lam):  # bootstraps from a value after the answer's end
    advantages, running = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        running = rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * running
        advantages[:, t] = running
    return advantages * mask, (advantages * mask + values) * mask


WRONG_BUT_UNHINTED = {
    "05.1 ties left out of the denominator": ("05.1", _win_rate_ties_left_out),
    "05.1 ties only where equal (the margin ignored)":
        ("05.1", lambda a, b, t: sum(1.0 if x > y else 0.5 if x == y else 0.0 for x, y in zip(a, b)) / len(a)),
    "05.1 a win is any a > b (the margin on one side only)":
        ("05.1", lambda a, b, t: sum(1.0 if x > y else 0.5 if abs(x - y) <= t else 0.0 for x, y in zip(a, b)) / len(a)),
    "05.1 a difference of exactly the margin is not a tie":
        ("05.1", lambda a, b, t: sum(1.0 if x > y + t else 0.5 if abs(x - y) < t else 0.0 for x, y in zip(a, b))
         / len(a)),
    "01.2 the floor written in as 0.1": ("01.2", lambda s, t, w, lr, m: training.cosine_lr(s, t, w, lr, 0.1)),
    "01.2 the schedule's length and warm-up written in": (
        "01.2", lambda s, t, w, lr, m: training.cosine_lr(s, 100, 10, lr, m)),
    "04.1 β written in as 0.1": ("04.1", lambda lp, ref, s, m, b: ppo.kl_penalty_rewards(lp, ref, s, m, 0.1)),
    "04.2 rewards and values after the end not zeroed": ("04.2", _gae_inputs_not_masked),
    "04.2 returns not masked": ("04.2", lambda r, v, m, g, lam: (lambda a: (a, a + v))(
        ppo.compute_gae(r, v, m, g, lam)[0])),
    "04.4 ε written in as 0.2": ("04.4", lambda lp, old, a, m, e: ppo.ppo_policy_loss(lp, old, a, m, 0.2)),
    "04.5 ε written in as 0.2": ("04.5", lambda v, old, r, m, e: ppo.ppo_value_loss(v, old, r, m, 0.2)),
}


@pytest.mark.parametrize("name", list(WRONG_BUT_UNHINTED))
def test_wrong_answers_no_hint_names_are_still_rejected(name):
    ex_id, wrong = WRONG_BUT_UNHINTED[name]
    ex = exercises.EXERCISES[ex_id]
    assert exercises.diagnose(ex, wrong, ex.cases()) is not None, f"{name} passes the check of {ex_id}"


def test_an_uncatalogued_mistake_gets_feedback_a_student_can_debug_with():
    """The input by name and shape, which output differs and where first, both values at 4 significant digits."""
    reference = exercises.EXERCISES["04.2"].reference

    def returns_without_the_values(rewards, values, mask, gamma, lam):
        advantages, _ = reference(rewards, values, mask, gamma, lam)
        return advantages, advantages

    with pytest.raises(exercises.ExerciseFailed) as failed:
        exercises.check("04.2", returns_without_the_values)
    message = str(failed.value)
    assert "on input 1 of 4, returns differs at [0, 0]: expected 0.9721, got -0.8322" in message
    assert "rewards = tensor of shape (3, 5):" in message and "gamma = 1" in message and "lam = 0.95" in message
    assert "Expected returns: tensor of shape (3, 5):" in message and "Yours: tensor of shape (3, 5):" in message
    assert "0.832170963" not in message  # not 16 digits of a flattened tensor
    with pytest.raises(exercises.ExerciseFailed, match=r"returns has shape \(3, 4\); expected \(3, 5\)"):
        exercises.check("04.2", lambda r, v, m, g, l: (reference(r, v, m, g, l)[0], reference(r, v, m, g, l)[1][:, :4]))
    with pytest.raises(exercises.ExerciseFailed, match=r"the result is 0\.5; expected 0\.6"):
        exercises.check("05.1", lambda scores, baseline, margin: 0.5)
