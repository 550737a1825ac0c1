"""Small shared fixtures: a tokenizer trained on a slice of the world and a 2-layer Llama (seconds to build)."""

import pytest
import torch

from rlhf_course import world
from rlhf_course.config import ModelConfig
from rlhf_course.engine import models
from rlhf_course.world import tokenizer

SMALL_MODEL = ModelConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_seq_len=192)


@pytest.fixture(scope="session")
def tok():
    return tokenizer.train_tokenizer([d["text"] for d in world.make_corpus(600, seed=0)], vocab_size=500)


@pytest.fixture()
def small_model(tok):
    torch.manual_seed(0)
    return models.build_model(SMALL_MODEL, tok).eval()


@pytest.fixture()
def runs(tmp_path, monkeypatch):
    """An empty runs folder for the test (RLHF_RUNS_DIR), at the default course seed."""
    monkeypatch.setenv("RLHF_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("RLHF_SEED", "0")  # restored afterwards, also when a test sets another seed
    return tmp_path / "runs"
