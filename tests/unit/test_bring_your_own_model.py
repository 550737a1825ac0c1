"""RLHF_BASE_MODEL: the course from notebook 02 on with a Hugging Face model of another architecture.

Offline, so the "Hub models" are built here from a config, each with a tokenizer of its own, and written with
`save_pretrained` into a folder: a GPT-2 (learned positions, no `model.model`, a tokenizer without pad token or
chat template) and a Qwen2 (biases on q, k and v; a ChatML template; pad = EOS). For each: the import, SFT, the
reward model (loaded back with `AutoModelForSequenceClassification`), one PPO iteration and a DPO step, and
the sampler against `generate`.
"""

import dataclasses

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers import models as bpe_models
from transformers import AutoModelForCausalLM, GPT2Config, PreTrainedTokenizerFast, Qwen2Config

from rlhf_course import world
from rlhf_course.config import DPOConfig, PPOConfig, RewardConfig, SFTConfig, get_profile
from rlhf_course.engine import generation, models
from rlhf_course.phases import dpo, ppo, reward, sft

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _hub_like_tokenizer(kind: str) -> PreTrainedTokenizerFast:
    special = ["<|endoftext|>"] + (["<|im_start|>", "<|im_end|>"] if kind == "qwen2" else [])
    bpe = Tokenizer(bpe_models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([d["text"] for d in world.make_corpus(400, seed=1)], trainer=trainer)
    if kind == "gpt2":  # GPT-2's: one special token for everything, no pad token, no chat template
        return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    # Qwen2's: ChatML, the end of a turn is EOS, and the pad token is EOS too
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>",
                                   additional_special_tokens=["<|im_start|>", "<|endoftext|>"], chat_template=CHATML)


def _save_hub_like_model(kind: str, folder):
    tok = _hub_like_tokenizer(kind)
    torch.manual_seed(0)
    if kind == "gpt2":
        config = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, n_positions=256, resid_pdrop=0.0,
                            embd_pdrop=0.0, attn_pdrop=0.0, eos_token_id=tok.eos_token_id,
                            bos_token_id=tok.eos_token_id)
    else:
        config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return type(model).__name__


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_the_course_runs_from_sft_on_a_model_of_another_architecture(kind, runs, tmp_path, monkeypatch):
    source = tmp_path / f"my-{kind}"
    architecture = _save_hub_like_model(kind, source)
    monkeypatch.setenv("RLHF_BASE_MODEL", str(source))
    profile = get_profile("tiny")
    assert models.runs_dir("tiny").name == f"tiny-my-{kind}"  # its own run, apart from the course's

    # the import: a pad token distinct from EOS, a chat template, left padding, the model grown to the new tokens
    base, tok, meta = models.load_checkpoint("base", "tiny", device="cpu")
    assert type(base).__name__ == architecture and meta["source"] == str(source)
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id and tok.padding_side == "left"
    assert base.get_input_embeddings().weight.shape[0] >= len(tok)
    prompt = generation.encode_prompts(tok, ["Write a happy story about a fox named Lily in the forest."])[0]
    assert prompt.shape[1] > 5
    if kind == "qwen2":  # its own template is kept
        assert "<|im_start|>assistant\n" in tok.decode(prompt[0])
    else:
        assert meta["added_tokens"] and tok.chat_template

    # SFT on the course's demonstrations, saved as the sft checkpoint
    demos = Dataset.from_list([{k: d[k] for k in ("prompt", "response")} for d in world.make_demonstrations(24)])
    tokenized = sft.tokenize_demonstrations(tok, demos, max_len=200)
    config = dataclasses.replace(SFTConfig(), epochs=1.0, batch_size=8, lr=1e-3, warmup_steps=1)
    history = sft.train_sft(base.train(), tokenized, config, tok.pad_token_id)
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    folder = models.save_checkpoint(base.eval(), tok, "sft", profile, metrics={}, wall_s=0)

    # the reward model: the SFT backbone with a score head, trained, saved, loaded back as sequence classification
    reward_model = reward.init_reward_model(folder, tok)
    pairs = [{"prompt": f"Write a story about {name}.", "chosen": f"{name} smiled at a friend. The end.",
              "rejected": f"{name} is stupid. Go away."} for name in ["Lily", "Tom", "Mia", "Ben"] * 2]
    reward.train_reward_model(reward_model, tok, pairs, RewardConfig(epochs=1.0, batch_size=4, warmup_steps=1),
                              progress=False)
    reward.set_normalization(reward_model.eval(), [0.0, 1.0])
    models.save_checkpoint(reward_model, tok, "reward", profile, metrics={}, wall_s=0)
    loaded_reward, _, _ = models.load_reward_model("tiny", device="cpu")
    assert type(loaded_reward).__name__.endswith("ForSequenceClassification") and loaded_reward.config.num_labels == 1
    scores = reward.score_texts(loaded_reward, tok, ["Write a story."] * 2, ["A fox ran. The end.", "Go away."])
    assert len(scores) == 2 and all(map(torch.isfinite, torch.tensor(scores)))

    # one PPO iteration: policy and reference from sft, reward model and critic from the reward checkpoint
    policy, _, _ = models.load_checkpoint("sft", "tiny", device="cpu")
    reference, _, _ = models.load_checkpoint("sft", "tiny", device="cpu")
    critic, _, _ = models.load_reward_model("tiny", device="cpu")
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    state = ppo.train_ppo(policy, reference, loaded_reward, critic, tok, world.make_prompts(8, "train"),
                          PPOConfig(iterations=1, prompts_per_iteration=8, minibatch_size=4, epochs=1,
                                    max_new_tokens=16))
    assert state.history[0]["sampling_mismatch"] < 1e-4  # the sampler's log-probs are the training forward's
    assert any(not torch.equal(p, before[n]) for n, p in policy.named_parameters())

    # a DPO step from sft
    dpo_policy, _, _ = models.load_checkpoint("sft", "tiny", device="cpu")
    history = dpo.train_dpo(dpo_policy, reference, tok, pairs[:4], DPOConfig(epochs=1.0, batch_size=4))
    assert history and torch.isfinite(torch.tensor(history[0]["loss"]))


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_sampling_matches_generates_distribution(kind, tmp_path):
    """The first answer token over many samples: the course's sampler and `generate` (plain sampling) both
    follow softmax(logits / T) of a full forward pass."""
    _save_hub_like_model(kind, tmp_path / kind)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / kind).eval()
    tok = PreTrainedTokenizerFast.from_pretrained(tmp_path / kind)
    models.prepare_tokenizer(tok)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    # a few likely tokens (a fresh model's distribution is nearly flat, where 3000 draws could not tell much)
    bias = torch.zeros(len(tok))
    bias[torch.arange(10, 90, 10)] = torch.linspace(5.0, 3.0, 8)
    model.lm_head.register_forward_hook(lambda module, inputs, logits: logits + bias)
    ids, mask = generation.encode_prompts(tok, ["Write a happy story about Tom."] * 3000)
    with torch.no_grad():
        exact = torch.softmax(model(input_ids=ids[:1]).logits[0, -1] / 0.8, -1)
        ours = generation.sample(model, ids, mask, 1, 0.8, tok.eos_token_id, tok.pad_token_id,
                                 torch.Generator().manual_seed(0)).response_ids[:, 0]
        torch.manual_seed(0)
        theirs = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=0.8, top_k=0,
                                top_p=1.0, max_new_tokens=1, pad_token_id=tok.pad_token_id)[:, -1]
    likely = torch.arange(10, 90, 10)

    def grouped(p: torch.Tensor) -> torch.Tensor:  # the 8 likely tokens, and all the others as one
        return torch.cat([p[likely], (1 - p[likely].sum()).reshape(1)])

    for drawn in (ours, theirs):
        frequencies = torch.bincount(drawn, minlength=len(exact)).double() / len(drawn)
        total_variation = 0.5 * (grouped(frequencies) - grouped(exact.double())).abs().sum().item()
        # sampling noise of 3000 draws: about 0.02; sampling at temperature 1 instead of 0.8 would be 0.23 off
        assert total_variation < 0.05, total_variation
