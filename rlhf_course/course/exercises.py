"""The course's exercises, checked on the spot: you write the function a phase turns on, `check` tells you at once.

Each exercise has an id (`"03.1"`: notebook 03, first exercise), a task, the course's own implementation as the
reference, inputs to try it on, and the typical mistakes, each a wrong implementation with the hint it earns.
`check(id, your_function)` runs yours on every input and compares it with the reference; when it differs and
matches a known mistake, the hint names that mistake (sign flipped, mask forgotten, off-by-one shift, ...).

In the notebooks the solution sits between `# BEGIN SOLUTION` and `# END SOLUTION`; `student_edition` writes
the notebooks with those lines replaced by a stub that raises `NotImplementedError` with the task
(`python -m rlhf_course exercises --out runs/student`). Later notebooks load checkpoints, never your functions,
so an exercise you skip stops only its own notebook.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from rlhf_course.engine import training
from rlhf_course.feedback import rankings
from rlhf_course.phases import dpo, evaluation, grpo, ppo, pretrain, reward, sft

IGNORE = sft.IGNORE_INDEX


class ExerciseNotDone(NotImplementedError):
    """A stub of the student edition was called: the exercise is still to do."""


class ExerciseFailed(AssertionError):
    """Your function gives another result than the reference on one of the inputs."""


@dataclass
class Exercise:
    id: str
    notebook: str  # the notebook's file stem, e.g. "03_reward_model"
    title: str
    task: str  # what to write: the stub's message in the student edition
    reference: Callable
    cases: Callable[[], list[tuple]]  # the inputs, as argument tuples (built fresh for each check)
    mistakes: dict[str, Callable] = field(default_factory=dict)  # hint → a typical wrong implementation
    outputs: tuple[str, ...] = ()  # the names of a tuple result's parts, for the feedback (e.g. advantages, returns)


EXERCISES: dict[str, Exercise] = {}


def exercise(**fields) -> Exercise:
    ex = Exercise(**fields)
    EXERCISES[ex.id] = ex
    return ex


# --------------------------------------------------------------------------------------------------
# Checking
# --------------------------------------------------------------------------------------------------


def _copy(value):
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v) for v in value)
    return value


def same(a, b, tol: float = 1e-5) -> bool:
    """Equal results: tensors of the same shape within `tol`, numbers within `tol`, anything else by `==`."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return False
        return bool(torch.allclose(a.double(), b.double(), atol=tol, rtol=tol, equal_nan=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=tol, abs_tol=tol)
    return a == b


def _show(value, indent: str = "    ") -> str:
    """A value as a student reads it: a tensor with its shape and rows, at 4 significant digits."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.numel() == 0 or value.dim() == 0:
            return f"{value.item():.4g}" if value.numel() == 1 else f"empty tensor of shape {tuple(value.shape)}"
        import numpy as np

        text = np.array2string(value.double().cpu().numpy(), max_line_width=100, threshold=60, edgeitems=3,
                               formatter={"float_kind": lambda x: f"{x:.4g}"})
        return f"tensor of shape {tuple(value.shape)}:\n{indent}" + text.replace("\n", "\n" + indent)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v, indent) for v in value) + ")"
    return repr(value)[:200]


def _first_difference(expected: torch.Tensor, got: torch.Tensor, tol: float = 1e-5) -> str:
    """Where two tensors of one shape first differ: `at [1, 3]: expected 0.4123, got 0.3001`."""
    close = torch.isclose(got.double(), expected.double(), atol=tol, rtol=tol, equal_nan=True)
    where = (~close).nonzero()[0].tolist()
    return (f"at {where}: expected {expected[tuple(where)].item():.4g}, got {got[tuple(where)].item():.4g} "
            f"({int((~close).sum())} of {close.numel()} entries differ)")


def mismatch(ex: Exercise, number: int, cases: list[tuple], expected, got) -> str:
    """What a student can debug with: which input, which output, where it first differs, and the values."""
    parts = [(ex.outputs[i] if i < len(ex.outputs) else f"output {i + 1} of {len(expected)}", e, g)
             for i, (e, g) in enumerate(zip(expected, got))] if isinstance(expected, tuple) and isinstance(got, tuple) \
        and len(expected) == len(got) else [("the result", expected, got)]
    name, e, g = next(part for part in parts if not same(part[2], part[1]))
    scalar = all(isinstance(v, (int, float)) or (isinstance(v, torch.Tensor) and v.dim() == 0) for v in (e, g))
    shown = ""
    if scalar:
        where = f"{name} is {_show(g)}; expected {_show(e)}"
    elif isinstance(e, torch.Tensor) and isinstance(g, torch.Tensor) and e.shape == g.shape:
        where, shown = f"{name} differs {_first_difference(e, g)}", "\n".join(
            [f"Expected {name}: {_show(e)}", f"Your {name}: {_show(g)}"])
    elif isinstance(e, torch.Tensor) and isinstance(g, torch.Tensor):
        where = f"{name} has shape {tuple(g.shape)}; expected {tuple(e.shape)}"
    else:
        where, shown = f"{name} differs", f"Expected: {_show(e)}\nYours:    {_show(g)}"
    names = list(inspect.signature(ex.reference).parameters)
    inputs = "\n".join(f"  {names[i] if i < len(names) else f'argument {i + 1}'} = {_show(arg)}"
                       for i, arg in enumerate(cases[number - 1]))
    return f"on input {number} of {len(cases)}, {where}.\nThe input:\n{inputs}" + (f"\n{shown}" if shown else "")


def diagnose(ex: Exercise, student: Callable, cases: list[tuple]) -> str | None:
    """None when `student` agrees with the reference on every case; else what is wrong, as precisely as known."""
    for number, args in enumerate(cases, 1):
        expected = ex.reference(*_copy(args))
        try:
            got = student(*_copy(args))
        except NotImplementedError:
            raise
        except Exception as error:  # the student's code crashed: say where, not a traceback into this module
            return f"on input {number} your function raised {type(error).__name__}: {error}"
        if isinstance(got, torch.Tensor):
            got = got.detach()
        if isinstance(got, tuple):
            got = tuple(g.detach() if isinstance(g, torch.Tensor) else g for g in got)
        if same(got, expected):
            continue
        for hint, wrong in ex.mistakes.items():
            try:
                if same(got, wrong(*_copy(args))):
                    return hint
            except Exception:
                continue
        return mismatch(ex, number, cases, expected, got)
    return None


def check(exercise_id: str, student: Callable) -> None:
    """Check your function for exercise `exercise_id`: a line saying it is right, or `ExerciseFailed` with a hint
    (or `ExerciseNotDone` while it is the student edition's stub)."""
    ex = EXERCISES[exercise_id]
    cases = ex.cases()
    try:
        problem = diagnose(ex, student, cases)
    except NotImplementedError:
        raise ExerciseNotDone(f"Exercise {ex.id} ({ex.title}) is not done yet: {ex.task}") from None
    if problem:
        raise ExerciseFailed(f"Exercise {ex.id} ({ex.title}): not yet. {problem}")
    print(f"✓ Exercise {ex.id} ({ex.title}): right on all {len(cases)} inputs.")


# --------------------------------------------------------------------------------------------------
# The student edition
# --------------------------------------------------------------------------------------------------

SOLUTION = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION (?P<id>\d\d\.\d+)\n.*?^[ \t]*# END SOLUTION\n?",
                      re.MULTILINE | re.DOTALL)


def stub_solutions(source: str) -> str:
    """A code cell's source with every solution region replaced by a stub raising the exercise's task."""

    def stub(match: re.Match) -> str:
        ex = EXERCISES[match["id"]]
        message = f"Exercise {ex.id}: {ex.task}"
        return f"{match['indent']}raise NotImplementedError({message!r})\n"

    return SOLUTION.sub(stub, source)


def student_edition(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student edition of `notebooks` into `out`: every solution stubbed, outputs cleared."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = stub_solutions(cell.source)
                cell.outputs, cell.execution_count = [], None
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


def exercises_in(source: str) -> list[str]:
    """The ids of the solution regions in a notebook cell's source."""
    return [m["id"] for m in SOLUTION.finditer(source)]


# --------------------------------------------------------------------------------------------------
# The exercises, by notebook. Inputs are small, seeded and built fresh for every check.
# --------------------------------------------------------------------------------------------------


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _logits_and_ids(seed: int, B: int = 2, T: int = 5, V: int = 7):
    g = _gen(seed)
    return torch.randn(B, T, V, generator=g), torch.randint(0, V, (B, T), generator=g)


# ---- 01: the base model --------------------------------------------------------------------------

exercise(
    id="01.1", notebook="01_base_model", title="the next-token loss",
    task="return the mean cross-entropy of predicting token t+1 from the logits at position t: "
         "F.cross_entropy over logits[:, :-1] and input_ids[:, 1:], flattened to (B·(T−1), V) and (B·(T−1),)",
    reference=pretrain.next_token_loss,
    cases=lambda: [_logits_and_ids(0), _logits_and_ids(1, B=3, T=4)],
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

# ---- 02: supervised fine-tuning ------------------------------------------------------------------


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


def _sft_cases():
    cases = []
    for seed in (0, 1):
        logits, ids = _logits_and_ids(seed, B=2, T=6)
        labels = ids.clone()
        labels[:, :2] = IGNORE  # the prompt
        labels[1, 5:] = IGNORE  # padding
        cases.append((logits, labels))
    return cases


exercise(
    id="02.2", notebook="02_sft", title="the SFT loss",
    task="return the mean cross-entropy over answer tokens only: logits[:, :-1] predict labels[:, 1:], and "
         "labels equal to IGNORE_INDEX (prompt, padding) are left out of the mean (F.cross_entropy's ignore_index)",
    reference=sft.sft_loss,
    cases=_sft_cases,
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

# ---- 03: the reward model ------------------------------------------------------------------------


def _bt_cases():
    g = _gen(3)
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

# ---- 04: PPO -------------------------------------------------------------------------------------


def _ppo_tensors(seed: int):
    g = _gen(seed)
    mask = torch.tensor([[1.0, 1, 1, 1, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])
    logprobs = -torch.rand(3, 5, generator=g) * mask
    ref_logprobs = -torch.rand(3, 5, generator=g) * mask
    return logprobs, ref_logprobs, mask, g


def _kl_cases():
    cases = []
    for seed in (0, 1):
        _, _, mask, g = _ppo_tensors(seed)
        # log-probs after the answer's end are whatever the caller left there: they must not count
        logprobs, ref = -torch.rand(3, 5, generator=g), -torch.rand(3, 5, generator=g)
        cases.append((logprobs, ref, torch.randn(3, generator=g), mask, 0.1 if seed == 0 else 0.3))
    return cases


def _last_index(mask):
    return mask.sum(1).long() - 1


exercise(
    id="04.1", notebook="04_ppo", title="the per-token reward with its KL penalty",
    task="return (rewards, kl): kl = (logprobs − ref_logprobs)·mask per token; rewards = −kl_coef·kl, plus each "
         "answer's score added on its last answer token (index mask.sum(1) − 1)",
    reference=ppo.kl_penalty_rewards,
    cases=_kl_cases,
    outputs=("rewards", "kl"),
    mistakes={
        "The score goes on the last answer token (mask.sum(1) − 1), not the first.":
            lambda lp, ref, s, m, b: (lambda kl: (torch.cat([(-b * kl)[:, :1] + s[:, None], (-b * kl)[:, 1:]], 1),
                                                  kl))((lp - ref) * m),
        "The KL's sign is flipped: tokens the policy made more likely than the reference pay the penalty "
        "(log π − log π_ref).":
            lambda lp, ref, s, m, b: (lambda kl: ((b * kl).index_put((torch.arange(3), _last_index(m)), s,
                                                                     accumulate=True), -kl))((lp - ref) * m),
        "The KL is not masked: positions after the answer's end must get no penalty.":
            lambda lp, ref, s, m, b: (lambda kl: ((-b * kl).index_put((torch.arange(3), _last_index(m)), s,
                                                                      accumulate=True), kl))(lp - ref),
    },
)


def _gae_cases():
    cases = []
    for seed, (gamma, lam) in zip((0, 1, 2), ((1.0, 0.95), (0.9, 0.8), (1.0, 1.0))):
        _, _, mask, g = _ppo_tensors(seed)
        cases.append((torch.randn(3, 5, generator=g) * mask, torch.randn(3, 5, generator=g) * mask, mask, gamma, lam))
    # rewards and values not zeroed after the answer's end: they must count as 0 (no bootstrap from past the end)
    _, _, mask, g = _ppo_tensors(3)
    cases.append((torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g), mask, 0.9, 0.95))
    return cases


def _gae_without(bootstrap: bool = True, lam_in_recursion: bool = True, backwards: bool = True,
                 next_value_is_current: bool = False, gamma_in_recursion: bool = True):
    """GAE with one typical mistake: no bootstrap value, γ instead of γλ, λ instead of γλ, the value of this
    token where the next one's belongs, or the recursion run forwards."""
    def gae(rewards, values, mask, gamma, lam):
        advantages, running = torch.zeros_like(rewards), torch.zeros_like(rewards[:, 0])
        steps = range(rewards.shape[1])
        for t in reversed(steps) if backwards else steps:
            next_value = values[:, t + 1] if t + 1 < rewards.shape[1] and bootstrap else torch.zeros_like(running)
            if next_value_is_current:
                next_value = values[:, t]
            delta = rewards[:, t] + gamma * next_value - values[:, t]
            decay = (gamma if gamma_in_recursion else 1.0) * (lam if lam_in_recursion else 1.0)
            running = delta + decay * running
            advantages[:, t] = running
        return advantages * mask, (advantages * mask + values) * mask
    return gae


exercise(
    id="04.2", notebook="04_ppo", title="generalised advantage estimation",
    task="return (advantages, returns): backwards over t, δ_t = r_t + γ·V_{t+1} − V_t (V after the last column "
         "is 0) and A_t = δ_t + γλ·A_{t+1}; rewards and values outside the mask count as 0, advantages are masked, "
         "returns = (A + V)·mask",
    reference=ppo.compute_gae,
    cases=_gae_cases,
    mistakes={
        "No bootstrap: δ_t needs the next state's value, r_t + γ·V_{t+1} − V_t.": _gae_without(bootstrap=False),
        "The recursion needs γλ: A_t = δ_t + γλ·A_{t+1} (with only γ it is the Monte-Carlo return, λ = 1).":
            _gae_without(lam_in_recursion=False),
        "The recursion runs backwards, from the last token to the first: A_t depends on A_{t+1}.":
            _gae_without(backwards=False),
        "δ_t needs the value of the next token, V_{t+1} (values[:, t + 1]), not of this one.":
            _gae_without(next_value_is_current=True),
        "The recursion needs γλ, not λ alone: A_t = δ_t + γλ·A_{t+1} (the two agree only when γ = 1).":
            _gae_without(gamma_in_recursion=False),
    },
    outputs=("advantages", "returns"),
)


def _whiten_cases():
    cases = []
    for seed in (0, 1):
        _, _, mask, g = _ppo_tensors(seed)
        cases.append((torch.randn(3, 5, generator=g) * 2 + 1, mask))
    return cases


exercise(
    id="04.3", notebook="04_ppo", title="whitening the advantages",
    task="return (x − mean)/√(var + 1e-8) where mean and variance are taken over the masked entries only, and "
         "masked-out entries are 0 in the result",
    reference=ppo.masked_whiten,
    cases=_whiten_cases,
    mistakes={
        "The mean and variance must come from the masked entries only, not from the padding too.":
            lambda x, m: (x - x.mean()) * torch.rsqrt(x.var(unbiased=False) + 1e-8) * m,
        "Masked-out entries must be 0 in the result (multiply by the mask at the end).":
            lambda x, m: (x - ppo.masked_mean(x, m)) * torch.rsqrt(ppo.masked_mean((x - ppo.masked_mean(x, m)) ** 2,
                                                                                  m) + 1e-8),
        "Divide by the standard deviation (the square root of the variance), not by the variance.":
            lambda x, m: (x - ppo.masked_mean(x, m)) / (ppo.masked_mean((x - ppo.masked_mean(x, m)) ** 2, m) + 1e-8)
            * m,
    },
)


def _policy_loss_cases():
    cases = []
    for seed in (0, 1):
        logprobs, old, mask, g = _ppo_tensors(seed)
        cases.append((logprobs, old, torch.randn(3, 5, generator=g), mask, 0.2 if seed == 0 else 0.1))
    return cases


exercise(
    id="04.4", notebook="04_ppo", title="the clipped policy loss",
    task="with ρ = exp(logprobs − old_logprobs), return the masked mean over answer tokens of "
         "max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε))",
    reference=ppo.ppo_policy_loss,
    cases=_policy_loss_cases,
    mistakes={
        "No clipping: PPO limits how far one update can move ρ, clip(ρ, 1 − ε, 1 + ε).":
            lambda lp, old, a, m, e: ppo.masked_mean(-a * torch.exp(lp - old), m),
        "min instead of max: as a loss to minimise, PPO takes the pessimistic (larger) of the two terms.":
            lambda lp, old, a, m, e: ppo.masked_mean(torch.minimum(-a * torch.exp(lp - old), -a * torch.clamp(
                torch.exp(lp - old), 1 - e, 1 + e)), m),
        "The mean must be over answer tokens only (the mask), not over the padding too.":
            lambda lp, old, a, m, e: torch.maximum(-a * torch.exp(lp - old),
                                                   -a * torch.clamp(torch.exp(lp - old), 1 - e, 1 + e)).mean(),
    },
)


def _value_loss_cases():
    cases = []
    for seed in (2, 3):
        _, _, mask, g = _ppo_tensors(seed)
        old = torch.randn(3, 5, generator=g)
        cases.append((old + 0.5 * torch.randn(3, 5, generator=g), old, torch.randn(3, 5, generator=g), mask,
                      0.2 if seed == 2 else 0.3))
    return cases


exercise(
    id="04.5", notebook="04_ppo", title="the clipped value loss",
    task="with V_clip = old_values + clip(values − old_values, −ε, ε), return ½ · the masked mean of "
         "max((V − R)², (V_clip − R)²)",
    reference=ppo.ppo_value_loss,
    cases=_value_loss_cases,
    mistakes={
        "No clipping: the value may move at most ε from its old value, V_clip = V_old + clip(V − V_old, −ε, ε).":
            lambda v, old, r, m, e: 0.5 * ppo.masked_mean((v - r) ** 2, m),
        "min instead of max: the clipped value loss takes the larger of the two squared errors.":
            lambda v, old, r, m, e: 0.5 * ppo.masked_mean(torch.minimum(
                (v - r) ** 2, (old + torch.clamp(v - old, -e, e) - r) ** 2), m),
        "The factor ½ is missing.":
            lambda v, old, r, m, e: ppo.masked_mean(torch.maximum(
                (v - r) ** 2, (old + torch.clamp(v - old, -e, e) - r) ** 2), m),
    },
)

# ---- 05: evaluation ------------------------------------------------------------------------------

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

# ---- 06: DPO -------------------------------------------------------------------------------------


def _dpo_cases():
    g = _gen(6)
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


def summed_answer_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ_t log π(y_t | x, y_<t) over answer tokens (labels ≠ IGNORE_INDEX): (B,), from logits (B, T, V) of
    right-padded prompt + answer (how `dpo.answer_logprobs` sums what `generation.answer_logprobs` gives)."""
    targets = labels[:, 1:]
    token_logprobs = torch.log_softmax(logits[:, :-1].float(), -1).gather(2, targets.clamp(min=0)[..., None]).squeeze(2)
    return (token_logprobs * (targets != IGNORE)).sum(1)


exercise(
    id="06.2", notebook="06_dpo", title="an answer's log-probability",
    task="return, for each row, the sum over answer tokens of log softmax(logits[:, :-1])[label of the next "
         "token]: targets = labels[:, 1:]; positions whose label is IGNORE_INDEX (prompt, padding) add nothing",
    reference=summed_answer_logprobs,
    cases=_sft_cases,
    mistakes={
        "Summed over the prompt and the padding too: only tokens with a label count.":
            lambda lo, lab: torch.log_softmax(lo[:, :-1], -1).gather(2, lab[:, 1:].clamp(min=0)[..., None]).squeeze(2)
            .sum(1),
        "No shift: the logits at position t give the probability of the token at t+1.":
            lambda lo, lab: (torch.log_softmax(lo, -1).gather(2, lab.clamp(min=0)[..., None]).squeeze(2)
                             * (lab != IGNORE)).sum(1),
        "Averaged instead of summed: the probability of a whole answer is the product of its tokens' "
        "probabilities, so log-probs add up.":
            lambda lo, lab: summed_answer_logprobs(lo, lab) / (lab[:, 1:] != IGNORE).sum(1),
    },
)


# ---- 07: GRPO ------------------------------------------------------------------------------------


def _group_cases():
    g = _gen(7)
    rewards = torch.randn(3, 4, generator=g)
    rewards[1] = 0.5  # a group whose answers all scored the same
    return [(rewards,), (torch.randn(2, 6, generator=g) * 2 + 1,)]


exercise(
    id="07.1", notebook="07_grpo", title="the leave-one-out baseline",
    task="rewards is (prompts, K): return each answer's reward minus the mean reward of the other K − 1 answers "
         "to the same prompt (RLOO)",
    reference=grpo.rloo_advantages,
    cases=_group_cases,
    mistakes={
        "Leave the answer itself out: the baseline is the mean of the other K − 1 answers, not of all K.":
            lambda r: r - r.mean(1, keepdim=True),
        "The baseline comes from the same prompt's answers (a row), not from the whole batch.":
            lambda r: r - (r.sum() - r) / (r.numel() - 1),
        "Divide the others' sum by K − 1, their number, not by K.":
            lambda r: r - (r.sum(1, keepdim=True) - r) / r.shape[1],
    },
)

exercise(
    id="07.2", notebook="07_grpo", title="GRPO's group-normalised advantage",
    task="rewards is (prompts, K): return (r − mean) / (std + eps) within each prompt's group, std the sample "
         "standard deviation (K − 1); with normalize_std=False only r − mean (Dr. GRPO)",
    reference=grpo.grpo_advantages,
    cases=lambda: [case + (flag,) for case in _group_cases() for flag in (True, False)],
    mistakes={
        "Mean and std are per group (per row, dim 1), not over the whole batch.":
            lambda r, n=True, eps=1e-4: (r - r.mean()) / ((r.std() + eps) if n else 1),
        "Add eps to the std: a group whose answers all got the same reward has std 0, and must get advantage 0.":
            lambda r, n=True, eps=1e-4: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) if n else 1),
        "With normalize_std=False (Dr. GRPO) do not divide by the std at all.":
            lambda r, n=True, eps=1e-4: (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps),
    },
)


def index_markdown() -> str:
    """The book's page listing every exercise by notebook (`book/exercises.md`; a test keeps it current)."""
    lines = ["# Exercises", "",
             "Every training notebook has exercises: you write the function the phase turns on, and the next cell",
             "checks it at once against the course's own on a few inputs. When yours differs and matches a typical",
             "mistake, the check names it. Where it is cheap the notebook then trains with your function (notebook",
             "01's loss, 02's, 03's Bradley–Terry loss, 06's DPO loss; 04's one update by hand uses all of yours).",
             "In the book each solution is folded away under its exercise.", "",
             "The **student edition** has every solution replaced by a stub that raises `NotImplementedError` with the",
             "task: `python -m rlhf_course exercises --out runs/student` writes it. `python -m rlhf_course run",
             "--notebooks runs/student` stops at the first exercise still to do and says which. Later notebooks",
             "start from checkpoints, never from your functions, so a skipped exercise stops only its own notebook.",
             ""]
    notebook = None
    for ex in sorted(EXERCISES.values(), key=lambda e: e.id):
        if ex.notebook != notebook:
            notebook = ex.notebook
            lines += [f"## Notebook {notebook[:2]} ({notebook[3:].replace('_', ' ')})", "",
                      "| exercise | you write | the check names these mistakes |", "|---|---|---|"]
        mistakes = "<br>".join(hint.replace("|", "\\|") for hint in ex.mistakes)
        lines.append(f"| {ex.id} {ex.title} | {ex.task.replace('|', chr(92) + '|')} | {mistakes} |")
    lines += ["", "## Predict, then run", "",
              "A question before an experiment the notebook runs anyway; write your letter into `my_prediction`, and",
              "the cell after the experiment says which answer the run proved right.", ""]
    lines += [f"- **{item.id}** {item.question}" for item in PREDICTIONS.values()]
    return "\n".join(_tables_spaced(lines)) + "\n"


def _tables_spaced(lines: list[str]) -> list[str]:
    """A blank line after each table (before the next heading)."""
    out = []
    for line in lines:
        if line.startswith("## ") and out and out[-1].startswith("|"):
            out.append("")
        out.append(line)
    return out


# --------------------------------------------------------------------------------------------------
# Predict, then run: a question before an experiment, the answer after it
# --------------------------------------------------------------------------------------------------


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


def reveal(prediction_id: str, guess: str | None, **measured) -> str:
    """Which choice the run proved right, against your `guess` (None: no guess), and what it shows."""
    item = PREDICTIONS[prediction_id]
    right = item.answer(**measured)
    numbers = ", ".join(f"{k} = {v:.3f}" if isinstance(v, float) else f"{k} = {v}" for k, v in measured.items())
    verdict = ("" if guess is None else "You were right. " if str(guess).strip().lower() == right
               else f"You said {guess}. ")
    print(f"{verdict}The run says {right}) {item.choices[right]} ({numbers}). {item.why}")
    return right


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
