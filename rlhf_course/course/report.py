"""`runs/<profile>/report.json`: the headline numbers of every phase, written as each notebook finishes, and every
learning outcome a notebook checks (`check`), with its value and threshold, passed or not."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rlhf_course.config import course_seed
from rlhf_course.course.tables import Table, flatten
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


def record_phase(profile_name: str, phase: str, entry: dict) -> PhaseSummary:
    """Set `phases[phase]` of the profile's report to `entry` (atomically). Returns what a notebook's last cell
    shows: the phase's numbers and the learning outcomes it checked, as tables."""
    report = read_report(profile_name)
    report.setdefault("phases", {})[phase] = entry
    _write(profile_name, report)
    checks = {name: check for name, check in report.get("checks", {}).items() if name.split(".")[0] == phase}
    return PhaseSummary(phase, entry, checks, report_path(profile_name))


class PhaseSummary:
    """The end of a notebook: its checks (value, bound, passed) and its headline numbers, saved in report.json."""

    MOST_ROWS_PER_ENTRY = 6

    def __init__(self, phase: str, entry: dict, checks: dict, path: Path):
        self.phase, self.entry, self.checks, self.path = phase, entry, checks, path

    def tables(self) -> list[Table]:
        outcomes = Table([{"learning outcome": name.split(".", 1)[1], "value": check["value"],
                           "expected": f"≥ {check['at_least']}" if check["at_least"] is not None
                           else f"≤ {check['at_most']}", "passed": check["passed"]}
                          for name, check in self.checks.items()], caption="What this notebook checked")
        rows = []
        for key, value in self.entry.items():  # a large nested entry (a scoreboard) is named, not spelled out
            numbers = flatten(value, f"{key}.") if isinstance(value, dict) else {key: value}
            if len(numbers) > self.MOST_ROWS_PER_ENTRY:
                rows.append({"number": key, "value": f"{len(numbers)} numbers"})
            else:
                rows += [{"number": name, "value": number} for name, number in flatten(numbers).items()]
        headline = Table(rows, caption=f"Saved to report.json under phases.{self.phase}")
        return [table for table in (outcomes, headline) if table.rows]

    def _repr_html_(self) -> str:
        return "".join(table._repr_html_() for table in self.tables())

    def __repr__(self) -> str:
        return "\n\n".join(repr(table) for table in self.tables())


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
