"""Data-parallel training: 2 gloo processes train as one on the same global batch, bad splits are refused before
training, and one process (no torchrun) runs exactly the loop it ran before."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from rlhf_course import world
from rlhf_course.__main__ import main
from rlhf_course.config import DPOConfig, GRPOConfig, PPOConfig, PretrainConfig, RewardConfig, SFTConfig, get_profile
from rlhf_course.course import distributed_check, launch, report
from rlhf_course.engine import distributed, models
from rlhf_course.engine.precision import training_precision
from rlhf_course.engine.training import backward_and_step, cosine_lr, make_optimizer, set_lr, shuffled_batches
from rlhf_course.phases import dpo, grpo, ppo, pretrain, reward, sft


def test_two_processes_train_sft_and_the_reward_model_as_one_process():
    # the same function `python -m rlhf_course distributed-check` runs (torchrun, 2 gloo processes)
    rows = distributed_check.compare(["sft", "reward"], processes=2)
    assert [row.phase for row in rows] == ["sft", "reward"]
    for row in rows:
        assert row.steps >= 2
        assert row.loss_difference <= distributed_check.TOLERANCE, row
        assert row.parameter_difference <= distributed_check.TOLERANCE, row
    assert "| sft |" in distributed_check.table(rows)


@pytest.mark.parametrize("phase", ["ppo", "grpo"])
def test_two_processes_take_the_same_rl_update_as_one_process(phase):
    # one iteration's update (scoring, advantages, 2 epochs of 2 minibatches) from the same saved rollout, whose
    # answers have different lengths: a per-process token mean or whitening would differ by ~1e-2
    [row] = distributed_check.compare([phase], processes=2)
    assert row.phase == phase and row.steps == 4
    assert row.loss_difference <= distributed_check.TOLERANCE, row
    assert row.parameter_difference <= distributed_check.TOLERANCE, row


GATHER = """
import torch
from rlhf_course.engine import distributed
distributed.setup()
r = distributed.rank()
answers = distributed.all_gather_rows(torch.full((2, 3 + 2 * r), r + 1.0))  # rank 1's answers are longer
ended = distributed.all_gather_rows(torch.tensor([True, r == 1]))
longest = distributed.all_reduce_max(torch.tensor(3.0 + r))
if r == 0:
    torch.save({"answers": answers, "ended": ended, "longest": longest}, "gathered.pt")
distributed.cleanup()
"""


def test_every_rank_gathers_the_global_rollout_padded_to_the_longest_answer(tmp_path):
    # what `ppo_update` and `grpo_update` do after scoring: rank 0's rows first, shorter answers padded with zeros
    (tmp_path / "gather.py").write_text(GATHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "gather.py"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    gathered = torch.load(tmp_path / "gathered.pt")
    assert gathered["answers"].tolist() == [[1, 1, 1, 0, 0]] * 2 + [[2] * 5] * 2
    assert gathered["ended"].tolist() == [True, False, True, True] and gathered["longest"].item() == 4


# ---- bad input: refused before the first step ----


@pytest.fixture()
def two_processes(monkeypatch):
    """The loops' view of a 2-process group (only the size matters to the checks, which run before training)."""
    monkeypatch.setattr(distributed, "world_size", lambda: 2)


def test_a_global_batch_that_does_not_split_is_refused(two_processes):
    with pytest.raises(ValueError, match="does not split evenly over 2 processes"):
        distributed.check_global_batch(batch_size=5, n_items=100, what="SFT")
    with pytest.raises(ValueError, match="1 training item"):
        distributed.check_global_batch(batch_size=4, n_items=1, what="SFT")
    with pytest.raises(ValueError, match="every process needs at least one"):
        distributed.shard([{"prompt": "a"}], "a batch of pairs")


def test_each_loop_refuses_a_bad_split_before_training(tok, small_model, two_processes):
    before = [p.detach().clone() for p in small_model.parameters()]
    rows = Dataset.from_list([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}] * 6)
    pairs = [{"prompt": "p", "chosen": "a", "rejected": "b"}]
    with pytest.raises(ValueError, match="SFT: the global batch of 3"):
        sft.train_sft(small_model, rows, SFTConfig(batch_size=3), tok.pad_token_id)
    with pytest.raises(ValueError, match="pretraining: the global batch of 3"):
        pretrain.pretrain(small_model, torch.arange(100) % 50, PretrainConfig(steps=1, batch_size=3, block_size=8))
    with pytest.raises(ValueError, match="the reward model: 1 training item"):
        reward.train_reward_model(small_model, tok, pairs, RewardConfig(batch_size=2))
    with pytest.raises(ValueError, match="DPO: 1 training item"):
        dpo.train_dpo(small_model, small_model, tok, pairs, DPOConfig(batch_size=2))
    assert all(torch.equal(a, b) for a, b in zip(before, small_model.parameters()))


def test_ppo_and_grpo_refuse_prompts_that_do_not_split_into_whole_shares(tok, small_model, two_processes):
    prompts = world.prompt_set("ppo_train", 8)
    before = [p.detach().clone() for p in small_model.parameters()]
    with pytest.raises(ValueError, match="PPO's prompts per iteration: the global batch of 3 does not split evenly"):
        ppo.train_ppo(small_model, small_model, small_model, small_model, tok, prompts,
                      PPOConfig(prompts_per_iteration=3, minibatch_size=3))
    with pytest.raises(ValueError, match="PPO's prompts per iteration: 1 training item"):
        ppo.train_ppo(small_model, small_model, small_model, small_model, tok, prompts[:1],
                      PPOConfig(prompts_per_iteration=2, minibatch_size=2))
    with pytest.raises(ValueError, match="PPO's minibatch: the global batch of 3"):
        ppo.train_ppo(small_model, small_model, small_model, small_model, tok, prompts,
                      PPOConfig(prompts_per_iteration=6, minibatch_size=3))
    with pytest.raises(ValueError, match="GRPO's prompts per iteration: the global batch of 3"):  # a group would split
        grpo.train_grpo(small_model, small_model, tok, prompts,
                        GRPOConfig(prompts_per_iteration=3, group_size=2, minibatch_size=6), reward_model=small_model)
    with pytest.raises(ValueError, match="GRPO's minibatch: the global batch of 3"):
        grpo.train_grpo(small_model, small_model, tok, prompts,
                        GRPOConfig(prompts_per_iteration=6, group_size=3, minibatch_size=3), reward_model=small_model)
    assert all(torch.equal(a, b) for a, b in zip(before, small_model.parameters()))


# ---- one process: the loops as they were ----


def test_without_torchrun_every_helper_hands_back_its_input():
    assert not distributed.is_distributed() and distributed.world_size() == 1 and distributed.is_main()
    model, items, loss = torch.nn.Linear(2, 1), [1, 2, 3], torch.tensor(0.5)
    assert distributed.wrap(model) is model
    assert distributed.shard(items) is items
    assert distributed.global_mean(loss, 7) is loss
    assert distributed.logged_mean(loss, 7) is loss
    assert distributed.all_reduce_mean(loss) is loss
    assert distributed.all_reduce_max(loss) is loss and distributed.all_gather_rows(loss) is loss
    distributed.check_global_batch(batch_size=3, n_items=1, what="SFT")  # any batch splits over one process


def test_one_process_sft_is_bit_identical_to_the_loop_without_distribution(tok, small_model):
    """The loop before `distributed` existed, written out: the same losses and weights to the last bit."""
    demonstrations = Dataset.from_list([{"prompt": d["prompt"], "response": d["response"]}
                                        for d in world.make_demonstrations(12, seed=0)])
    tokenized = sft.tokenize_demonstrations(tok, demonstrations, 192)
    config = SFTConfig(epochs=0.5, batch_size=4, lr=1e-2, warmup_steps=1)
    plain = type(small_model)(small_model.config)
    plain.load_state_dict(small_model.state_dict())
    history = sft.train_sft(small_model, tokenized, config, tok.pad_token_id)

    rows = list(tokenized)
    optimizer = make_optimizer(plain.parameters(), config.lr, config.weight_decay)
    scaler = training_precision(torch.device("cpu")).grad_scaler()  # disabled in float32
    plain.train()
    losses = []
    for step, indices in enumerate(shuffled_batches(len(rows), config.batch_size, len(history), 0)):
        batch = sft.collate([rows[i] for i in indices], tok.pad_token_id)
        set_lr(optimizer, cosine_lr(step, len(history), config.warmup_steps, config.lr))
        logits = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = sft.sft_loss(logits.float(), batch["labels"])
        backward_and_step(loss, optimizer, scaler, plain.parameters())
        losses.append(loss.item())
    assert [record["loss"] for record in history] == losses
    assert all(torch.equal(a, b) for a, b in zip(small_model.parameters(), plain.parameters()))


# ---- the launcher ----


def test_train_refuses_ppo_and_grpo_for_now():
    for phase in ("ppo", "grpo"):
        with pytest.raises(launch.LaunchError, match=f"{phase} cannot be launched from the command line yet"):
            launch.train(phase, get_profile("tiny"))


def test_train_reward_without_notebook_03s_rankings_says_where_they_come_from(runs, capsys):
    assert main(["train", "reward", "--profile", "tiny"]) == 2
    assert "run notebooks/03_reward_model.ipynb first" in capsys.readouterr().err


def test_distributed_check_refuses_an_unknown_phase(capsys):
    assert main(["distributed-check", "evaluation"]) == 2
    assert "no phase 'evaluation' to check" in capsys.readouterr().err


def test_train_sft_writes_the_checkpoint_the_next_notebook_loads(tok, small_model, runs):
    profile = get_profile("tiny")
    models.save_checkpoint(small_model, tok, "base", profile, metrics={}, wall_s=0)
    small = dataclasses.replace(profile, world=dataclasses.replace(profile.world, demonstrations=20),
                                sft=dataclasses.replace(profile.sft, epochs=0.1))  # one step
    metrics = launch.train("sft", small)
    assert metrics["processes"] == 1 and metrics["final_loss"] > 0
    _, _, meta = models.load_checkpoint("sft", "tiny", device="cpu")
    assert meta["metrics"]["launched"] == "python -m rlhf_course train"
    assert report.read_report("tiny")["phases"]["sft"]["wall_s"] >= 0  # what notebook 05 reads


def test_distributed_check_exits_1_when_the_processes_disagree(monkeypatch, capsys):
    row = distributed_check.PhaseComparison("sft", steps=3, loss_difference=2e-3, parameter_difference=0.0)
    monkeypatch.setattr(distributed_check, "compare", lambda phases, processes: [row])
    assert main(["distributed-check"]) == 1
    assert "| sft | 3 | 2.00e-03 |" in capsys.readouterr().out
