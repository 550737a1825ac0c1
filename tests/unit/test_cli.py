"""The command line: bad input gets one clear line and a non-zero exit status, never a traceback."""

import subprocess
import sys

from rlhf_course.__main__ import main


def test_unknown_profile(capsys):
    assert main(["run", "--profile", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'huge'" in err and "tiny" in err and "Traceback" not in err


def test_unknown_notebook_number(capsys):
    assert main(["run", "--until", "42"]) == 2
    err = capsys.readouterr().err
    assert "--until 42" in err and "00" in err


def test_from_after_until(capsys):
    assert main(["run", "--from", "02", "--until", "01"]) == 2
    assert "comes after" in capsys.readouterr().err


def test_unknown_profile_in_environment(monkeypatch, capsys):
    monkeypatch.setenv("RLHF_PROFILE", "medium")
    assert main(["report"]) == 2
    assert "RLHF_PROFILE" in capsys.readouterr().err


def test_corrupt_report_is_one_line(runs, capsys):
    (runs / "tiny").mkdir(parents=True)
    (runs / "tiny" / "report.json").write_text("{oops")
    assert main(["report", "--profile", "tiny"]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def _run_cli(*args, env_runs):
    import os

    env = dict(os.environ, RLHF_RUNS_DIR=str(env_runs), RLHF_PROFILE="tiny")
    return subprocess.run([sys.executable, "-m", "rlhf_course", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_running_a_notebook_without_its_input_checkpoint(runs):
    """Notebook 02 needs `base`: the run stops with the notebook, the cell and what to run instead. (A corrupt
    checkpoint raises the same CheckpointError: tests/unit/test_models.py; one kernel start here is enough.)"""
    result = _run_cli("run", "--from", "02", "--until", "02", env_runs=runs)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()
    message = next(line for line in last if line.startswith("error:"))
    assert "02_sft.ipynb failed in code cell 1" in message and "CheckpointError" in message
    assert "01_base_model" in message
    assert (runs / "tiny" / "executed" / "02_sft.ipynb").exists()
