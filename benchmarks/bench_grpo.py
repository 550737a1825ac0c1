"""One GRPO step on a fixed workload: `rlhf_course.phases.grpo.train_grpo` vs TRL 1.16's `trl.GRPOTrainer`.

Workload (both sides): 8 prompts per step, K = 4 answers each (32 answers), up to 32 new tokens at
temperature 1.0 (plain sampling: top-k 0, top-p 1), stop at EOS; a program reward (`word_reward` below, the
same function on both sides: the share of the instruction's words that appear in the answer); group
advantages (r − mean) / (std + 1e-4) with the sample std; 2 optimisation passes over the 32 answers in
minibatches of 16 (4 optimizer steps per GRPO step), the clipped loss (ε = 0.2) with GRPO's per-answer
length normalisation, the k3 KL to the reference in the loss (β = 0.05), lr 1e-4 decaying linearly to 0,
gradient clipping at 1.0, fp32 on CPU, no activation checkpointing.
Policy and reference: the same untrained Llama (default the course's tiny profile, hidden 128, 4 layers,
4 heads, FFN 512; `--model 3m` for bench_ppo's hidden 192, 6 layers), max_seq_len 256.

Settings, rlhf_course `GRPOConfig` → TRL `GRPOConfig`:
- prompts × answers: `prompts_per_iteration=8`, `group_size=4` → `num_generations=4`, a generation batch of
  32 (`per_device_train_batch_size=16` × `steps_per_generation=2`);
- passes and minibatches: `epochs=2`, `minibatch_size=16` → `num_iterations=2`, `per_device_train_batch_size=16`,
  `gradient_accumulation_steps=1`;
- advantage and loss: `advantage="grpo"` → `scale_rewards="group"`, `loss_normalization="answer_length"` →
  `loss_type="grpo"`;
- KL: `kl_coef=0.05`, `kl_in="loss"` (k3) → `beta=0.05` (k3), `use_bias_correction_kl=False` (TRL's default
  multiplies the KL by the ratio; ours does not);
- clipping, lr: `clip_range=0.2`, `lr=1e-4`, `max_grad_norm=1.0` → `epsilon=0.2`, `learning_rate=1e-4`,
  `max_grad_norm=1.0` (both decay the lr linearly to 0);
- answers: `max_new_tokens=32`, `temperature=1.0` → `max_completion_length=32`, `temperature=1.0`, `top_k=0`,
  `top_p=1.0`;
- reward: `verifier=word_reward`, `missing_eos_penalty=0` → `reward_funcs=[word_reward on the "request" column]`;
- extras off: no `evaluate_gold` → `activation_checkpointing=False` (TRL's GRPO default is on), `bf16=False`
  (its default is on), `use_vllm=False`, `use_cpu=True`, `report_to="none"`, `save_strategy="no"`,
  `log_completions=False`, `logging_steps` beyond the run.

Both sides see the same prompt token ids (the course's chat template, tokenised without special tokens; the
worker checks that TRL's own tokenisation of the chat text gives the same ids) and draw 8 distinct prompts per
step from the same pool of 256. Every repetition loads fresh copies of the same saved weights and runs
`--steps` GRPO steps. The time of a step (sampling + scoring + update) is the gap between consecutive
per-step timestamps: ours from `on_iteration` (the first step: `history[0]["elapsed_s"]`, counted from just
before the loop, to 10 ms); TRL's from a `TrainerCallback`'s `on_train_begin` and every 4th `on_step_end` (a
GRPO step is `steps_per_generation × num_iterations` = 4 TRL optimizer steps; TRL generates and scores in
the first of them). The first step of a repetition carries one-time costs and is reported separately; the
headline median is over steps 2..n of all repetitions.

Differences that remain (by design of each library, not of this benchmark):
- sampling: TRL calls HF `generate` (the batch is kept until every row ends; TRL cuts after the first EOS
  afterwards); ours its own sampler (finished rows dropped from the batch and the KV cache). An untrained
  model almost never emits EOS, so here both nearly always write 32 tokens (the table's mean length);
- log-probs: TRL's forwards pass no position ids (default positions, also under left padding) and use TRL's
  fused LM head (log-probs of the completion positions only, without materialising the logits); ours pass
  padding-aware positions and compute the logits of every position, then slice the answer's;
- ours asserts that the ratio is 1 in the first minibatch and keeps a NaN guard (a copy of the weights
  before training, a finiteness check of each loss); TRL logs more per-step metrics (clip ratios, reward
  std, lengths) with cross-process reductions;
- minibatches: ours reshuffles whole groups every epoch; TRL shuffles the 32 answers once per generation
  and reuses the same two minibatches in both passes;
- optimizer: ours AdamW β = (0.9, 0.95), ε = 1e-5 (not fused on CPU), the lr set per step; TRL AdamW
  `adamw_torch_fused`, β = (0.9, 0.999), ε = 1e-8, a linear LambdaLR; the learning rate only changes values;
- TRL tokenises each generation batch's prompt texts itself (ours tokenises its prompts each step too).

    nice -n 10 .venv/bin/python benchmarks/bench_grpo.py [--model tiny|3m] [--repetitions 5] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import common  # noqa: E402  (standard library only)

TRL_GRPO_PYTHON = common.BENCH_DIR / ".venv-trl-grpo" / "bin" / "python"
MODELS = {"tiny": common.TINY, "3m": common.SMALL_3M}
WORKLOAD = dict(prompts=8, group_size=4, new_tokens=32, temperature=1.0, epochs=2, minibatch=16, kl_coef=0.05,
                clip_range=0.2, lr=1e-4, max_grad_norm=1.0, pool=256)
_WORD = re.compile(r"[a-z]+")
# the TRL GRPOConfig fields the result file lists, as the trainer saw them
TRL_SETTINGS = ("num_generations", "generation_batch_size", "per_device_train_batch_size", "steps_per_generation",
                "gradient_accumulation_steps", "num_iterations", "max_completion_length", "temperature", "top_k",
                "top_p", "beta", "use_bias_correction_kl", "loss_type", "scale_rewards", "epsilon", "learning_rate",
                "lr_scheduler_type", "max_grad_norm", "optim", "activation_checkpointing", "bf16", "use_vllm",
                "use_cpu", "max_steps")


def word_reward(prompt: str, answer: str) -> float:
    """The program reward, the same code on both sides: the share of the instruction's distinct words that
    appear in the answer (lower-case letters only), in [0, 1]."""
    wanted = set(_WORD.findall(prompt.lower()))
    found = set(_WORD.findall(answer.lower()))
    return len(wanted & found) / max(1, len(wanted))


# --------------------------------------------------------------------------------------------------
# TRL side (runs inside benchmarks/.venv-trl-grpo; imports nothing from rlhf_course)
# --------------------------------------------------------------------------------------------------


def trl_worker(folder: Path) -> None:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    setup = json.loads((folder / "setup.json").read_text())
    torch.set_num_threads(setup["threads"])
    w = setup["workload"]
    data = json.loads((folder / "prompts.json").read_text())  # {"request", "chat", "ids"}
    per_step = w["prompts"] * w["group_size"] // w["minibatch"] * w["epochs"]  # TRL optimizer steps per GRPO step

    class Clock(TrainerCallback):
        def __init__(self):
            self.marks = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.marks.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step % per_step == 0:
                self.marks.append(time.perf_counter())

    scored = []  # (reward, length, ended) of every answer, recorded by the reward function

    def reward_func(prompts, completions, completion_ids, request, **kwargs):
        rewards = [word_reward(r, c) for r, c in zip(request, completions)]
        eos = tokenizer.eos_token_id
        scored.extend((r, len(ids), bool(ids) and ids[-1] == eos) for r, ids in zip(rewards, completion_ids))
        return rewards

    tokenizer = AutoTokenizer.from_pretrained(folder / "sft")

    def one_repetition(message: dict) -> dict:
        scored.clear()
        policy = AutoModelForCausalLM.from_pretrained(folder / "sft", use_safetensors=True)
        dataset = Dataset.from_dict({"prompt": data["chat"], "request": data["request"]})
        args = GRPOConfig(
            output_dir=str(folder / "trl-out"), num_generations=w["group_size"],
            per_device_train_batch_size=w["minibatch"], gradient_accumulation_steps=1,
            steps_per_generation=w["prompts"] * w["group_size"] // w["minibatch"], num_iterations=w["epochs"],
            max_completion_length=w["new_tokens"], temperature=w["temperature"], top_k=0, top_p=1.0,
            beta=w["kl_coef"], use_bias_correction_kl=False, loss_type="grpo", scale_rewards="group",
            epsilon=w["clip_range"], learning_rate=w["lr"], max_grad_norm=w["max_grad_norm"],
            max_steps=per_step * message["steps"], activation_checkpointing=False, bf16=False, use_vllm=False,
            use_cpu=True, report_to="none", save_strategy="no", logging_steps=10_000, log_completions=False,
            disable_tqdm=True, seed=message["seed"],
        )
        clock = Clock()
        start = time.perf_counter()
        trainer = GRPOTrainer(model=policy, reward_funcs=[reward_func], args=args, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[clock])
        trainer.remove_callback(PrinterCallback)
        init_s = time.perf_counter() - start
        same_ids = trainer._tokenize_prompts(data["chat"][:16])[0] == data["ids"][:16]
        trainer.train()
        n = len(scored)
        return {"step_s": [b - a for a, b in zip(clock.marks, clock.marks[1:])], "init_s": init_s,
                "mean_reward": sum(s[0] for s in scored) / n, "mean_length": sum(s[1] for s in scored) / n,
                "eos_fraction": sum(s[2] for s in scored) / n, "answers": n,
                "checkpointing": bool(policy.is_activation_checkpointing), "same_prompt_ids": same_ids,
                "reference": trainer.ref_model is not None,
                "settings": {k: str(getattr(trainer.args, k)) for k in TRL_SETTINGS}}

    common.worker_loop(one_repetition)


# --------------------------------------------------------------------------------------------------
# Course side and the comparison (main venv)
# --------------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="GRPO steps per repetition")
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each process (see common)")
    parser.add_argument("--output", default="grpo.md", help="file under benchmarks/results/ ('' = none)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return trl_worker(Path(args.worker))
    if not TRL_GRPO_PYTHON.exists():
        raise SystemExit(f"{TRL_GRPO_PYTHON} not found: create the TRL GRPO venv first (see benchmarks/README.md):\n"
                         "  python -m venv benchmarks/.venv-trl-grpo && "
                         "benchmarks/.venv-trl-grpo/bin/pip install -r benchmarks/requirements-trl-grpo.txt")

    import torch
    from transformers import AutoModelForCausalLM

    from rlhf_course.config import GRPOConfig
    from rlhf_course.engine.generation import encode_prompts
    from rlhf_course.phases.grpo import train_grpo
    from rlhf_course.world import make_prompts
    from rlhf_course.world.tokenizer import chat_prompt

    common.set_threads(args.threads)
    w = WORKLOAD
    tokenizer = common.make_tokenizer()
    base = common.make_model(tokenizer, MODELS[args.model], max_seq_len=256)
    prompts = make_prompts(w["pool"], "train", seed=0)
    config = GRPOConfig(iterations=args.steps, prompts_per_iteration=w["prompts"], group_size=w["group_size"],
                        advantage="grpo", loss_normalization="answer_length", minibatch_size=w["minibatch"],
                        epochs=w["epochs"], lr=w["lr"],
                        kl_coef=w["kl_coef"], kl_in="loss", clip_range=w["clip_range"], missing_eos_penalty=0.0,
                        verifier_weight=1.0, temperature=w["temperature"], max_new_tokens=w["new_tokens"],
                        max_grad_norm=w["max_grad_norm"], eval_every=10**9)
    encode_prompts(tokenizer, prompts, 256 - w["new_tokens"])  # all prompts fit

    with tempfile.TemporaryDirectory(prefix="bench-grpo-") as tmp:
        folder = Path(tmp)
        common.save_folder(base, tokenizer, folder / "sft")
        # TRL gets the same prompts as chat text (it tokenises them itself; the worker checks the ids agree)
        # and the plain instruction in a "request" column for the reward function.
        chat = [chat_prompt(tokenizer, p) for p in prompts]
        ids = [tokenizer(c, add_special_tokens=False).input_ids for c in chat]
        (folder / "prompts.json").write_text(json.dumps({"request": prompts, "chat": chat, "ids": ids}))
        (folder / "setup.json").write_text(json.dumps({"threads": args.threads, "workload": w}))
        size = common.count_parameters(base)
        lengths = sorted(len(i) for i in ids)
        print(f"parameters: {size}; prompt tokens {lengths[0]}-{lengths[-1]}; torch threads {torch.get_num_threads()}")
        worker = common.Worker(TRL_GRPO_PYTHON, Path(__file__), [str(folder)])
        print(f"TRL worker: {worker.info}")
        seeds = iter(range(10**6))

        def ours() -> dict:
            policy = AutoModelForCausalLM.from_pretrained(folder / "sft", use_safetensors=True)
            reference = AutoModelForCausalLM.from_pretrained(folder / "sft", use_safetensors=True)
            marks = []  # perf_counter after each step; `elapsed_s` is rounded to 10 ms, so only the first uses it
            state = train_grpo(policy, reference, tokenizer, prompts, config, verifier=word_reward, seed=next(seeds),
                               on_iteration=lambda state: marks.append(time.perf_counter()))
            h = state.history
            return {"step_s": [h[0]["elapsed_s"]] + [b - a for a, b in zip(marks, marks[1:])], "init_s": 0.0,
                    "mean_reward": sum(r["verifier"] for r in h) / len(h),
                    "mean_length": sum(r["mean_length"] for r in h) / len(h),
                    "eos_fraction": sum(r["ended_fraction"] for r in h) / len(h)}

        def trl() -> dict:
            result = worker.call({"steps": args.steps, "seed": next(seeds)})
            assert result["same_prompt_ids"], "TRL tokenised the prompts to other ids than ours"
            assert not result["checkpointing"] and result["reference"], result
            assert result["answers"] == args.steps * w["prompts"] * w["group_size"], result
            return result

        arms = {"rlhf_course": ours, "trl": trl}
        print("warm-up (untimed)")
        for arm in arms.values():
            arm()
        results = common.interleave(arms, args.repetitions)
        worker.close()

    steady = {name: common.median([s for r in reps for s in r["step_s"][1:]]) for name, reps in results.items()}
    rows = []
    for name, reps in results.items():
        rows.append([
            name, len(reps) * (args.steps - 1), round(steady[name], 3),
            round(common.median([s for r in reps for s in r["step_s"]]), 3),
            round(common.median([r["step_s"][0] for r in reps]), 3),
            round(common.median([r["init_s"] for r in reps]), 2),
            round(common.median([r["mean_length"] for r in reps]), 1),
            round(common.median([r["eos_fraction"] for r in reps]), 3),
            round(common.median([r["mean_reward"] for r in reps]), 3),
            f"{steady[name] / steady['rlhf_course']:.2f}x",
        ])
    headers = ["arm", "steps timed", "median s/step (2..n)", "median s/step (all)", "first step s", "init s",
               "mean answer tokens", "answers with EOS", "mean reward", "time vs ours"]
    text = common.table(headers, rows)
    print(text)
    if args.output:
        trl_settings = ", ".join(f"{k}={v}" for k, v in results["trl"][0]["settings"].items())
        header = common.machine_header("One GRPO step: rlhf_course.phases.grpo.train_grpo vs TRL GRPOTrainer", {
            "model": f"untrained Llama {MODELS[args.model]} ({args.model}), max_seq_len 256; {size} parameters; "
                     f"policy + reference; fp32, CPU; prompts {lengths[0]}-{lengths[-1]} tokens",
            "workload": f"{w}; {args.steps} steps per repetition, {args.repetitions} interleaved repetitions per "
                        "arm after one warm-up each; reward: word_reward (program reward, same code both sides)",
            "TRL GRPOConfig": trl_settings,
            "environment (ours)": common.environment_info(torch),
            "environment (TRL worker)": worker.info,
        })
        path = common.write_result(args.output, header + "\n" + text + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
