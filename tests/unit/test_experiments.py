"""Notebook 05's experiment cache: computed once, reused, and recomputed when what it was computed from changed."""

import dataclasses
import json

import pytest
import torch

from rlhf_course import world
from rlhf_course.config import PPOConfig, get_profile
from rlhf_course.course import artifacts, experiments
from rlhf_course.engine import models
from rlhf_course.phases import reward


def test_cached_results_are_reused_until_the_sft_checkpoint_or_candidates_change(tok, small_model, runs,
                                                                                  monkeypatch):
    monkeypatch.delenv("RLHF_RECOMPUTE", raising=False)
    profile = get_profile("tiny")
    models.save_checkpoint(small_model, tok, "sft", profile, metrics={}, wall_s=0)
    artifacts.save_candidates("tiny", [{"prompt": "p", "answers": ["a", "b"]}])
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    first = experiments.cached("tiny", "demo", compute)
    again = experiments.cached("tiny", "demo", compute)
    assert first["value"] == again["value"] == 1 and len(calls) == 1
    assert experiments.cached("tiny", "demo", compute, recompute=True)["value"] == 2

    # notebook 02 ran again: a new sft checkpoint makes the cached result stale
    meta_path = models.checkpoint_dir("sft", "tiny") / models.META_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps(dict(meta, created="2099-01-01T00:00:00")))
    assert experiments.cached("tiny", "demo", compute)["value"] == 3
    assert experiments.cached("tiny", "demo", compute)["value"] == 3



def test_results_cached_by_an_older_version_of_the_experiments_are_recomputed(tok, small_model, runs, monkeypatch):
    monkeypatch.delenv("RLHF_RECOMPUTE", raising=False)
    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    assert experiments.cached("tiny", "demo", lambda: {"value": 1})["value"] == 1
    monkeypatch.setattr(experiments, "VERSION", experiments.VERSION + 1)
    assert experiments.cached("tiny", "demo", lambda: {"value": 2})["value"] == 2


def test_mood_share_counts_only_answers_to_prompts_that_asked_for_another_mood():
    prompts = ["Write a sad story about a fox named Tom in the forest.",
               "Write a scary story about a cat named Mia in the park.",
               "Write a happy story about a dog named Ben in the town.",
               "Write a story about a pig."]
    answers = ["Tom smiled and was glad. The end.", "Mia shivered in the dark. The end.",
               "Ben smiled. The end.", "The pig was happy. The end."]
    # only the sad and the scary prompts count (the happy one asked for it, the last one asked for no mood)
    assert experiments.mood_share(prompts, answers, "happy") == 0.5
    assert experiments.mood_share(prompts, answers, "scary") == 0.0  # asked: sad, happy; neither shows it


def test_one_reward_model_can_drive_several_ppo_runs(tok, small_model, runs):
    # train_ppo freezes the reward model it is given; the critic copied from it must still learn in the next run
    profile = get_profile("tiny")
    models.save_checkpoint(small_model, tok, "sft", profile, metrics={}, wall_s=0)
    torch.manual_seed(0)
    reward_model = reward.init_reward_model(models.checkpoint_dir("sft", "tiny"), tok).eval()
    config = dataclasses.replace(PPOConfig(), iterations=1, prompts_per_iteration=4, minibatch_size=4, epochs=1,
                                 max_new_tokens=8, train_prompt_pool=8)
    prompts = world.make_prompts(2, "test", seed=11)
    finals = [experiments.run_ppo(profile, reward_model, config, prompts, seed=seed)["final"] for seed in (0, 1)]
    assert all(final["mean_length"] > 0 and len(final["answers"]) == 2 for final in finals)
    assert not any(p.requires_grad for p in reward_model.parameters()), "the reward model stays frozen"


def test_other_settings_or_new_artifacts_make_a_cached_result_stale(tok, small_model, runs, monkeypatch):
    monkeypatch.delenv("RLHF_RECOMPUTE", raising=False)
    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    settings = {"ppo_config": experiments.experiment_ppo(get_profile("tiny"), iterations=5), "ns": (1, 2)}
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert experiments.cached("tiny", "demo", compute, settings=settings)["value"] == 1
    assert experiments.cached("tiny", "demo", compute, settings=settings)["value"] == 1  # same settings: reused
    changed = dict(settings, ppo_config=experiments.experiment_ppo(get_profile("tiny"), iterations=6))
    assert experiments.cached("tiny", "demo", compute, settings=changed)["value"] == 2
    artifacts.save_heldout_answers("tiny", {"prompts": []})  # notebook 03 ran again
    assert experiments.cached("tiny", "demo", compute, settings=changed)["value"] == 3


def test_a_missing_artifact_names_the_notebook_that_makes_it(runs):
    with pytest.raises(models.CheckpointError, match="03_reward_model"):
        artifacts.load_heldout_answers("tiny")
    path = artifacts.save_candidates("tiny", [{"prompt": "p", "answers": ["a", "b"]}])
    assert path.parent == models.runs_dir("tiny") / "artifacts"
    assert artifacts.load_candidates("tiny") == [{"prompt": "p", "answers": ["a", "b"]}]


def test_prompt_sets_are_named_once():
    assert world.prompt_set("ppo_eval", 5) == world.make_prompts(5, "test", seed=11)
    assert set(world.prompt_set("candidates", 50)).isdisjoint(world.prompt_set("heldout", 50))
