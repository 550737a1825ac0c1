"""`python -m rlhf_course distributed-check`: is training in 2 processes the same as training in one?

For each supervised phase, a tiny model takes a few steps on a tiny data set twice, from the same initial weights
and on the same global batches: once in this process, once in 2 processes that `torchrun` starts (gloo, on CPU),
each with half of every batch and DDP averaging their gradients. The losses logged and the weights reached must
agree to float rounding (the sums are added in another order); a larger difference is a bug in how the loops
split batches or average losses.

PPO and GRPO take one iteration's update (`ppo_update`, `grpo_update`: scoring, advantages, every minibatch step)
from the same rollout, sampled once here and saved: each of the 2 processes gets half of its answers (whole groups
for GRPO), as each would have sampled them in a real run. (A real run samples with seed + rank, so its answers
differ from one process's by design; the update from given answers is what must be equal.)

    torchrun --standalone --nproc_per_node 2 -m rlhf_course.course.distributed_check FOLDER PHASE...   (a worker)

No course checkpoint is needed: the tokenizer, models and data are built in a temporary folder.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

PHASES = ("pretrain", "sft", "reward", "dpo", "ppo", "grpo")
RL_PHASES = ("ppo", "grpo")  # one update from a saved rollout
TOLERANCE = 1e-5  # float32 rounding after a few steps; a wrong split or average differs by ~1e-3 or more
TINY_MODEL = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_seq_len=192)


@dataclass(frozen=True)
class PhaseComparison:
    """One row of the table: the largest differences between 1 and N processes after `steps` steps (optimiser
    steps: for PPO and GRPO the minibatch updates of one iteration, whose mean losses are compared)."""

    phase: str
    steps: int
    loss_difference: float  # largest |loss(1 process) − loss(N processes)| over the steps
    parameter_difference: float  # largest |weight(1 process) − weight(N processes)| after the last step

    @property
    def equal(self) -> bool:
        return max(self.loss_difference, self.parameter_difference) <= TOLERANCE


# ---- the tiny world both runs start from, written to a folder so that every process reads the same ----


def prepare(folder: Path) -> None:
    """A tokenizer, an initial causal LM and reward model (saved with `save_pretrained`), a corpus, demonstrations
    and preference pairs (whole rankings of 2 or 3 answers, so that the processes' shares of pairs differ)."""
    from rlhf_course import world
    from rlhf_course.config import ModelConfig
    from rlhf_course.engine import models
    from rlhf_course.phases import reward
    from rlhf_course.world import tokenizer

    tok = tokenizer.train_tokenizer([d["text"] for d in world.make_corpus(600, seed=0)], vocab_size=500)
    causal = models.build_model(ModelConfig(**TINY_MODEL), tok, seed=0)
    causal.save_pretrained(folder / "causal")
    tok.save_pretrained(folder / "causal")
    torch.manual_seed(0)  # the score head's initialisation
    reward.init_reward_model(folder / "causal", tok).save_pretrained(folder / "reward")
    demonstrations = [{"prompt": d["prompt"], "response": d["response"]} for d in world.make_demonstrations(24, seed=0)]
    pairs = []
    for start, size in zip(range(0, 24, 3), itertools.cycle([3, 2])):
        answers = [demonstrations[start + k]["response"] for k in range(size)]
        pairs += [{"prompt": demonstrations[start]["prompt"], "chosen": a, "rejected": b}
                  for a, b in itertools.combinations(answers, 2)]
    data = {"corpus": [d["text"] for d in world.make_corpus(100, seed=1)], "demonstrations": demonstrations,
            "pairs": pairs}
    torch.save(data, folder / "data.pt")
    sample_rollouts(folder, tok, causal)


def rl_configs():
    """One PPO and one GRPO iteration: 2 epochs of 2 minibatches each, so that minibatches mix both processes' rows."""
    from rlhf_course.config import GRPOConfig, PPOConfig

    return {"ppo": PPOConfig(iterations=1, prompts_per_iteration=8, minibatch_size=4, epochs=2, max_new_tokens=8,
                             lr=1e-3, value_lr=1e-3),  # rates that move a tiny model visibly in 4 steps
            "grpo": GRPOConfig(iterations=1, prompts_per_iteration=4, group_size=2, minibatch_size=4, epochs=2,
                               max_new_tokens=8, kl_coef=0.1, loss_normalization="max_tokens", lr=1e-3)}


def sample_rollouts(folder: Path, tok, policy) -> None:
    """The rollout each RL phase updates from, sampled once in one process: its prompts (GRPO's K times each, side
    by side) and the `Rollout`'s tensors."""
    from rlhf_course import world
    from rlhf_course.engine.generation import encode_prompts, sample

    for phase, config in rl_configs().items():
        n, K = config.prompts_per_iteration, getattr(config, "group_size", 1)
        prompts = [prompt for prompt in world.prompt_set("ppo_train", n) for _ in range(K)]
        max_prompt = policy.config.max_position_embeddings - config.max_new_tokens
        prompt_ids, prompt_mask = encode_prompts(tok, prompts, max_prompt)
        rollout = sample(policy.eval(), prompt_ids, prompt_mask, config.max_new_tokens, config.temperature,
                         tok.eos_token_id, tok.pad_token_id, torch.Generator().manual_seed(0))
        # A tiny untrained model seldom ends an answer: cut them at 2 … 8 tokens, so that the processes' shares of a
        # minibatch hold different numbers of answer tokens (as in a real run) and a plain per-process mean would show
        keep = torch.arange(rollout.response_mask.shape[1]) < (2 + 3 * torch.arange(len(prompts)) % 7)[:, None]
        rollout.response_mask = rollout.response_mask * keep
        rollout.response_ids = rollout.response_ids.masked_fill(~rollout.response_mask.bool(), tok.pad_token_id)
        rollout.logprobs = rollout.logprobs * rollout.response_mask
        torch.save({"prompts": prompts, "rollout": vars(rollout)}, folder / f"{phase}.rollout.pt")


def update_rl_phase(phase: str, folder: Path) -> tuple[list[float], torch.nn.Module, int]:
    """One iteration's update of `phase` from the saved rollout, this process's share of it: (the iteration's mean
    losses, the trained model(s), the number of minibatch updates)."""
    import random

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlhf_course.engine import distributed
    from rlhf_course.engine.generation import Rollout
    from rlhf_course.engine.models import load_weights
    from rlhf_course.engine.training import make_optimizer
    from rlhf_course.phases import grpo, ppo
    from rlhf_course.world import verifier

    tok = AutoTokenizer.from_pretrained(folder / "causal")
    config = rl_configs()[phase]
    saved = torch.load(folder / f"{phase}.rollout.pt")
    rollout = Rollout(**{key: distributed.shard(value) for key, value in saved["rollout"].items()})  # this rank's
    prompts = distributed.shard(saved["prompts"])
    policy, reference = load_weights(folder / "causal"), load_weights(folder / "causal")
    reward_model = load_weights(folder / "reward", AutoModelForSequenceClassification).eval()
    for frozen in (reference.eval(), reward_model):
        frozen.requires_grad_(False)
    weights_before = {key: value.detach().clone() for key, value in policy.state_dict().items()}
    rng = random.Random(0)  # the minibatches' order: the same in every process
    if phase == "ppo":
        value_model = load_weights(folder / "reward", AutoModelForSequenceClassification)
        optimizers = (make_optimizer(policy.parameters(), config.lr, eps=1e-5),
                      make_optimizer(value_model.parameters(), config.value_lr, eps=1e-5))
        record = ppo.ppo_update(policy, reference, reward_model, value_model, rollout, config, optimizers, rng,
                                weights_before)
        trained = torch.nn.ModuleDict({"policy": policy, "value_model": value_model})
        return [record["policy_loss"], record["value_loss"]], trained, 2 * config.epochs
    optimizer = make_optimizer(policy.parameters(), config.lr, eps=1e-5)
    record = grpo.grpo_update(policy, reference, tok, rollout, prompts, config, optimizer, rng, weights_before,
                              reward_model=reward_model, verifier=verifier.verifier_reward)
    return [record["loss"]], policy, 2 * config.epochs


def train_phase(phase: str, folder: Path) -> tuple[list[float], torch.nn.Module, int]:
    """A few steps of `phase` from the prepared folder: (the logged losses, the trained model, the steps)."""
    if phase in RL_PHASES:
        return update_rl_phase(phase, folder)
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlhf_course.config import DPOConfig, PretrainConfig, RewardConfig, SFTConfig
    from rlhf_course.engine.models import load_weights
    from rlhf_course.phases import dpo, pretrain, reward, sft

    tok = AutoTokenizer.from_pretrained(folder / "causal")
    data = torch.load(folder / "data.pt")
    if phase == "pretrain":
        model = load_weights(folder / "causal")
        stream = pretrain.tokenize_corpus(tok, data["corpus"])
        config = PretrainConfig(steps=3, batch_size=4, block_size=32, lr=1e-3, warmup_steps=1)
        history = pretrain.pretrain(model, stream, config)
    elif phase == "sft":
        model = load_weights(folder / "causal")
        tokenized = sft.tokenize_demonstrations(tok, Dataset.from_list(data["demonstrations"]), 192)
        config = SFTConfig(epochs=0.5, batch_size=4, lr=1e-3, warmup_steps=1)  # 3 steps
        history = sft.train_sft(model, tokenized, config, tok.pad_token_id)
    elif phase == "reward":
        model = load_weights(folder / "reward", AutoModelForSequenceClassification)
        config = RewardConfig(batch_size=6, epochs=0.75, lr=5e-4, warmup_steps=1)  # the profiles' rate
        history = reward.train_reward_model(model, tok, data["pairs"], config, progress=False)
    elif phase == "dpo":
        model, reference = load_weights(folder / "causal"), load_weights(folder / "causal")
        config = DPOConfig(batch_size=6, epochs=0.75, lr=1e-3, warmup_steps=1)
        history = dpo.train_dpo(model, reference, tok, data["pairs"], config)
    else:
        raise ValueError(f"no phase {phase!r}; the phases are {', '.join(PHASES)}")
    return [record["loss"] for record in history], model, len(history)


# ---- the N-process run: `torchrun` starts this module's `worker` in each process ----


def worker(folder: Path, phases: list[str]) -> None:
    """Train each phase in this process of the group; rank 0 writes its losses and weights to `folder`."""
    from rlhf_course.engine import distributed

    distributed.setup()
    try:
        for phase in phases:
            losses, model, _ = train_phase(phase, folder)
            if distributed.is_main():
                torch.save({"losses": losses, "state": model.state_dict()}, folder / f"{phase}.processes.pt")
    finally:
        distributed.cleanup()


def launch_processes(folder: Path, phases: list[str], processes: int) -> None:
    """`torchrun --standalone --nproc_per_node N` on this module, on CPU (gloo), one thread per process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", "rlhf_course.course.distributed_check", str(folder), *phases]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the {processes}-process run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def compare(phases: list[str] | None = None, processes: int = 2) -> list[PhaseComparison]:
    """Train each phase in one process and in `processes` processes; the largest differences per phase."""
    import transformers

    transformers.logging.set_verbosity_error()
    phases = list(phases or PHASES)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rlhf-distributed-check-") as name:
        folder = Path(name)
        prepare(folder)
        launch_processes(folder, phases, processes)
        for phase in phases:
            losses, model, steps = train_phase(phase, folder)
            other = torch.load(folder / f"{phase}.processes.pt")
            loss_difference = max(abs(a - b) for a, b in zip(losses, other["losses"], strict=True))
            parameter_difference = max((value - other["state"][key]).abs().max().item()
                                       for key, value in model.state_dict().items())
            rows.append(PhaseComparison(phase, steps, loss_difference, parameter_difference))
    return rows


def table(rows: list[PhaseComparison], processes: int = 2) -> str:
    """The comparison as a Markdown table."""
    lines = [f"| phase | steps | largest loss difference (1 vs {processes} processes) "
             "| largest parameter difference | equal |",
             "|---|---:|---:|---:|---|"]
    lines += [f"| {r.phase} | {r.steps} | {r.loss_difference:.2e} | {r.parameter_difference:.2e} | "
              f"{'yes' if r.equal else 'NO'} |" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":  # a process that torchrun started
    worker(Path(sys.argv[1]), sys.argv[2:])
