"""Checking a student's function: the `Exercise` record, the registry `EXERCISES` that the catalogues fill
through `exercise(...)`, and `check`, which runs the student's function against the reference on every input and
says what is wrong (a catalogued mistake's hint, or where the first difference is).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


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
    """Register an exercise: each catalogue calls this once per exercise, in id order."""
    ex = Exercise(**fields)
    EXERCISES[ex.id] = ex
    return ex


def _copy(value):
    """A fresh copy of a case's arguments: a function that changes its inputs in place then spoils neither the
    reference's run nor the next one."""
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
            [f"Expected {name}: {_show(e)}", f"Yours: {_show(g)}"])
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
