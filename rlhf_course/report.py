"""`runs/<profile>/report.json`: the headline numbers of every phase, written as each notebook finishes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .models import runs_dir


def report_path(profile_name: str) -> Path:
    return runs_dir(profile_name) / "report.json"


def read_report(profile_name: str) -> dict:
    path = report_path(profile_name)
    if not path.exists():
        return {"profile": profile_name, "phases": {}}
    try:
        return json.loads(path.read_text())
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
    path = report_path(profile_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(report, tmp, indent=2)
    os.replace(tmp.name, path)


def record_run(profile_name: str, notebook: str, wall_s: float) -> None:
    """Note a notebook's wall time (kernel start included) under `notebooks` in the report."""
    report = read_report(profile_name)
    report.setdefault("notebooks", {})[notebook] = {"wall_s": wall_s}
    _write(profile_name, report)
