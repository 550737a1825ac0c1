"""`python -m rlhf_course train PHASE`: a phase's training outside its notebook, in one process or many.

    python -m rlhf_course train sft                              one process, like notebook 02
    torchrun --nproc_per_node 2 -m rlhf_course train sft         2 processes (gloo on CPU, one GPU each on CUDA)

Each phase reads the inputs its notebook reads (the generated corpus, the demonstrations, the rankings notebook 03
wrote) and the checkpoint before it, trains with the profile's settings, and saves its checkpoint where the
notebook saves it (`models.save_checkpoint`), so the notebooks carry on from it. What a notebook measures after
training (sampling, the gold judge, plots) stays in the notebook; the reward model's normalisation constants are
computed here, since PPO needs them. Only rank 0 writes files.
"""

from __future__ import annotations

import os
import random
import time

import torch

from rlhf_course.config import Profile, base_model_source, get_profile
from rlhf_course.engine import distributed, models

SUPERVISED = {"pretrain": "base", "sft": "sft", "reward": "reward", "dpo": "dpo"}  # phase -> checkpoint it writes
NOT_YET_LAUNCHED = ("ppo", "grpo")  # their checkpoints and callbacks are the notebooks' for now


class LaunchError(Exception):
    """A phase that cannot be trained from the command line (yet), or whose inputs are missing."""


def train(phase: str, profile: Profile | None = None) -> dict:
    """Train `phase` of `profile` in this process (one of torchrun's, or alone); returns the checkpoint's metrics."""
    if phase in NOT_YET_LAUNCHED:
        raise LaunchError(f"{phase} cannot be launched from the command line yet (its loop runs under torchrun, "
                          f"from Python): train it in notebook {'04' if phase == 'ppo' else '07'}")
    if phase not in SUPERVISED:
        raise LaunchError(f"no phase {phase!r}; `train` knows {', '.join(SUPERVISED)}")
    profile = profile or get_profile()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    device = distributed.setup()
    try:
        random.seed(profile.seed)  # as a notebook's first cell (`course.start`) seeds
        torch.manual_seed(profile.seed)
        start = time.perf_counter()
        model, tok, metrics = TRAINERS[phase](profile, device)
        metrics = {"wall_s": round(time.perf_counter() - start, 1), "processes": distributed.world_size(),
                   "launched": "python -m rlhf_course train", **metrics}
        if distributed.is_main():  # one writer: N ranks saving the same folder would race
            from rlhf_course.course import report

            path = models.save_checkpoint(model, tok, SUPERVISED[phase], profile, metrics=metrics,
                                          wall_s=metrics["wall_s"])
            report.record_phase(profile.name, SUPERVISED[phase], metrics)
            print(f"{SUPERVISED[phase]} checkpoint saved in {path} ({distributed.world_size()} process(es))")
        return metrics
    finally:
        distributed.cleanup()


def final(history: list[dict], *keys: str) -> dict:
    """The last step's `keys`, rounded, for the checkpoint's metrics."""
    return {f"final_{key}": round(history[-1][key], 4) for key in keys}


def train_pretrain(profile: Profile, device: torch.device):
    """Notebook 01: a tokenizer and a fresh model trained on the generated corpus."""
    from datasets import Dataset

    from rlhf_course import world
    from rlhf_course.phases import pretrain
    from rlhf_course.world import tokenizer

    if base_model_source():
        raise LaunchError(f"RLHF_BASE_MODEL={base_model_source()} replaces the pretrained model: nothing to pretrain")
    corpus = Dataset.from_list(world.make_corpus(profile.world.corpus_documents, seed=profile.world.seed))
    split = corpus.train_test_split(test_size=profile.pretrain.heldout_documents, seed=profile.seed)
    train_texts, heldout_texts = split["train"]["text"][:], split["test"]["text"][:]
    tok = tokenizer.train_tokenizer(train_texts, profile.model.vocab_size)
    model = models.build_model(profile.model, tok, seed=profile.seed).to(device)
    history = pretrain.pretrain(model, pretrain.tokenize_corpus(tok, train_texts), profile.pretrain, seed=profile.seed)
    heldout = pretrain.heldout_loss(model, pretrain.tokenize_corpus(tok, heldout_texts), profile.pretrain.block_size)
    return model, tok, {"params": models.count_parameters(model), "heldout_loss": round(heldout, 4),
                        **final(history, "loss")}


def train_sft(profile: Profile, device: torch.device):
    """Notebook 02: the base model fine-tuned on the demonstrations."""
    from rlhf_course.phases import sft

    model, tok, _ = models.load_checkpoint("base", profile.name, device=device)
    demonstrations = sft.demonstration_dataset(profile.world, seed=profile.seed)
    tokenized = sft.tokenize_demonstrations(tok, demonstrations, profile.model.max_seq_len)
    history = sft.train_sft(model, tokenized, profile.sft, tok.pad_token_id, seed=profile.seed)
    return model, tok, {"demonstrations": len(tokenized), **final(history, "loss")}


def preference_pairs(profile: Profile, files: list | None = None) -> list[dict]:
    """The pairs notebook 03 trains on: the rankings it wrote to `runs/<profile>/preferences/` (and yours, in
    `data/preferences/`). Absent rankings are an error: only notebook 03 makes them."""
    from rlhf_course.feedback import preference_loading, preference_store

    folder = preference_store.simulated_preferences_dir(profile.name)
    if not any(folder.glob("**/*.jsonl")):
        raise LaunchError(f"no rankings in {folder}: run notebooks/03_reward_model.ipynb first (it writes them), "
                          f"or `python -m rlhf_course run --profile {profile.name} --until 03`")
    human = preference_store.human_preferences_dir()
    pairs, _ = preference_loading.load_preferences(files or [folder] + ([human] if human.is_dir() else []))
    return list(pairs)


def train_reward(profile: Profile, device: torch.device):
    """Notebook 03: the SFT backbone with a scalar head, fit to the rankings, then normalised on SFT answers."""
    from rlhf_course import world
    from rlhf_course.course import artifacts
    from rlhf_course.phases import reward

    pairs = preference_pairs(profile)
    items = artifacts.load_candidates(profile.name)  # the SFT answers notebook 03 had ranked
    _, tok, _ = models.load_checkpoint("sft", profile.name, device="cpu")
    model = reward.init_reward_model(models.checkpoint_dir("sft", profile.name), tok).to(device)
    history = reward.train_reward_model(model, tok, pairs, profile.reward, seed=profile.seed)
    answers = [(it["prompt"], a) for it in items for a in it["answers"]][:1000]  # as notebook 03 normalises
    raw = reward.score_texts(model, tok, [p for p, _ in answers], [a for _, a in answers], normalized=False)
    normalization = reward.set_normalization(model, raw)
    probes = reward.probe_accuracy(model, tok, world.probe_pairs(100))
    return model, tok, {"n_pairs": len(pairs), "probes": {p: round(s, 2) for p, s in probes.items()},
                        **normalization, **final(history, "loss", "accuracy")}


def train_dpo(profile: Profile, device: torch.device):
    """Notebook 06: the SFT model trained with DPO on the gold annotator's rankings of SFT answers."""
    from rlhf_course.feedback import preference_store
    from rlhf_course.phases import dpo

    policy, tok, _ = models.load_checkpoint("sft", profile.name, device=device)
    reference, _, _ = models.load_checkpoint("sft", profile.name, device=device)
    pairs = preference_pairs(profile, [preference_store.simulated_preferences_dir(profile.name) / "gold.jsonl"])
    history = dpo.train_dpo(policy, reference, tok, pairs, profile.dpo, seed=profile.seed)
    return policy, tok, {"n_pairs": len(pairs), "beta": profile.dpo.beta, **final(history, "loss", "accuracy")}


TRAINERS = {"pretrain": train_pretrain, "sft": train_sft, "reward": train_reward, "dpo": train_dpo}
