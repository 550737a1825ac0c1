"""Broken checkpoint folders (issue 36): each one a `CheckpointError` that names the folder, never random weights
and never `torch.load`.

Each test saves the small real model as a checkpoint (`save_pretrained`, safetensors), breaks one file the way a
crash, a full disk or a hand edit would, and loads it back.
"""

import json
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlhf_course.config import get_profile
from rlhf_course.engine import models

WEIGHTS = "model.safetensors"


@pytest.fixture()
def folder(tok, small_model, runs):
    """A complete `sft` checkpoint of the small model, to break."""
    return models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)


@pytest.fixture()
def no_torch_load(monkeypatch):
    """Make `torch.load` (which unpickles) fail loudly and record every call, so that a test can assert it was
    never reached."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)
    return calls


def rewrite_weights(folder, change):
    """Apply `change` to the checkpoint's tensors (a dict) and save them back as safetensors."""
    tensors = load_file(folder / WEIGHTS)
    change(tensors)
    save_file(tensors, folder / WEIGHTS, metadata={"format": "pt"})


def load_error(folder) -> str:
    """The message of the `CheckpointError` that loading the broken `sft` checkpoint raises; it names the folder
    and what to run."""
    with pytest.raises(models.CheckpointError) as error:
        models.load_checkpoint("sft", "tiny", device="cpu")
    message = str(error.value)
    assert str(folder) in message and "02_sft" in message
    return message


def test_a_tied_output_layer_is_not_counted_as_missing(folder, small_model):
    """The output layer shares the embedding (tied), so save_pretrained leaves it out of the file: that is fine."""
    assert "lm_head.weight" not in load_file(folder / WEIGHTS)
    model, _, _ = models.load_checkpoint("sft", "tiny", device="cpu")
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert torch.equal(model.lm_head.weight, small_model.lm_head.weight)


def test_missing_tensor_is_refused_not_filled_with_random_numbers(folder):
    rewrite_weights(folder, lambda tensors: tensors.pop("model.layers.1.mlp.up_proj.weight"))
    message = load_error(folder)
    assert "lack tensors" in message and "model.layers.1.mlp.up_proj.weight" in message


def test_weights_without_any_tensor_are_refused(folder):
    rewrite_weights(folder, lambda tensors: tensors.clear())
    message = load_error(folder)
    assert "model.embed_tokens.weight" in message and "more" in message  # many keys, cut short


def test_unexpected_tensor_is_refused(folder):
    rewrite_weights(folder, lambda tensors: tensors.update({"model.extra.weight": torch.zeros(3)}))
    message = load_error(folder)
    assert "does not have" in message and "model.extra.weight" in message


def test_tensor_of_the_wrong_shape_is_refused(folder):
    rewrite_weights(folder, lambda tensors: tensors.update({"model.norm.weight": torch.ones(7)}))
    message = load_error(folder)
    assert "wrong shape" in message and "model.norm.weight (7,) in the file, (32,) in the model" in message


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: struct.pack("<Q", 2**40) + b"{}", id="huge-header-length"),
        pytest.param(lambda data: struct.pack("<Q", 5) + b"{nope", id="header-not-json"),
    ],
)
def test_damaged_safetensors_file_is_refused(folder, damage):
    path = folder / WEIGHTS
    path.write_bytes(damage(path.read_bytes()))
    assert "SafetensorError" in load_error(folder)


def test_index_naming_a_pickle_never_reaches_torch_load(folder, no_torch_load):
    """transformers would hand a `.bin` named by a safetensors index to torch.load, even with use_safetensors."""
    tensors = load_file(folder / WEIGHTS)
    (folder / WEIGHTS).unlink()
    (folder / "evil.bin").write_bytes(b"not read")
    weight_map = {name: "evil.bin" for name in tensors}
    (folder / models.SAFETENSORS_INDEX).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    message = load_error(folder)
    assert "evil.bin" in message and no_torch_load == []


def test_index_naming_a_file_outside_the_folder_is_refused(folder, no_torch_load):
    weight_map = {"model.norm.weight": "../elsewhere/model.safetensors"}
    (folder / models.SAFETENSORS_INDEX).write_text(json.dumps({"weight_map": weight_map}))
    assert "../elsewhere/model.safetensors" in load_error(folder)


def test_pytorch_bin_files_are_never_unpickled(folder, no_torch_load):
    (folder / WEIGHTS).unlink()
    (folder / "pytorch_model.bin").write_bytes(b"not read")
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"x": "pytorch_model.bin"}}))
    assert WEIGHTS in load_error(folder) and no_torch_load == []


def test_sharded_safetensors_still_load(tok, small_model, runs, no_torch_load):
    """The index check refuses pickles, not shards: a folder of several safetensors files loads as one model."""
    folder = models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    (folder / WEIGHTS).unlink()
    small_model.save_pretrained(folder, max_shard_size="20KB")
    assert len(list(folder.glob("model-*.safetensors"))) > 1 and (folder / models.SAFETENSORS_INDEX).is_file()
    model, _, _ = models.load_checkpoint("sft", "tiny", device="cpu")
    assert torch.equal(model.model.norm.weight, small_model.model.norm.weight)


def test_no_config_json_is_refused(folder):
    (folder / "config.json").unlink()
    load_error(folder)


def test_deeply_nested_config_json_is_refused(folder):
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "RecursionError" in load_error(folder)


def test_broken_tokenizer_is_refused(folder):
    (folder / "tokenizer.json").write_text("{cut short")
    load_error(folder)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deeply-nested"),
        pytest.param(b"[]", id="a-list"),
        pytest.param(b'{"phase": "sft", "note": "\xff"}', id="invalid-utf8"),
    ],
)
def test_broken_meta_json_is_refused(folder, content):
    (folder / models.META_FILE).write_bytes(content)
    assert "Corrupt" in load_error(folder)


def test_reward_model_without_its_score_head_is_refused(tok, small_model, runs):
    """An SFT model saved where the reward model belongs: loading it as a reward model would invent the head."""
    folder = models.save_checkpoint(small_model, tok, "reward", get_profile("tiny"), metrics={}, wall_s=0)
    with pytest.raises(models.CheckpointError) as error:
        models.load_reward_model("tiny", device="cpu")
    assert str(folder) in str(error.value) and "score.weight" in str(error.value)


@pytest.mark.parametrize("damage", ["missing-tensor", "index-to-pickle"])
def test_bring_your_own_model_folder_gets_the_same_checks(tok, small_model, runs, tmp_path, monkeypatch,
                                                          no_torch_load, damage):
    source = tmp_path / "my-model"
    small_model.save_pretrained(source)
    tok.save_pretrained(source)
    if damage == "missing-tensor":
        rewrite_weights(source, lambda tensors: tensors.pop("model.norm.weight"))
    else:
        (source / WEIGHTS).unlink()
        (source / models.SAFETENSORS_INDEX).write_text(json.dumps({"weight_map": {"x": "pytorch_model.bin"}}))
    monkeypatch.setenv("RLHF_BASE_MODEL", str(source))
    with pytest.raises(models.CheckpointError) as error:
        models.load_checkpoint("base", "tiny", device="cpu")
    message = str(error.value)
    assert str(source) in message and ("model.norm.weight" in message or "pytorch_model.bin" in message)
    assert no_torch_load == [] and not models.checkpoint_dir("base", "tiny").exists()
