"""`runs/<profile>/report.json`: the headline numbers of every phase, written as each notebook finishes, and every
learning outcome a notebook checks (`check`), with its value and threshold, passed or not."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rlhf_course.config import course_seed
from rlhf_course.paths import runs_dir


def report_path(profile_name: str) -> Path:
    return runs_dir(profile_name) / "report.json"


def read_report(profile_name: str) -> dict:
    path = report_path(profile_name)
    if not path.exists():
        return {"profile": profile_name, "phases": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); delete it and re-run the notebooks") from None


def record_phase(profile_name: str, phase: str, entry: dict) -> dict:
    """Set `phases[phase]` of the profile's report to `entry` (atomically) and return the whole report."""
    report = read_report(profile_name)
    report.setdefault("phases", {})[phase] = entry
    _write(profile_name, report)
    return report


def _write(profile_name: str, report: dict) -> None:
    report["profile"] = profile_name
    report["seed"] = course_seed()
    path = report_path(profile_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(report, tmp, indent=2)
    os.replace(tmp.name, path)


def record_run(profile_name: str, notebook: str, wall_s: float, peak_gpu_gib: float | None = None) -> None:
    """Note a notebook's wall time (kernel start included) and, on a GPU, its peak GPU memory under `notebooks`."""
    report = read_report(profile_name)
    entry = {"wall_s": wall_s} if peak_gpu_gib is None else {"wall_s": wall_s, "peak_gpu_gib": peak_gpu_gib}
    report.setdefault("notebooks", {})[notebook] = entry
    _write(profile_name, report)


def check(profile_name: str, name: str, value: float, *, at_least: float | None = None,
          at_most: float | None = None, why: str = "") -> None:
    """Assert a learning outcome (`at_least <= value <= at_most`) and record it under `checks[name]` in the report.

    It is recorded before it fails, so that the robustness sweep (`experiments/robustness.py`) sees the value of a
    failed check too. The thresholds are set from that sweep: each sits below the worst of its runs, with a margin.
    """
    if at_least is None and at_most is None:
        raise ValueError("check needs at_least or at_most")
    value = float(value)
    passed = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    report = read_report(profile_name)
    report.setdefault("checks", {})[name] = {"value": round(value, 4), "at_least": at_least, "at_most": at_most,
                                             "passed": passed}
    _write(profile_name, report)
    if not passed:
        bound = f"≥ {at_least}" if at_least is not None and value < at_least else f"≤ {at_most}"
        raise AssertionError(f"{why or name}: {name} = {value:.4g}, the course expects {bound}")
