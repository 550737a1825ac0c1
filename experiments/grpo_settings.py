"""Notebook 07's GRPO runs at other settings, on one run's checkpoints: does a setting close the gap to PPO, or
teach what the verifier checks?

Notebook 07's first GRPO run (fresh `sft` policy, notebook 03's reward model, the profile's `GRPOConfig` with the
changes given), then its gold on the 200 evaluation prompts, beside SFT's and PPO's from that run's `report.json`.
The first variant is always the profile's own settings, so it reproduces the notebook's number (same stream).
With `--reward verifier` it is notebook 07's verifier run instead, and each row adds the share of answers that
name the requested name, animal and place and end with "The end." (SFT's shares in the header). With `--reward
place` (or any of `name`, `animal`, `place`, `ending`, `length` joined by `+`, e.g. `name+animal+place`) the
reward is only those parts of the verifier (the share of them the answer satisfies): for one part, 1 or 0, the
strongest signal one number per answer can give for it.

    RLHF_RUNS_DIR=runs/robustness-avx512/seed1 RLHF_SEED=1 python experiments/grpo_settings.py lr=3e-4 epochs=3
    RLHF_RUNS_DIR=runs/robustness-avx512/seed1 RLHF_SEED=1 python experiments/grpo_settings.py --reward verifier \
        iterations=90 kl_coef=0.0,lr=4e-4
    RLHF_RUNS_DIR=runs/robustness-avx512/seed0 python experiments/grpo_settings.py --reward place iterations=90

Each argument is one variant, `name=value[,name=value]` of `GRPOConfig` fields. Prints one row per variant.
"""

from __future__ import annotations

import dataclasses
import sys
import time

from rlhf_course import world
from rlhf_course.config import GRPOConfig, get_profile
from rlhf_course.course import report
from rlhf_course.engine import models
from rlhf_course.phases import evaluation, grpo
from rlhf_course.world import verifier


def parse_variant(text: str) -> dict:
    """`name=value[,name=value]` → changes of `GRPOConfig`, each value of its default's type."""
    defaults = GRPOConfig()
    names = [f.name for f in dataclasses.fields(GRPOConfig)]
    changes = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in names:
            raise SystemExit(f"unknown GRPOConfig field {name!r}; fields: {', '.join(names)}")
        changes[name] = type(getattr(defaults, name))(value)
    return changes


CHECKED = ("name", "animal", "place", "ending")  # the gold components the verifier checks literally too


def parts_reward(parts: list[str]):
    """Only these parts of the verifier as the reward: the share of them the answer satisfies."""
    def reward(prompt: str, answer: str) -> float:
        checked = verifier.verify_answer(prompt, answer)
        return sum(checked[part] for part in parts) / len(parts)
    reward.__name__ = "verifier_" + "_".join(parts)
    return reward


def main(argv: list[str]) -> int:
    reward_name, program_reward = None, None  # None: notebook 03's reward model
    if argv[:1] == ["--reward"]:
        reward_name, argv = (argv[1] if len(argv) > 1 else ""), argv[2:]
        parts = reward_name.split("+")
        if reward_name == "verifier":
            program_reward = verifier.verifier_reward
        elif set(parts) <= set(verifier.VERIFIED_PARTS):
            program_reward = parts_reward(parts)
        else:
            raise SystemExit("--reward must be followed by 'verifier' or some of its parts joined by '+' "
                             f"({', '.join(verifier.VERIFIED_PARTS)}); the default is the reward model")
    with_verifier = program_reward is not None
    profile = get_profile()
    variants = [{}] + [parse_variant(a) for a in argv]
    phases = report.read_report(profile.name)["phases"]
    sft_gold, ppo_gold = phases["ppo"]["sft_gold_mean"], phases["ppo"]["gold_mean"]
    reference, tok, _ = models.load_checkpoint("sft", profile.name)
    reward_model, _, _ = models.load_reward_model(profile.name)
    eval_prompts = world.prompt_set("ppo_eval", profile.grpo.eval_prompts)
    train_prompts = world.prompt_set("ppo_train", profile.grpo.train_prompt_pool)

    # as notebook 07's dashboard does, so the first variant follows its stream
    evaluate_gold = evaluation.gold_evaluator(tok, profile.sampling, eval_prompts)
    rewards = {"verifier": program_reward} if with_verifier else {"reward_model": reward_model}
    header = (f"seed {profile.seed}, runs in {models.runs_dir(profile.name)}, reward "
              f"{reward_name or 'reward model'}: SFT gold {sft_gold:.4f}, PPO {ppo_gold:.4f}")
    columns = "| variant | GRPO gold | − SFT | − PPO | KL | train s |"
    if with_verifier:
        sft_parts = evaluation.evaluate(reference, tok, profile.sampling).component_means()
        header += "; SFT's " + ", ".join(f"{part} {sft_parts[part]:.2f}" for part in CHECKED)
        columns += "".join(f" {part} |" for part in CHECKED)
    print(f"{header}\n{columns}\n" + "|---" * (columns.count("|") - 1) + "|")
    for changes in variants:
        config = dataclasses.replace(profile.grpo, **changes)
        policy, _, _ = models.load_checkpoint("sft", profile.name)
        start = time.perf_counter()
        grpo.train_grpo(policy, reference, tok, train_prompts, config, evaluate_gold=evaluate_gold, seed=profile.seed,
                        **rewards)
        seconds = time.perf_counter() - start
        result = evaluation.evaluate(policy, tok, profile.sampling, reference=reference)
        name = ", ".join(f"{k}={v}" for k, v in changes.items()) or "profile's settings"
        print(f"| {name} | {result.gold_mean:.4f} | {result.gold_mean - sft_gold:+.4f} | "
              f"{result.gold_mean - ppo_gold:+.4f} | {result.summary()['kl']:.2f} | {seconds:.0f} |"
              + ("".join(f" {result.component_means()[part]:.2f} |" for part in CHECKED) if with_verifier else ""),
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
