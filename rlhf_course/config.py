"""Profiles: the one place for every size in the course.

A profile is the course's single dial (as `n_layer` is nanoGPT's): `tiny` runs every notebook on two CPU
cores in minutes (it is what CI runs), `gpu` trains bigger models on one GPU. Choose one with the
environment variable `RLHF_PROFILE`; without it the course takes `gpu` when CUDA is present, else `tiny`.
Each phase reads its own section (`profile.pretrain`, `profile.sft`, ...).

The second dial is the seed (`RLHF_SEED`, default 0, or `python -m rlhf_course run --seed N`). It changes every
training and sampling stream of the course: model initialisation, batch order, rollouts, the simulated
annotators' noise and the evaluation samples. The generated world (corpus, demonstrations, gold judge) and the
test prompts stay the same, so two seeds are two runs of the same experiment. Another machine's floating-point
order is, in effect, another seed: a lesson the course teaches must hold for every seed, not only for 0.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelConfig:
    """A Llama-style decoder (see `rlhf_course.engine.models.build_model`)."""

    hidden_size: int = 128  # width of the residual stream
    num_layers: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads (head size = hidden_size / num_heads)
    intermediate_size: int = 512  # width of the MLP
    max_seq_len: int = 256  # longest prompt + answer the model can see
    vocab_size: int = 1024  # BPE vocabulary, special tokens included


@dataclass(frozen=True)
class WorldConfig:
    """How much of the generated world to make (see `rlhf_course.world`)."""

    corpus_documents: int = 18_000  # pretraining documents ("the internet")
    demonstrations: int = 1_500  # generated instruction → answer pairs for SFT (hand-written ones are added)
    seed: int = 0


@dataclass(frozen=True)
class PretrainConfig:
    """Next-token prediction on the corpus (notebook 01)."""

    steps: int = 300
    batch_size: int = 32  # sequences per step
    block_size: int = 128  # tokens per sequence (documents are packed)
    lr: float = 3e-3  # tiny models want high learning rates (at 1e-3 a first prototype barely learned)
    warmup_steps: int = 30
    weight_decay: float = 0.1
    heldout_documents: int = 500  # corpus documents kept out of training for the held-out loss
    compile: bool = False  # torch.compile the training forward pass (GPU: 2.2x the tokens/s, ~30 s to compile)


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on demonstrations (notebook 02)."""

    # gold over base: +0.236 after 2 epochs, +0.287 after 2.5, +0.316 after 3. The better SFT's answers are
    # harder to tell apart (reward-model accuracy 0.77 → 0.73 → 0.76), and after 3 epochs PPO exploited the
    # reward model in one of two runs (gold 0.81 → 0.74 while the reward rose)
    epochs: float = 2.5
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int = 20
    weight_decay: float = 0.0


@dataclass(frozen=True)
class SamplingConfig:
    """How every phase samples answers. Evaluation always uses these same settings, so phases compare."""

    temperature: float = 1.0  # plain sampling: no top-k/top-p, so log-probs stay exact
    max_new_tokens: int = 112  # longer answers are cut and count as "never ended"
    eval_prompts: int = 200  # held-out test prompts behind every `gold_mean`
    batch_size: int = 100  # prompts sampled at once
    seed: int = 1234  # the evaluation sampling seed (the course seed is added to it)


@dataclass(frozen=True)
class RewardConfig:
    """Reward-model data and training (notebook 03)."""

    candidate_prompts: int = 600  # train prompts whose answers get ranked (the earlier 8-run sweep, before the world
    # changed: 500 gave held-out accuracy 0.799-0.845, 600 0.823-0.857; today's: benchmarks/results/robustness_tiny*.md)
    answers_per_prompt: int = 4  # K answers per prompt, ranked best to worst
    annotator_temperature: float = 0.05  # noise of the simulated gold annotator (see annotators.GoldAnnotator)
    contrast_pairs: int = 2000  # a good story vs the same story in another mood, ranked too (notebook 03 §4)
    heldout_prompts: int = 200  # test prompts for held-out accuracy (pairs of two sft answers)
    epochs: float = 1.5  # more passes overfit (held-out accuracy 0.765 after 1 epoch, 0.716 after 4)
    batch_size: int = 32  # preference pairs per step (whole rankings: ≈ 5 prompts × 6 pairs)
    lr: float = 5e-4
    head_lr_scale: float = 5.0
    warmup_steps: int = 10
    max_len: int = 256


@dataclass(frozen=True)
class PPOConfig:
    """PPO settings (notebook 04). Defaults were found on a first prototype with 1M-parameter models."""

    # rollout → update cycles. Over the earlier 8-run sweep, before the world changed: 24 gave +0.099 to +0.131 gold
    # over SFT, 30 gave +0.103 to +0.147 (win rates 0.70-0.80); today's: benchmarks/results/robustness_tiny*.md
    iterations: int = 30
    prompts_per_iteration: int = 64  # rollout batch size
    minibatch_size: int = 32
    epochs: int = 4  # passes over each rollout batch
    lr: float = 1e-4  # policy learning rate (5e-5 barely moved the tiny policy)
    value_lr: float = 1e-4  # critic learning rate
    kl_coef: float = 0.05  # β of the per-token KL penalty
    clip_range: float = 0.2  # ε of the clipped policy objective
    value_clip_range: float = 0.2  # ε of the clipped value loss
    gamma: float = 1.0
    gae_lambda: float = 0.95
    missing_eos_penalty: float = 3.0  # in units of the normalised reward (std 1 on SFT answers)
    temperature: float = 1.0  # sampling and every log-prob use logits / temperature
    max_new_tokens: int = 112
    max_grad_norm: float = 1.0
    eval_every: int = 4  # iterations between held-out gold measurements
    eval_prompts: int = 64  # held-out prompts for the dashboard's gold curve
    train_prompt_pool: int = 2000  # train prompts to draw rollout prompts from

    def validate(self) -> None:
        """Reject settings that cannot train, before any work starts."""
        for name in ("lr", "value_lr", "kl_coef", "clip_range", "value_clip_range", "temperature",
                     "missing_eos_penalty", "gamma", "gae_lambda"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ValueError(f"PPOConfig.{name} must be a non-negative number, not {value!r}")
        if self.temperature == 0 or self.lr == 0:
            raise ValueError("PPOConfig.temperature and PPOConfig.lr must be positive")
        if self.minibatch_size > self.prompts_per_iteration or self.prompts_per_iteration % self.minibatch_size:
            raise ValueError("prompts_per_iteration must be a multiple of minibatch_size")


@dataclass(frozen=True)
class GRPOConfig:
    """RL without a critic (notebook 07): K answers per prompt, each judged against its group.

    The budget is PPO's: `prompts_per_iteration` × `group_size` = PPO's answers per iteration, for as many
    iterations (each profile sets both; a test holds them equal), so the two spend the same number of sampled
    answers. Against the reward model, one stream (seed 0,
    the sft and reward checkpoints of one run, whose PPO gained +0.142 at KL 3.8): GRPO's advantage at lr 1e-4 gained
    +0.080 gold (KL 1.6), with 4 epochs +0.096 (KL 3.4, twice the time), at lr 2e-4 +0.087 (KL 2.6); K = 8 (8
    prompts) +0.073, K = 2 (32 prompts) +0.082; Dr. GRPO at lr 2e-4 +0.098 (KL 2.4), at 4e-4 +0.097 (KL 3.6)."""

    iterations: int = 30
    prompts_per_iteration: int = 16  # distinct prompts per rollout
    group_size: int = 4  # K answers per prompt (≥ 2: the others are the baseline)
    advantage: str = "dr_grpo"  # "grpo": (r − mean)/std; "dr_grpo": r − mean; "rloo": r − mean of the others
    # how the loss averages its tokens: "answer_length" (GRPO: each answer's mean, then the answers'), "max_tokens"
    # (Dr. GRPO: every token over the same B · max_new_tokens, so long answers weigh as much per token as short ones)
    loss_normalization: str = "max_tokens"
    minibatch_size: int = 32  # answers per gradient step (whole groups)
    epochs: int = 2  # passes over each rollout batch
    lr: float = 2e-4
    kl_coef: float = 0.05  # β
    kl_in: str = "loss"  # "loss": GRPO's per-token k3 term; "reward": β·log(π/π_ref) off each answer's reward, as PPO
    clip_range: float = 0.2
    missing_eos_penalty: float = 1.0  # off the reward of an answer that never ended
    # the verifier's reward (0-1) is added to the reward model's (std 1 on SFT answers) times this: without the std
    # normalisation of GRPO's advantage, its scale sets its share
    verifier_weight: float = 2.0
    temperature: float = 1.0
    max_new_tokens: int = 112
    max_grad_norm: float = 1.0
    eval_every: int = 5
    eval_prompts: int = 64
    train_prompt_pool: int = 2000

    @property
    def answers_per_iteration(self) -> int:
        return self.prompts_per_iteration * self.group_size

    def validate(self) -> None:
        """Reject settings that cannot train, naming the setting, before any work starts."""
        if not isinstance(self.group_size, int) or self.group_size < 2:
            raise ValueError(f"GRPOConfig.group_size must be a whole number ≥ 2, not {self.group_size!r}: a group's "
                             "other answers are each answer's baseline")
        if self.advantage not in ("grpo", "dr_grpo", "rloo"):
            raise ValueError(f"GRPOConfig.advantage must be 'grpo', 'dr_grpo' or 'rloo', not {self.advantage!r}")
        if self.loss_normalization not in ("answer_length", "max_tokens"):
            raise ValueError("GRPOConfig.loss_normalization must be 'answer_length' or 'max_tokens', not "
                             f"{self.loss_normalization!r}")
        if self.kl_in not in ("loss", "reward"):
            raise ValueError(f"GRPOConfig.kl_in must be 'loss' or 'reward', not {self.kl_in!r}")
        for name in ("lr", "kl_coef", "clip_range", "missing_eos_penalty", "verifier_weight", "temperature"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ValueError(f"GRPOConfig.{name} must be a non-negative number, not {value!r}")
        if self.temperature == 0 or self.lr == 0:
            raise ValueError("GRPOConfig.temperature and GRPOConfig.lr must be positive")
        if self.answers_per_iteration % self.minibatch_size or self.minibatch_size % self.group_size:
            raise ValueError(f"GRPOConfig.minibatch_size ({self.minibatch_size}) must divide the "
                             f"{self.answers_per_iteration} answers of an iteration and hold whole groups of "
                             f"{self.group_size}")


@dataclass(frozen=True)
class DPOConfig:
    """Direct preference optimisation on the reward model's preference pairs (notebook 06)."""

    beta: float = 0.1  # strength of the implicit KL constraint to the reference
    epochs: float = 1.0
    batch_size: int = 16  # preference pairs per step
    lr: float = 1e-4
    warmup_steps: int = 10


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    expected_minutes: dict[str, float]  # per notebook, for the first cell's time estimate
    model: ModelConfig = field(default_factory=ModelConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    seed: int = 0  # the course seed (`RLHF_SEED`): every training and sampling stream, not the world

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="1M-parameter models on a laptop CPU",
        # measured on 2 CPU cores (2026-12-04, `run` alone on an AMD EPYC: 18.8 min in all); 05 takes about half a
        # minute once its experiments are cached
        expected_minutes={"00": 0.1, "01": 1.8, "02": 0.8, "03": 2.0, "04": 3.6, "05": 4.5, "06": 1.2,
                          "07": 4.8},
    ),
    "gpu": Profile(
        name="gpu",
        description="30M-parameter models on one GPU",
        expected_minutes={"00": 0.2, "01": 1.0, "02": 0.5, "03": 0.7, "04": 1.2, "05": 2.5, "06": 0.5,
                          "07": 1.5},
        model=ModelConfig(hidden_size=512, num_layers=8, num_heads=8, intermediate_size=2048, max_seq_len=256),
        world=WorldConfig(corpus_documents=200_000, demonstrations=20_000),
        pretrain=PretrainConfig(steps=1500, batch_size=128, block_size=256, lr=1e-3, warmup_steps=100,
                                compile=True),
        sft=SFTConfig(epochs=2.0, batch_size=64, lr=3e-4, warmup_steps=50),
        sampling=SamplingConfig(batch_size=200),
        # a 30x larger model takes smaller steps; rollouts are cheap on a GPU, so batches are larger
        reward=RewardConfig(candidate_prompts=1000, epochs=2.0, batch_size=64, lr=2e-4),
        ppo=PPOConfig(iterations=40, prompts_per_iteration=128, minibatch_size=64, lr=3e-5, value_lr=1e-4,
                      eval_prompts=128),
        dpo=DPOConfig(batch_size=32, lr=3e-5),
        # PPO's budget (40 × 128 answers) in groups of 4, at PPO's ratio of learning rates between the profiles;
        # not yet run on a GPU
        grpo=GRPOConfig(iterations=40, prompts_per_iteration=32, lr=6e-5, eval_prompts=128),
    ),
}


class ProfileError(ValueError):
    """An unknown profile name or a seed that is not a whole number."""


def default_profile_name() -> str:
    """`RLHF_PROFILE` if set, else `gpu` when CUDA is available, else `tiny`."""
    name = os.environ.get("RLHF_PROFILE")
    if name:
        return name
    import torch

    return "gpu" if torch.cuda.is_available() else "tiny"


def course_seed() -> int:
    """`RLHF_SEED` as a whole number ≥ 0 (default 0)."""
    raw = os.environ.get("RLHF_SEED", "").strip() or "0"
    if not raw.isdigit():
        raise ProfileError(f"RLHF_SEED must be a whole number ≥ 0, not {raw!r}")
    return int(raw)


def base_model_source() -> str | None:
    """`RLHF_BASE_MODEL`: a Hugging Face Hub id or a local `save_pretrained` folder whose causal LM replaces
    notebook 01's base model (the course then starts at notebook 02); None when unset."""
    return os.environ.get("RLHF_BASE_MODEL", "").strip() or None


def get_profile(name: str | None = None, seed: int | None = None) -> Profile:
    """The profile called `name` (default: `default_profile_name()`) at course seed `seed` (default:
    `course_seed()`). The seed also moves the evaluation sampling seed, so that every stream changes."""
    name = name or default_profile_name()
    if name not in PROFILES:
        raise ProfileError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)} (set RLHF_PROFILE)")
    profile = PROFILES[name]
    seed = course_seed() if seed is None else seed
    if seed == profile.seed:
        return profile
    sampling = dataclasses.replace(profile.sampling, seed=profile.sampling.seed + seed)
    return dataclasses.replace(profile, seed=seed, sampling=sampling)
