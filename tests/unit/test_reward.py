"""The reward model: Bradley–Terry loss values, the score position, normalisation, and learning a preference."""

import math

import pytest
import torch

from rlhf_course import world
from rlhf_course.config import RewardConfig, get_profile
from rlhf_course.engine import models
from rlhf_course.phases import reward


def test_bradley_terry_loss_hand_values():
    zero = torch.zeros(3)
    assert reward.bradley_terry_loss(zero, zero).item() == pytest.approx(math.log(2))
    assert reward.bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(
        math.log(1 + math.exp(-2)))
    # symmetric: swapping chosen and rejected gives log(1 + e^{+Δ})
    assert reward.bradley_terry_loss(torch.tensor([0.0]), torch.tensor([2.0])).item() == pytest.approx(
        math.log(1 + math.exp(2)))


@pytest.fixture()
def reward_model(tok, small_model, runs):
    models.save_checkpoint(small_model, tok, "sft", get_profile("tiny"), metrics={}, wall_s=0)
    torch.manual_seed(0)
    return reward.init_reward_model(models.checkpoint_dir("sft", "tiny"), tok).eval()


def test_score_is_read_at_the_last_real_token_whatever_the_padding(tok, reward_model):
    ids, mask = reward.encode_pairs(tok, ["Write a story.", "Hi"], ["Once upon a time. The end.", "No."])
    assert mask[1, 0] == 0  # left padding
    batched = reward.reward_scores(reward_model, ids, mask)
    alone_ids, alone_mask = reward.encode_pairs(tok, ["Hi"], ["No."])
    assert alone_ids[0, -1] == tok.eos_token_id  # every scored answer ends with EOS
    alone = reward.reward_scores(reward_model, alone_ids, alone_mask)
    assert batched[1].item() == pytest.approx(alone[0].item(), abs=1e-4)


def test_normalisation_makes_sft_answers_mean_zero_std_one(tok, reward_model):
    prompts = ["Write a story."] * 6
    answers = [f"Once upon a time there was a {w}. The end." for w in ["fox", "cat", "dog", "owl", "pig", "frog"]]
    raw = reward.score_texts(reward_model, tok, prompts, answers, normalized=False)
    reward.set_normalization(reward_model, raw)
    normalised = torch.tensor(reward.score_texts(reward_model, tok, prompts, answers))
    assert normalised.mean().item() == pytest.approx(0, abs=1e-4)
    assert normalised.std().item() == pytest.approx(1, abs=1e-4)


def test_score_texts_keeps_the_order_given_while_batching_by_length(tok, reward_model):
    prompts = ["Write a story.", "Hi", "Tell me a long story about a fox in the forest, please.", "Hi"]
    answers = ["Once upon a time a fox ran. The end.", "No.", "A fox. The end.", "Yes, once upon a time."]
    one_by_one = [reward.score_texts(reward_model, tok, [p], [a], normalized=False)[0] for p, a in zip(prompts, answers)]
    batched = reward.score_texts(reward_model, tok, prompts, answers, batch_size=2, normalized=False)
    assert batched == pytest.approx(one_by_one, abs=1e-4)
    assert len(set(round(x, 4) for x in batched)) == 4  # distinct scores, so a reordering would show


def test_checkpoint_loads_as_sequence_classification_with_its_constants(tok, reward_model, runs):
    reward.set_normalization(reward_model, [1.0, 2.0, 3.0])
    models.save_checkpoint(reward_model, tok, "reward", get_profile("tiny"), metrics={}, wall_s=0)
    loaded, _, _ = models.load_reward_model("tiny", device="cpu")
    assert loaded.config.num_labels == 1
    assert loaded.config.reward_mean == pytest.approx(2.0) and loaded.config.reward_std == pytest.approx(1.0)


def test_training_learns_a_simple_preference(tok, reward_model):
    """Kind answers preferred over rude ones: accuracy rises and every trainable parameter moves."""
    pairs = [{"prompt": f"Write a story about {name}.", "chosen": f"{name} smiled at a friend. The end.",
              "rejected": f"{name} is stupid. Go away."} for name in ["Lily", "Tom", "Mia", "Ben"] * 8]
    before = {n: p.detach().clone() for n, p in reward_model.named_parameters()}
    config = RewardConfig(epochs=6, batch_size=8, lr=3e-3, warmup_steps=2)
    history = reward.train_reward_model(reward_model, tok, pairs, config)
    assert history[-1]["loss"] < 0.3 < history[0]["loss"]
    assert sum(r["accuracy"] for r in history[-3:]) / 3 == 1.0
    assert not [n for n, p in reward_model.named_parameters() if torch.equal(p, before[n])]


def test_pairwise_accuracy_leaves_out_near_ties():
    accuracy, counted = reward.pairwise_accuracy([1, 0, 5], [0, 1, 4], [0.9, 0.5, 0.50], [0.1, 0.6, 0.52])
    assert counted == 2 and accuracy == pytest.approx(1.0)


def test_probe_accuracy_compares_each_pair_in_the_right_direction(tok, reward_model):
    probes = [row for row in world.probe_pairs(6, seed=2) if row["probe"] in ("rude", "mood")]
    accuracy = reward.probe_accuracy(reward_model, tok, probes)
    better = reward.score_texts(reward_model, tok, [r["prompt"] for r in probes], [r["better"] for r in probes])
    worse = reward.score_texts(reward_model, tok, [r["prompt"] for r in probes], [r["worse"] for r in probes])
    for probe in ("rude", "mood"):
        expected = [b > w for r, b, w in zip(probes, better, worse) if r["probe"] == probe]
        assert accuracy[probe] == pytest.approx(sum(expected) / 6)
    swapped = [{**r, "better": r["worse"], "worse": r["better"]} for r in probes]
    flipped = reward.probe_accuracy(reward_model, tok, swapped)
    assert all(accuracy[p] + flipped[p] == pytest.approx(1.0) for p in accuracy)  # no ties in 12 pairs
