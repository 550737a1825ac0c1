"""`python -m rlhf_course distributed-check`: is training in 2 processes the same as training in one?

For each supervised phase, a tiny model takes a few steps on a tiny data set twice, from the same initial weights
and on the same global batches: once in this process, once in 2 processes that `torchrun` starts (gloo, on CPU),
each with half of every batch and DDP averaging their gradients. The losses logged and the weights reached must
agree to float rounding (the sums are added in another order); a larger difference is a bug in how the loops
split batches or average losses.

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

PHASES = ("pretrain", "sft", "reward", "dpo")
TOLERANCE = 1e-5  # float32 rounding after a few steps; a wrong split or average differs by ~1e-3 or more
TINY_MODEL = dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_seq_len=192)


@dataclass(frozen=True)
class PhaseComparison:
    """One row of the table: the largest differences between 1 and N processes after `steps` steps."""

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


def train_phase(phase: str, folder: Path) -> tuple[list[float], torch.nn.Module]:
    """A few steps of `phase` from the prepared folder: (the logged losses, the trained model)."""
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
        raise ValueError(f"no phase {phase!r}; the supervised phases are {', '.join(PHASES)}")
    return [record["loss"] for record in history], model


# ---- the N-process run: `torchrun` starts this module's `worker` in each process ----


def worker(folder: Path, phases: list[str]) -> None:
    """Train each phase in this process of the group; rank 0 writes its losses and weights to `folder`."""
    from rlhf_course.engine import distributed

    distributed.setup()
    try:
        for phase in phases:
            losses, model = train_phase(phase, folder)
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
            losses, model = train_phase(phase, folder)
            other = torch.load(folder / f"{phase}.processes.pt")
            loss_difference = max(abs(a - b) for a, b in zip(losses, other["losses"], strict=True))
            parameter_difference = max((value - other["state"][key]).abs().max().item()
                                       for key, value in model.state_dict().items())
            rows.append(PhaseComparison(phase, len(losses), loss_difference, parameter_difference))
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
