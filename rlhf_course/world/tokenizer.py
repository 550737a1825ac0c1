"""A byte-level BPE tokenizer trained on the corpus, with special tokens and a chat template.

The result is a plain `transformers.PreTrainedTokenizerFast`, so everything downstream works the same
with a tokenizer from the Hugging Face Hub: `apply_chat_template`, `pad_token_id`, `eos_token_id`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from rlhf_course.world import ASSISTANT, END_OF_TURN, USER

PAD = "<|pad|>"  # distinct from EOS: masks built from `ids != pad` must keep the EOS
EOS = "<|endoftext|>"  # ends a corpus document and an assistant turn
SYSTEM = "<|system|>"
# The chat markers come from the world: its forum threads are written in them (see world.USER).
SPECIAL_TOKENS = [PAD, EOS, USER, ASSISTANT, SYSTEM, END_OF_TURN]

# <|user|>Write a story ...<|end|><|assistant|>Once upon a time ...<|endoftext|>
# The assistant's turn ends with EOS, so a model that stops talking emits EOS and sampling ends there.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% else %}{{ '<|end|>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer of `vocab_size` tokens (special tokens included) on `texts`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tokenizer)


def wrap_tokenizer(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """The `transformers` view of a trained `tokenizers.Tokenizer`: special tokens, padding side, template."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        eos_token=EOS,
        bos_token=None,
        additional_special_tokens=[USER, ASSISTANT, SYSTEM, END_OF_TURN],
        padding_side="left",  # prompts are left-padded so every answer starts at the same column
        chat_template=CHAT_TEMPLATE,
        model_max_length=1_000_000,
    )


def chat_prompt(tokenizer: PreTrainedTokenizerFast, instruction: str) -> str:
    """The text a chat model sees before it answers `instruction`."""
    messages = [{"role": "user", "content": instruction}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def chat_text(tokenizer: PreTrainedTokenizerFast, instruction: str, response: str) -> str:
    """A whole conversation, prompt and answer, ending with EOS: the one way the course writes prompt + answer.

    Built as the sampler writes it (the chat prompt, the answer, EOS), not with the chat template's own
    assistant turn: so SFT's targets, the reward model's inputs and PPO's rollouts are the same token sequence,
    and the reward model reads its score at the EOS that ends a sampled answer. (With the course's template the
    two are the same text; some Hub templates add a newline or another end-of-turn marker after the answer.)
    """
    return chat_prompt(tokenizer, instruction) + response + tokenizer.eos_token
