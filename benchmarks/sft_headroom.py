"""Where is gold's headroom? The base and SFT models' gold score by component, at temperatures 1 and 0.7.

A lesson of the course is only as large as the headroom the next phase can reach. This probe trains the
tokenizer, pretrains, and fine-tunes (the same calls as notebooks 01 and 02, without the notebooks) and prints,
as one JSON line, the base model's and SFT's gold components on the 200 evaluation prompts. It answers two
questions of the robustness sweep (benchmarks/robustness.py):

- does longer pretraining teach the model to copy the requested name, animal and place (`--steps`)?
- what is left for PPO once SFT samples at temperature 0.7: the flaws a colder sampler removes by itself
  (rude asides, spam, no ending) are not a gain of RLHF.

The corpus's forum threads are written in the chat template's markers, so the base model has seen how the
internet answers a request in the format it is evaluated in. `--forum-as-question` writes them as the course
did before ("Question: ...\nAnswer: ..."), where the markers never occur in pretraining and the base model's
score is its reaction to tokens it never saw (see benchmarks/results/sft_headroom_tiny.md).

    OMP_NUM_THREADS=1 python benchmarks/sft_headroom.py --steps 300 --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import time

from datasets import Dataset

from rlhf_course import config, evaluation, models, pretrain, sft, tokenizer, world

FORUM = world._forum


def forum_as_question(rng: random.Random) -> str:
    """`world._forum`'s thread as the course wrote it before: no chat markers in the corpus."""
    question, answer = FORUM(rng).removeprefix(world.USER).split(world.END_OF_TURN + world.ASSISTANT, 1)
    return f"Question: {question}\nAnswer: {answer}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0, help="the course seed")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--forum-as-question", action="store_true")
    args = parser.parse_args()

    profile = config.PROFILES[args.profile]
    steps = args.steps or profile.pretrain.steps
    profile = dataclasses.replace(profile, seed=args.seed, pretrain=dataclasses.replace(profile.pretrain, steps=steps))
    if args.forum_as_question:
        world._forum = forum_as_question  # make_document looks `_forum` up when it is called

    start = time.time()
    corpus = Dataset.from_list(world.make_corpus(profile.world.corpus_documents, seed=profile.world.seed))
    split = corpus.train_test_split(test_size=profile.pretrain.heldout_documents, seed=profile.seed)
    train_texts = split["train"]["text"][:]
    tok = tokenizer.train_tokenizer(train_texts, profile.model.vocab_size)
    model = models.build_model(profile.model, tok, seed=profile.seed)
    pretrain.pretrain(model, pretrain.tokenize_corpus(tok, train_texts), profile.pretrain, seed=profile.seed)
    pretrain_s = time.time() - start

    row = {"steps": steps, "seed": args.seed, "forum_as_question": args.forum_as_question,
           "pretrain_s": round(pretrain_s)}
    base = evaluation.evaluate(model, tok, profile.sampling)
    row["base"] = round(base.gold_mean, 3)
    row["base_parts"] = {k: round(v, 2) for k, v in base.component_means().items()}

    tokenized = sft.tokenize_demonstrations(tok, sft.demonstration_dataset(profile.world, profile.seed),
                                            profile.model.max_seq_len)
    sft.train_sft(model, tokenized, profile.sft, tok.pad_token_id, seed=profile.seed)
    for temperature in (1.0, 0.7):
        result = evaluation.evaluate(model, tok, dataclasses.replace(profile.sampling, temperature=temperature))
        row[f"sft_t{temperature}"] = round(result.gold_mean, 3)
        row[f"sft_parts_t{temperature}"] = {k: round(v, 2) for k, v in result.component_means().items()}
    row["sft_gain_over_base"] = round(row["sft_t1.0"] - row["base"], 3)
    row["total_s"] = round(time.time() - start)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
