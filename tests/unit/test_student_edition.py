"""The student edition, as a student gets it: written by the CLI, run headless, stopped by its first stub."""

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]


def test_the_student_edition_runs_up_to_its_first_exercise_and_says_which(tmp_path):
    edition = tmp_path / "student"
    env = {**os.environ, "RLHF_RUNS_DIR": str(tmp_path / "runs"), "RLHF_SEED": "0", "PYTHONPATH": str(ROOT)}
    made = subprocess.run([sys.executable, "-m", "rlhf_course", "exercises", "--out", str(edition)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    assert "01_base_model.ipynb: exercises 01.1, 01.2" in made.stdout
    source = "\n".join(c.source for c in nbformat.read(edition / "01_base_model.ipynb", as_version=4).cells)
    assert "BEGIN SOLUTION" not in source and "F.cross_entropy(logits[:, :-1]" not in source
    ran = subprocess.run([sys.executable, "-m", "rlhf_course", "run", "--profile", "tiny", "--notebooks",
                          str(edition), "--from", "01", "--until", "01"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert ran.returncode == 1
    assert "ExerciseNotDone: Exercise 01.1 (the next-token loss) is not done yet: return the mean" in ran.stderr
    assert f"write it in {edition / '01_base_model.ipynb'}" in ran.stderr
    assert not (tmp_path / "runs" / "tiny" / "checkpoints" / "base").exists()  # it stopped before training
