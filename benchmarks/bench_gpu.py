"""GPU benchmarks for the gpu profile: sampler vs `model.generate`, pretraining throughput and MFU, PPO update.

1. Sampler: `rlhf_course.engine.generation.sample` (static KV cache, each decoding step replayed as a CUDA graph) vs
   `model.generate` on the same untrained gpu-profile Llama with bf16 weights (both sides), the same left-padded
   chat prompts, batch 256 × 64 new tokens, plain sampling at T = 1 (generate: do_sample, top_k=0, top_p=1).
   Scenario "fixed": the EOS logit is -inf, so every answer is exactly 64 tokens on both sides. With
   `--compile`, a third arm: the same decoding with its step `torch.compile`d before the graph is recorded.
2. Pretraining: the profile's model and batch (`profile.pretrain`), fp32 master weights, bf16 autocast, fused
   AdamW; tokens/s over timed steps after warm-up. Model FLOP utilisation = achieved FLOP/s / 790 TFLOP/s
   (the H100's measured dense bf16 matrix rate), with FLOPs per token = 6·N + 12·L·d·T (N parameters, L layers,
   d width, T block length: Kaplan/PaLM's count, attention not halved for causality). Eager and, with
   `--compile`, `torch.compile(model)`.
3. PPO: seconds per `train_ppo` iteration with the profile's PPO settings on untrained gpu-profile models
   (policy, reference, reward and value), median of iterations after the first.

    python3 benchmarks/bench_gpu.py [--profile gpu] [--compile] [--output gpu.md]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import common
import torch
from transformers import AutoModelForSequenceClassification, GenerationConfig

from rlhf_course.config import get_profile
from rlhf_course.engine.generation import encode_prompts, sample
from rlhf_course.world import make_prompts

PEAK_FLOPS = 790e12  # measured dense bf16 matrix rate of one H100


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def compiled_decoding(model, ids, new_tokens: int, eos: int):
    """A fixed-shape decoder of its own whose step is `torch.compile`d before it is recorded as a CUDA graph:
    inductor fuses the step's ~300 small operations (norms, rotary, softmax, casts) into fewer kernels, and the
    graph launches those at once. Benchmark only: the course's sampler records the eager step."""
    from rlhf_course.engine.fast_decoding import FixedShapeDecoding

    decoding = FixedShapeDecoding(model, ids.shape[0], -(-ids.shape[1] // 8) * 8, new_tokens, 1.0, eos)
    decoding.step = torch.compile(decoding.step, dynamic=False)  # capture() and run() call self.step
    return decoding


def bench_sampler(model, tokenizer, batch: int, new_tokens: int, repetitions: int, compile_step: bool) -> list:
    eos = tokenizer.eos_token_id

    def no_eos(module, inputs, logits):
        logits[..., eos] = -math.inf
        return logits

    handle = model.lm_head.register_forward_hook(no_eos)
    ids, mask = (x.to(model.device) for x in encode_prompts(tokenizer, make_prompts(batch, "train", seed=0)))
    config = GenerationConfig(do_sample=True, top_k=0, top_p=1.0, temperature=1.0, max_new_tokens=new_tokens,
                              eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
    generator = torch.Generator(device=model.device).manual_seed(0)
    arms = {
        "sample": lambda: sample(model, ids, mask, new_tokens, 1.0, eos, tokenizer.pad_token_id, generator),
        "generate": lambda: model.generate(input_ids=ids.masked_fill(mask == 0, 0), attention_mask=mask,
                                           generation_config=config),
    }
    if compile_step:  # (without sample's few operations after decoding: cutting after EOS, the Rollout)
        decoding = compiled_decoding(model, ids, new_tokens, eos)
        arms["sample, compiled step"] = lambda: decoding.run(ids, mask, generator)
    seconds, first_call = {name: [] for name in arms}, {}
    with torch.no_grad():
        for name, fn in arms.items():
            try:
                first_call[name] = timed(fn)[1]  # warm-up: recording the graph (and compiling)
            except Exception as error:  # report, don't lose the other arms
                print(f"{name} failed: {type(error).__name__}: {str(error)[:300]}")
                seconds.pop(name)
        for repetition in range(repetitions):
            order = list(seconds) if repetition % 2 == 0 else list(seconds)[::-1]
            for name in order:
                seconds[name].append(timed(arms[name])[1])
        if "sample, compiled step" in seconds:  # the same uniforms give the same tokens up to bf16 rounding
            eager = sample(model, ids, mask, new_tokens, 1.0, eos, tokenizer.pad_token_id,
                           torch.Generator(device=model.device).manual_seed(1)).response_ids
            compiled = decoding.run(ids, mask, torch.Generator(device=model.device).manual_seed(1))[0]
            same = (eager == compiled[:, : eager.shape[1]]).float().mean().item()
            print(f"compiled step: {same:.1%} of the tokens equal to the eager step's (same random numbers)")
    handle.remove()
    tokens = batch * new_tokens
    theirs = statistics.median(seconds["generate"])
    rows = []
    for name, times in seconds.items():
        median = statistics.median(times)
        print(f"sampler: {name} {median:.3f} s ({theirs / median:.1f}x generate), first call {first_call[name]:.1f} s")
        rows.append([name, f"{batch} × {new_tokens}", round(tokens / median), f"{theirs / median:.1f}x",
                     round(median, 4), round(1000 * median / new_tokens, 3), round(first_call[name], 1)])
    return rows


def bench_pretraining(profile, tokenizer, compile_model: bool, steps: int = 12) -> list:
    from rlhf_course.engine.models import build_model
    from rlhf_course.phases.pretrain import next_token_loss

    config = profile.pretrain
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(profile.model, tokenizer).to(device).train()
    n_params = common.count_parameters(model)
    flops_per_token = 6 * n_params + 12 * profile.model.num_layers * profile.model.hidden_size * config.block_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    forward = torch.compile(model) if compile_model else model
    batch = torch.randint(0, len(tokenizer), (config.batch_size, config.block_size), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = forward(input_ids=batch).logits
        loss = next_token_loss(logits, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    _, warmup_s = timed(lambda: [step() for _ in range(3)])
    _, seconds = timed(lambda: [step() for _ in range(steps)])
    tokens_per_s = steps * config.batch_size * config.block_size / seconds
    mfu = tokens_per_s * flops_per_token / PEAK_FLOPS
    name = "compiled" if compile_model else "eager"
    print(f"pretraining ({name}): {tokens_per_s:,.0f} tokens/s, MFU {100 * mfu:.1f}% (warm-up {warmup_s:.1f} s)")
    return [[name, f"{n_params / 1e6:.1f} M", f"{config.batch_size} × {config.block_size}", round(tokens_per_s),
             f"{100 * mfu:.1f}%", round(1000 * seconds / steps, 1), round(warmup_s, 1)]]


def bench_ppo(profile, tokenizer, iterations: int = 4) -> list:
    import dataclasses
    import tempfile

    from rlhf_course.engine.models import build_model
    from rlhf_course.phases.ppo import train_ppo

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    policy = build_model(profile.model, tokenizer).to(device)
    reference = build_model(profile.model, tokenizer).to(device).eval()
    with tempfile.TemporaryDirectory() as folder:
        common.save_folder(build_model(profile.model, tokenizer), tokenizer, common.Path(folder))
        reward = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1).to(device).eval()
        value = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1).to(device)
    reward.config.reward_mean, reward.config.reward_std = 0.0, 1.0
    config = dataclasses.replace(profile.ppo, iterations=iterations)
    prompts = make_prompts(config.prompts_per_iteration * 4, "train", seed=0)
    state = train_ppo(policy, reference, reward, value, tokenizer, prompts, config)
    elapsed = [r["elapsed_s"] for r in state.history]
    per_iteration = statistics.median(b - a for a, b in zip(elapsed, elapsed[1:]))
    print(f"PPO: {per_iteration:.3f} s per iteration (first {elapsed[0]:.2f} s)")
    return [[f"{config.prompts_per_iteration} prompts × ≤{config.max_new_tokens} tokens, {config.epochs} epochs, "
             f"minibatch {config.minibatch_size}", round(per_iteration, 3), round(elapsed[0], 3)]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--compile", action="store_true",
                        help="also time pretraining and the sampler's decoding step with torch.compile")
    parser.add_argument("--only", nargs="+", choices=["sampler", "pretraining", "ppo"],
                        default=["sampler", "pretraining", "ppo"], help="which benchmarks to run")
    parser.add_argument("--output", default="gpu.md", help="file under benchmarks/results/ ('' = none)")
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    profile = get_profile(args.profile)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = common.make_tokenizer(vocab_size=profile.model.vocab_size)
    bf16_model = common.make_model(tokenizer, dict(
        hidden_size=profile.model.hidden_size, num_layers=profile.model.num_layers,
        num_heads=profile.model.num_heads, intermediate_size=profile.model.intermediate_size),
        max_seq_len=profile.model.max_seq_len).to(device, torch.bfloat16)
    sections = []
    if "sampler" in args.only:
        sections.append(common.table(
            ["sampler", "batch × new tokens", "tokens/s", "vs generate", "median s", "ms/step", "first call s"],
            bench_sampler(bf16_model, tokenizer, args.batch, args.new_tokens, args.repetitions, args.compile)))
        print(sections[-1])
    del bf16_model
    rows = bench_pretraining(profile, tokenizer, compile_model=False) if "pretraining" in args.only else []
    ppo_rows = bench_ppo(profile, tokenizer) if "ppo" in args.only else []
    if args.compile and "pretraining" in args.only:  # last: compiling takes a while; a time-out loses nothing else
        try:
            rows += bench_pretraining(profile, tokenizer, compile_model=True)
        except Exception as error:  # report, don't lose the other numbers
            print(f"torch.compile failed: {type(error).__name__}: {str(error)[:300]}")
    if rows:
        sections.append(common.table(["pretraining", "params", "batch × block", "tokens/s", "MFU", "ms/step",
                                      "warm-up s (3 steps)"], rows))
    if ppo_rows:
        sections.append(common.table(["PPO iteration", "median s", "first s"], ppo_rows))
    text = "\n\n".join(sections)
    print(text)
    if args.output:
        name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
        header = common.machine_header(f"GPU benchmarks, profile {profile.name}, {name}", {
            "sampler": f"bf16 weights both sides, batch {args.batch} × {args.new_tokens} new tokens, T = 1, "
                       f"EOS disabled (every answer full length), {args.repetitions} interleaved repetitions, medians",
            "pretraining": "fp32 weights + bf16 autocast, fused AdamW; MFU against 790 TFLOP/s",
            "environment": common.environment_info(torch),
        })
        print(f"wrote {common.write_result(args.output, header + chr(10) + text + chr(10))}")


if __name__ == "__main__":
    main()
