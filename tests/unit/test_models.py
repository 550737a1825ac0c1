"""Checkpoints: round trip, atomic writes, and one clear error for every broken state."""

import json

import pytest
import torch

from rlhf_course.config import get_profile
from rlhf_course.engine import models


def test_round_trip_keeps_weights_tokenizer_and_meta(tok, small_model, runs):
    profile = get_profile("tiny")
    folder = models.save_checkpoint(small_model, tok, "base", profile, metrics={"loss": 1.5}, wall_s=3.25)
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin")) and not list(folder.glob("*.pt"))
    model, tok2, meta = models.load_checkpoint("base", "tiny", device="cpu")
    assert meta["metrics"] == {"loss": 1.5} and meta["profile"] == "tiny" and meta["wall_s"] == 3.25
    assert meta["seed"] == profile.seed
    for (name, p), q in zip(small_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(p, q), name
    assert tok2.pad_token_id == tok.pad_token_id


def test_saving_again_replaces_the_old_checkpoint_and_leaves_no_debris(tok, small_model, runs):
    profile = get_profile("tiny")
    models.save_checkpoint(small_model, tok, "sft", profile, metrics={"v": 1}, wall_s=1)
    models.save_checkpoint(small_model, tok, "sft", profile, metrics={"v": 2}, wall_s=1)
    assert models.read_meta("sft", "tiny")["metrics"] == {"v": 2}
    assert sorted(p.name for p in (runs / "tiny" / "checkpoints").iterdir()) == ["sft"]


def test_a_crash_mid_save_leaves_no_complete_looking_folder(tok, small_model, runs, monkeypatch):
    profile = get_profile("tiny")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(tok), "save_pretrained", crash)
    with pytest.raises(OSError):
        models.save_checkpoint(small_model, tok, "base", profile, metrics={}, wall_s=0)
    with pytest.raises(models.CheckpointError):
        models.load_checkpoint("base", "tiny")


def test_missing_checkpoint_names_the_notebook_and_command(runs):
    with pytest.raises(models.CheckpointError) as error:
        models.load_checkpoint("sft", "tiny")
    message = str(error.value)
    assert "02_sft" in message and "python -m rlhf_course run" in message and "--until 02" in message


def test_incomplete_checkpoint_is_reported(runs):
    folder = runs / "tiny" / "checkpoints" / "base"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    with pytest.raises(models.CheckpointError, match="incomplete"):
        models.load_checkpoint("base", "tiny")


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"phase": "sft"})])
def test_corrupt_meta_is_reported(tok, small_model, runs, content):
    folder = models.save_checkpoint(small_model, tok, "base", get_profile("tiny"), metrics={}, wall_s=0)
    (folder / "meta.json").write_text(content)
    with pytest.raises(models.CheckpointError, match="Corrupt"):
        models.load_checkpoint("base", "tiny")


def test_runs_dir_follows_the_environment(runs):
    assert models.checkpoint_dir("ppo", "gpu") == runs / "gpu" / "checkpoints" / "ppo"
