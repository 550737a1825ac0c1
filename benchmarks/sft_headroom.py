"""Where is gold's headroom? The base and SFT models' gold score by component, at temperatures 1 and 0.7.

A lesson of the course is only as large as the headroom the next phase can reach. This probe trains the
tokenizer, pretrains, and fine-tunes (the same calls as notebooks 01 and 02, without the notebooks) and prints,
as one JSON line, the base model's and SFT's gold components on the 200 evaluation prompts. It answers two
questions of the robustness sweep (benchmarks/robustness.py):

- does longer pretraining teach the model to copy the requested name, animal and place (`--steps`)?
- what is left for PPO once SFT samples at temperature 0.7: the flaws a colder sampler removes by itself
  (rude asides, spam, no ending) are not a gain of RLHF.
- would another world teach the copying, and could notebook 07's verifier then raise it? `--world-variant`
  changes the generated world for this run only (`place-often`: the stories say the place and the animal in
  more sentences; `titled`: half the corpus's stories have a title naming who and where; `titled-misread`: and
  three demonstrators in ten misread the requested animal or place), and `--verifier-grpo` runs notebook 07's
  GRPO with the verifier after SFT and adds its gold components.

The corpus's forum threads are written in the chat template's markers, so the base model has seen how the
internet answers a request in the format it is evaluated in. `--forum-as-question` writes them as the course
did before ("Question: ...\nAnswer: ..."), where the markers never occur in pretraining and the base model's
score is its reaction to tokens it never saw (see benchmarks/results/sft_headroom_tiny.md).

    OMP_NUM_THREADS=1 python benchmarks/sft_headroom.py --steps 300 --seed 0
    OMP_NUM_THREADS=1 python benchmarks/sft_headroom.py --world-variant place-often --verifier-grpo --seed 1
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import random
import time

from datasets import Dataset

from rlhf_course import config, world
from rlhf_course.engine import models
from rlhf_course.phases import evaluation, grpo, pretrain, sft
from rlhf_course.world import tokenizer, verifier

FORUM = stories._forum
MAKE_DOCUMENT, WRITE_STORY = world.make_document, world.write_story


def forum_as_question(rng: random.Random) -> str:
    """`stories._forum`'s thread as the course wrote it before: no chat markers in the corpus."""
    question, answer = FORUM(rng).removeprefix(world.USER).split(world.END_OF_TURN + world.ASSISTANT, 1)
    return f"Question: {question}\nAnswer: {answer}"


def place_often() -> None:
    """Stories that say the place (and the animal) in more sentences, so pretraining has a place to copy from."""
    for mood, extra in {
        "happy": ["{name} ran across the {place} and smiled.",
                  "Everyone in the {place} was glad to see the {animal}."],
        "sad": ["The {place} was quiet, and {name} felt lonely.",
                "The little {animal} cried at the edge of the {place}."],
        "scary": ["The {place} was dark and spooky at night.",
                  "The little {animal} was afraid of the {place} after dark."],
        "funny": ["{name} giggled all the way across the {place}.",
                  "Everyone in the {place} laughed at the silly {animal}."],
    }.items():
        world.MOOD_EVENTS[mood] += extra
    world.NEUTRAL_EVENTS += ["{name} looked around the {place}.", "The {animal} sat down in the {place}."]
    world.MOOD_ENDINGS["happy"].append("It was a happy day in the {place}.")
    world.MOOD_ENDINGS["sad"].append("It was a sad day in the {place}.")
    world.MOOD_ENDINGS["funny"].append("It was the silliest day the {place} ever had.")


def titled_document(kind: str, rng: random.Random) -> str:
    """`world.make_document`, where half the stories start with a title line naming who and where."""
    if kind != "story":
        return MAKE_DOCUMENT(kind, rng)
    request = world.random_request(rng)
    text = world.write_story(request, rng)
    text = text if rng.random() < 0.4 else text.removesuffix(" " + world.END_SENTENCE)
    return f"{request.name} the {request.animal} and the {request.place}\n{text}" if rng.random() < 0.5 else text


def misread_story(request: world.Request, rng: random.Random, flaws: tuple[str, ...] = ()) -> str:
    """`world.write_story` with two more flaws: the writer misread the requested animal or place."""
    if "wrong_animal" in flaws:
        request = dataclasses.replace(request, animal=rng.choice([a for a in world.ANIMALS if a != request.animal]))
    if "wrong_place" in flaws:
        request = dataclasses.replace(request, place=rng.choice([p for p in world.PLACES if p != request.place]))
    return WRITE_STORY(request, rng, tuple(f for f in flaws if f not in ("wrong_animal", "wrong_place")))


def use_world_variant(name: str) -> None:
    if name == "place-often":
        place_often()
    elif name in ("titled", "titled-misread"):
        world.make_document = titled_document  # make_corpus looks it up when it is called
    if name == "titled-misread":
        world.FLAWS += ["wrong_animal", "wrong_place"]  # in the corpus's flawed stories too
        world.DEMONSTRATION_FLAW_RATES.update(wrong_animal=0.3, wrong_place=0.3)
        world.write_story = misread_story


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="pretraining steps (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0, help="the course seed")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--forum-as-question", action="store_true")
    parser.add_argument("--world-variant", choices=["course", "place-often", "titled", "titled-misread"],
                        default="course")
    parser.add_argument("--verifier-grpo", action="store_true", help="then notebook 07's GRPO with the verifier")
    args = parser.parse_args()

    profile = config.PROFILES[args.profile]
    steps = args.steps or profile.pretrain.steps
    profile = dataclasses.replace(profile, seed=args.seed, pretrain=dataclasses.replace(profile.pretrain, steps=steps))
    if args.forum_as_question:
        stories._forum = forum_as_question  # make_document looks `_forum` up when it is called
    use_world_variant(args.world_variant)

    start = time.time()
    corpus = Dataset.from_list(world.make_corpus(profile.world.corpus_documents, seed=profile.world.seed))
    split = corpus.train_test_split(test_size=profile.pretrain.heldout_documents, seed=profile.seed)
    train_texts = split["train"]["text"][:]
    tok = tokenizer.train_tokenizer(train_texts, profile.model.vocab_size)
    model = models.build_model(profile.model, tok, seed=profile.seed)
    pretrain.pretrain(model, pretrain.tokenize_corpus(tok, train_texts), profile.pretrain, seed=profile.seed)
    pretrain_s = time.time() - start

    row = {"steps": steps, "seed": args.seed, "forum_as_question": args.forum_as_question,
           "world_variant": args.world_variant, "pretrain_s": round(pretrain_s)}
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
    if args.verifier_grpo:  # notebook 07's run: a fresh SFT policy against the verifier alone, SFT as reference
        reference = copy.deepcopy(model).eval()
        grpo.train_grpo(model, reference, tok, world.prompt_set("ppo_train", profile.grpo.train_prompt_pool),
                        profile.grpo, verifier=verifier.verifier_reward, seed=profile.seed)
        result = evaluation.evaluate(model, tok, profile.sampling)
        row["verifier_grpo"] = round(result.gold_mean, 3)
        row["verifier_grpo_parts"] = {k: round(v, 2) for k, v in result.component_means().items()}
    row["total_s"] = round(time.time() - start)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
