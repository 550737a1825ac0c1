"""Reward-model training throughput: `rlhf_course.phases.reward.train_reward_model` vs TRL's `RewardTrainer`.

Same model (an untrained Llama with a fresh scalar head, `AutoModelForSequenceClassification`, one label),
same preference pairs (prompts and answers from the course's generated world, chat template + EOS), same
batch (32 pairs = 64 sequences per step), one epoch, fp32 on CPU, no gradient checkpointing, AdamW with a
cosine schedule. The course side runs in this process; TRL runs in a persistent worker in the TRL-only venv
(`benchmarks/.venv-trl`), asked for one repetition at a time, interleaved with ours. Each repetition starts
from the same saved weights.

Measured per repetition:
  train s      wall time of `train_reward_model(...)` / `trainer.train()` (TRL's dataset tokenisation happens
               in `RewardTrainer.__init__`, reported separately as "TRL init s"; ours tokenises inside training)
  step s       median time of one optimiser step (steps 2..n), from our history / a TRL `TrainerCallback`

TRL arms: "trl" turns gradient checkpointing off (as ours); "trl-defaults" keeps TRL's default
`gradient_checkpointing=True` (both with bf16=False: TRL's default bf16=True is not what a CPU run wants).

    nice -n 10 .venv/bin/python benchmarks/bench_reward.py [--model tiny|3m] [--pairs 512] [--repetitions 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import common  # noqa: E402  (standard library only)

MODELS = {"tiny": common.TINY, "3m": common.SMALL_3M}


# --------------------------------------------------------------------------------------------------
# TRL side (runs inside benchmarks/.venv-trl; imports nothing from rlhf_course)
# --------------------------------------------------------------------------------------------------


def trl_worker(folder: Path) -> None:
    import math

    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    setup = json.loads((folder / "setup.json").read_text())
    torch.set_num_threads(setup["threads"])
    rows = json.loads((folder / "pairs.json").read_text())

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter())

    def one_repetition(message: dict) -> dict:
        tokenizer = AutoTokenizer.from_pretrained(folder / "sft")
        model = AutoModelForSequenceClassification.from_pretrained(folder / "sft", num_labels=1,
                                                                   use_safetensors=True)
        torch.manual_seed(0)
        torch.nn.init.normal_(model.score.weight, std=1 / math.sqrt(model.config.hidden_size + 1))
        loaded = time.perf_counter()
        args = RewardConfig(
            output_dir=str(folder / "trl-out"), per_device_train_batch_size=setup["batch_size"],
            num_train_epochs=1, learning_rate=setup["lr"], lr_scheduler_type="cosine",
            warmup_steps=setup["warmup_steps"], max_grad_norm=1.0, bf16=False,
            gradient_checkpointing=message["gradient_checkpointing"],  # TRL's name; transformers 5 maps it
            max_length=setup["max_len"],
            report_to="none", save_strategy="no", logging_steps=10_000, disable_tqdm=True, use_cpu=True,
            dataloader_num_workers=0, seed=0,
        )
        steps = StepTimes()
        trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                processing_class=tokenizer, callbacks=[steps])
        ready = time.perf_counter()
        trainer.train()
        done = time.perf_counter()
        step_s = [b - a for a, b in zip(steps.times, steps.times[1:])]
        return {"train_s": done - ready, "init_s": ready - loaded, "steps": len(steps.times),
                "step_s": sorted(step_s)[len(step_s) // 2], "pairs": len(rows),
                "checkpointing": bool(trainer.model.is_activation_checkpointing)}

    common.worker_loop(one_repetition)


# --------------------------------------------------------------------------------------------------
# Course side and the comparison (main venv)
# --------------------------------------------------------------------------------------------------


def make_pairs(n: int) -> list[dict]:
    """n preference pairs from generated demonstrations: two different answers, the first called chosen."""
    from rlhf_course.world import make_demonstrations

    demos = make_demonstrations(2 * n, seed=1)
    return [{"prompt": demos[2 * i]["prompt"], "chosen": demos[2 * i]["response"],
             "rejected": demos[2 * i + 1]["response"]} for i in range(n)]


def make_ranking_pairs(n: int, k: int = 4) -> list[dict]:
    """About n pairs as the course makes them (notebook 03): K answers per prompt ranked, every pair of a
    ranking a preference pair (K(K-1)/2 per prompt), the earlier-ranked answer chosen."""
    from rlhf_course.world import make_demonstrations

    per_prompt = k * (k - 1) // 2
    demos = make_demonstrations(k * -(-n // per_prompt), seed=1)
    pairs = []
    for first in range(0, len(demos), k):
        answers = [d["response"] for d in demos[first : first + k]]
        pairs += [{"prompt": demos[first]["prompt"], "chosen": answers[i], "rejected": answers[j]}
                  for i in range(k) for j in range(i + 1, k)]
    return pairs[:n]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", choices=["pairs", "rankings"], default="pairs",
                        help="independent pairs (one per prompt), or the course's data: all pairs of rankings "
                             "of 4 answers (6 per prompt; ours scores each distinct answer once)")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each process (see common)")
    parser.add_argument("--no-trl-defaults", action="store_true", help="skip the gradient-checkpointing TRL arm")
    parser.add_argument("--output", default=None, help="file under benchmarks/results/ ('' = none)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return trl_worker(Path(args.worker))

    import torch

    from rlhf_course.config import RewardConfig
    from rlhf_course.phases.reward import init_reward_model, train_reward_model
    from rlhf_course.world.tokenizer import chat_prompt

    common.set_threads(args.threads)
    tokenizer = common.make_tokenizer()
    base = common.make_model(tokenizer, MODELS[args.model])
    pairs = make_pairs(args.pairs) if args.data == "pairs" else make_ranking_pairs(args.pairs)
    config = RewardConfig(epochs=1.0, batch_size=args.batch_size)

    with tempfile.TemporaryDirectory(prefix="bench-reward-") as tmp:
        folder = Path(tmp)
        common.save_folder(base, tokenizer, folder / "sft")
        # TRL gets the same text: prompt with the chat template, answer; its trainer appends EOS as ours does.
        (folder / "pairs.json").write_text(json.dumps(
            [{"prompt": chat_prompt(tokenizer, p["prompt"]), "chosen": p["chosen"], "rejected": p["rejected"]}
             for p in pairs]))
        (folder / "setup.json").write_text(json.dumps({
            "threads": args.threads, "batch_size": args.batch_size, "lr": config.lr,
            "warmup_steps": config.warmup_steps, "max_len": config.max_len}))
        model = init_reward_model(folder / "sft", tokenizer)
        print(f"reward model: {common.count_parameters(model):,} parameters; {len(pairs)} pairs; "
              f"batch {args.batch_size} pairs; torch threads {torch.get_num_threads()}")
        worker = common.Worker(common.TRL_PYTHON, Path(__file__), [str(folder)])
        print(f"TRL worker: {worker.info}")

        def ours() -> dict:
            model = init_reward_model(folder / "sft", tokenizer)
            history, seconds = common.timed(train_reward_model, model, tokenizer, pairs, config, seed=0)
            ends = [h["elapsed_s"] for h in history]
            step_s = sorted(b - a for a, b in zip(ends, ends[1:]))
            return {"train_s": seconds, "init_s": 0.0, "steps": len(history), "step_s": step_s[len(step_s) // 2],
                    "pairs": len(pairs), "checkpointing": False}

        arms = {"rlhf_course": ours, "trl": lambda: worker.call({"gradient_checkpointing": False})}
        if not args.no_trl_defaults:
            arms["trl-defaults"] = lambda: worker.call({"gradient_checkpointing": True})
        print("warm-up (untimed)")
        for arm in arms.values():
            arm()
        results = common.interleave(arms, args.repetitions)
        worker.close()

    rows = []
    ours_pairs_s = common.median([r["pairs"] / r["train_s"] for r in results["rlhf_course"]])
    for name, reps in results.items():
        pairs_s = common.median([r["pairs"] / r["train_s"] for r in reps])
        step = common.median([r["step_s"] for r in reps])
        rows.append([name, reps[0]["steps"], round(common.median([r["train_s"] for r in reps]), 2),
                     round(pairs_s, 1), round(step, 3), round(args.batch_size / step, 1),
                     round(common.median([r["init_s"] for r in reps]), 2), reps[0]["checkpointing"],
                     f"{ours_pairs_s / pairs_s:.2f}x"])
    headers = ["arm", "steps", "train s", "pairs/s", "step s", "pairs/s (steady)", "TRL init s",
               "activation checkpointing", "ours faster by"]
    text = common.table(headers, rows)
    print(text)
    output = args.output if args.output is not None else \
        f"reward_{args.model}{'_rankings' if args.data == 'rankings' else ''}.md"
    if output:
        header = common.machine_header("Reward-model training: rlhf_course vs TRL RewardTrainer", {
            "model": f"untrained Llama ({args.model}: {MODELS[args.model]}) + scalar head, "
                     f"{common.count_parameters(model):,} parameters, fp32, CPU",
            "workload": f"{len(pairs)} pairs ({args.data}), {args.batch_size} pairs per step, 1 epoch, "
                        f"{args.repetitions} interleaved repetitions per arm after one warm-up each, medians",
            "environment (ours)": common.environment_info(torch),
            "environment (TRL worker)": worker.info,
            "arms": "trl = RewardTrainer with gradient_checkpointing=False, bf16=False; trl-defaults = TRL's "
                    "default gradient_checkpointing=True, bf16=False",
        })
        path = common.write_result(output, header + "\n" + text + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
