"""How many operations one fixed-shape decoding step dispatches (the GPU sampler's step, replayed as a CUDA graph).

On a GPU a small model's decoding step is launch-bound: each non-view operation is (at least) one kernel of a few
microseconds whatever its size, so the count is a proxy for the step's time there. Counted on any device (CPU
here) with a `TorchDispatchMode`, for the profile's model with bf16 weights at batch 8. To compare versions, run
it with `PYTHONPATH` set to another checkout.

    .venv/bin/python experiments/count_step_ops.py [--profile gpu]
"""

import argparse
import collections

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import rlhf_course
from rlhf_course import world
from rlhf_course.config import get_profile
from rlhf_course.engine import fast_decoding, generation, models
from rlhf_course.world import tokenizer

VIEWS = {"view", "_unsafe_view", "transpose", "t", "slice", "select", "unsqueeze", "squeeze", "expand", "as_strided",
         "alias", "split", "split_with_sizes", "chunk", "detach", "permute", "unbind", "narrow", "lift_fresh", "_reshape_alias"}


class Count(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu")
    profile = get_profile(parser.parse_args().profile)
    tok = tokenizer.train_tokenizer([d["text"] for d in world.make_corpus(2000)], profile.model.vocab_size)
    model = models.build_model(profile.model, tok).eval().to(torch.bfloat16)
    ids, mask = generation.encode_prompts(tok, world.make_prompts(8, "test"))
    decoding = fast_decoding.FixedShapeDecoding(model, 8, -(-ids.shape[1] // 8) * 8, 6, 1.0, tok.eos_token_id)
    with torch.no_grad():
        decoding.run(ids, mask, torch.Generator().manual_seed(0))
        decoding.column.fill_(1)  # back to the first step's counters (run advanced them)
        decoding.slot.fill_(decoding.P)
        with Count() as count:
            decoding.step()
    kernels = {name: n for name, n in count.ops.items() if name not in VIEWS}
    print(f"rlhf_course from {rlhf_course.__file__}; profile {profile.name}")
    print(f"operations per decoding step: {sum(kernels.values())} (and {sum(count.ops.values()) - sum(kernels.values())} views)")
    print(", ".join(f"{name} {n}" for name, n in sorted(kernels.items(), key=lambda item: -item[1])))


if __name__ == "__main__":
    main()
