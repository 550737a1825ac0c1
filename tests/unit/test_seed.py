"""The seed dial (`RLHF_SEED`, `run --seed N`): every training and sampling stream moves, the world does not."""

import json

import pytest

from rlhf_course.__main__ import main
from rlhf_course.config import PROFILES, ProfileError, course_seed, get_profile
from rlhf_course.course import report
from rlhf_course.engine import models


def test_seed_defaults_to_zero_and_leaves_the_profile_as_it_is(monkeypatch):
    monkeypatch.delenv("RLHF_SEED", raising=False)
    assert course_seed() == 0
    assert get_profile("tiny") is PROFILES["tiny"]


def test_a_seed_moves_training_and_evaluation_sampling_but_not_the_world(monkeypatch):
    monkeypatch.setenv("RLHF_SEED", "3")
    profile = get_profile("tiny")
    assert profile.seed == 3
    assert profile.sampling.seed == PROFILES["tiny"].sampling.seed + 3
    assert profile.world == PROFILES["tiny"].world  # the same corpus, demonstrations and gold judge
    assert get_profile("tiny", seed=0) is PROFILES["tiny"]


@pytest.mark.parametrize("raw", ["one", "-1", "2.5"])
def test_a_seed_that_is_not_a_whole_number_is_one_clear_error(monkeypatch, raw):
    monkeypatch.setenv("RLHF_SEED", raw)
    with pytest.raises(ProfileError, match="RLHF_SEED must be a whole number"):
        course_seed()


def test_each_seed_has_its_own_runs_folder(runs, monkeypatch):
    assert models.runs_dir("tiny") == runs / "tiny"
    monkeypatch.setenv("RLHF_SEED", "4")
    assert models.checkpoint_dir("sft", "tiny") == runs / "tiny-seed4" / "checkpoints" / "sft"


def test_cli_seed_flag_reaches_the_report_folder(runs, capsys):
    (runs / "tiny-seed2").mkdir(parents=True)
    (runs / "tiny-seed2" / "report.json").write_text(json.dumps({"profile": "tiny", "seed": 2, "phases": {}}))
    assert main(["report", "--profile", "tiny", "--seed", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 2
    assert main(["report", "--profile", "tiny", "--seed", "-2"]) == 2
    assert "--seed -2" in capsys.readouterr().err


def test_check_records_the_value_before_it_fails(runs):
    report.check("tiny", "sft.gold_gain", 0.31, at_least=0.2)
    with pytest.raises(AssertionError, match=r"SFT should help: sft.flaw_rate = 0.01, the course expects ≥ 0.05"):
        report.check("tiny", "sft.flaw_rate", 0.01, at_least=0.05, why="SFT should help")
    with pytest.raises(AssertionError, match="≤ 0.6"):
        report.check("tiny", "base.gold_mean", 0.7, at_most=0.6)
    checks = report.read_report("tiny")["checks"]
    assert checks["sft.gold_gain"] == {"value": 0.31, "at_least": 0.2, "at_most": None, "passed": True}
    assert checks["sft.flaw_rate"]["passed"] is False and checks["sft.flaw_rate"]["value"] == 0.01
    assert checks["base.gold_mean"]["passed"] is False
    assert report.read_report("tiny")["seed"] == 0
    with pytest.raises(ValueError):
        report.check("tiny", "nothing", 1.0)
