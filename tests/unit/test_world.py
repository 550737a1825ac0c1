"""The generated world: splits, demonstrations, corpus and the gold judge (which must not be gameable)."""

import random
import statistics

import pytest

from rlhf_course import world


def test_make_prompts_is_seeded_and_distinct():
    assert world.make_prompts(50, "train", seed=3) == world.make_prompts(50, "train", seed=3)
    assert world.make_prompts(50, "train", seed=3) != world.make_prompts(50, "train", seed=4)
    prompts = world.make_prompts(200, "test")
    assert len(set(prompts)) == 200


def test_train_and_test_instructions_never_overlap():
    train = {world.parse_request(p) for p in world.make_prompts(2000, "train")}
    test = {world.parse_request(p) for p in world.make_prompts(500, "test")}
    assert not train & test
    demos = {world.parse_request(d["prompt"]) for d in world.make_demonstrations(1000)}
    assert not demos & test


def test_unknown_split_and_too_many_prompts_are_clear_errors():
    with pytest.raises(ValueError, match="split"):
        world.make_prompts(3, "validation")
    with pytest.raises(ValueError, match="only"):
        world.make_prompts(100_000, "test")


def test_parse_request_finds_every_part():
    request = world.parse_request("Tell me a sad story about Tom the dog, set in the park.")
    assert request == world.Request("Tom", "dog", "park", "sad")


def test_demonstrations_are_mostly_imperfect_but_good_ones_score_high():
    demos = world.make_demonstrations(1000, seed=0)
    flawed = [d for d in demos if d["flaws"]]
    clean = [d for d in demos if not d["flaws"]]
    assert 0.75 < len(flawed) / len(demos) < 0.95  # uneven like human data: SFT must inherit flaws to fix
    assert statistics.fmean(world.gold_score(d["prompt"], d["response"]) for d in clean) > 0.97
    assert statistics.fmean(world.gold_score(d["prompt"], d["response"]) for d in flawed) < 0.9


def test_most_demonstrators_share_one_habit_and_each_slip_is_rare():
    demos = world.make_demonstrations(1000, seed=0)
    without_the_end = statistics.fmean(not d["response"].endswith(world.END_SENTENCE) for d in demos)
    assert 0.55 < without_the_end < 0.7  # the mode: SFT keeps it even when sampling colder
    for slip in ["rude", "spam", "repeat", "wrong_mood", "ramble"]:
        assert statistics.fmean(slip in d["flaws"] for d in demos) < 0.25, slip


def test_forum_threads_are_written_in_the_chat_format():
    thread = world.make_document("forum", random.Random(0))
    assert thread.startswith(world.USER) and world.END_OF_TURN + world.ASSISTANT in thread


def test_corpus_mixes_good_text_with_bad_habits():
    corpus = world.make_corpus(2000, seed=0)
    kinds = {k: sum(d["kind"] == k for d in corpus) / len(corpus) for k in world.CORPUS_MIX}
    for kind, share in world.CORPUS_MIX.items():
        assert abs(kinds[kind] - share) < 0.04
    with_habits = sum(bool(world.bad_habits(d["text"])) for d in corpus) / len(corpus)
    assert 0.2 < with_habits < 0.6


PROMPT = "Write a happy story about a fox named Lily in the forest."


def test_gold_rewards_a_story_that_follows_the_instruction():
    good = world.write_story(world.parse_request(PROMPT), random.Random(0))
    parts = world.gold_breakdown(PROMPT, good)
    assert parts["total"] == pytest.approx(1.0)
    assert set(world.GOLD_WEIGHTS) <= set(parts)
    assert sum(world.GOLD_WEIGHTS.values()) == pytest.approx(1.0)


def test_gold_rubric_has_one_sentence_per_part_of_the_gold_judge():
    rubric = world.gold_rubric()
    assert [part for part, _, _ in rubric] == list(world.GOLD_WEIGHTS)
    assert [weight for _, weight, _ in rubric] == list(world.GOLD_WEIGHTS.values())
    assert set(world.GOLD_RUBRIC) == set(world.GOLD_WEIGHTS)  # no sentence for a part the judge lacks
    for part, _, sentence in rubric:
        assert sentence[0].isupper() and sentence.endswith((".", '"')), part
    assert world.END_SENTENCE in dict((p, s) for p, _, s in rubric)["ending"]


def test_gold_rubric_states_the_length_the_judge_gives_full_marks_for():
    def length_part(n_sentences: int, words_each: int) -> float:
        sentence = " ".join(["word"] * (words_each - 1))
        text = " ".join(f"{sentence} {i}x." for i in range(n_sentences))
        return world.gold_breakdown(PROMPT, text)["length"]

    fewest, most = world.GOOD_SENTENCES
    fewest_words, most_words = world.GOOD_WORDS
    text = dict((p, s) for p, _, s in world.gold_rubric())["length"]
    assert f"{fewest}-{most} sentences" in text and f"{fewest_words}-{most_words} words" in text
    assert length_part(most, most_words // most) == 1.0
    assert length_part(most + 1, most_words // (most + 1)) < 1.0
    assert length_part(fewest, -(-fewest_words // fewest)) == 1.0
    assert length_part(fewest - 1, -(-fewest_words // (fewest - 1))) < 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "",
        PROMPT,
        PROMPT + " " + PROMPT,
        "Lily fox forest happy",
        "Lily, fox, forest, happy, happy, smiled, glad. The end.",
        "Lily the fox was happy in the forest. " * 8,
        "The end.",
        "happy happy happy happy happy happy happy happy happy happy",
    ],
    ids=["empty", "prompt", "prompt twice", "word list", "word list ended", "one sentence repeated",
         "only the ending", "one word repeated"],
)
def test_gold_is_not_satisfied_by_degenerate_answers(answer):
    assert world.gold_score(PROMPT, answer) < 0.35


@pytest.mark.parametrize("flaw", world.FLAWS)
def test_each_flaw_costs_gold(flaw):
    request = world.parse_request(PROMPT)
    clean = world.gold_score(PROMPT, world.write_story(request, random.Random(1)))
    flawed = world.gold_score(PROMPT, world.write_story(request, random.Random(1), (flaw,)))
    assert flawed < clean - 0.05


def test_gold_scores_stay_in_unit_interval():
    rng = random.Random(0)
    for doc in world.make_corpus(300, seed=2):
        score = world.gold_score(world.make_prompts(1, "test", seed=rng.randrange(100))[0], doc["text"])
        assert 0.0 <= score <= 1.0


def test_probe_pairs_change_one_thing_and_always_cost_gold():
    rows = world.probe_pairs(20, seed=1)
    assert rows == world.probe_pairs(20, seed=1)
    assert [r["probe"] for r in rows] == [p for p in world.PROBES for _ in range(20)]
    for row in rows:
        assert world.parse_request(row["prompt"]).mood is not None  # test prompts that ask for everything
        better = world.gold_breakdown(row["prompt"], row["better"])
        worse = world.gold_breakdown(row["prompt"], row["worse"])
        assert better["total"] == pytest.approx(1.0), row["better"]  # a clean story that does what was asked
        assert worse["total"] < better["total"], row
        if row["probe"] in ("mood", "animal", "place", "name"):
            # the same sentences, written for another request: only that one part of the gold score changes
            changed = {k for k in better if k not in ("total", "story") and better[k] != worse[k]}
            assert changed == {row["probe"]}, (row, changed)
            assert len(row["better"].split()) == len(row["worse"].split()) or row["probe"] == "mood"


def test_probe_accuracy_counts_wins_per_probe():
    probes = [{"probe": "mood"}, {"probe": "mood"}, {"probe": "rude"}, {"probe": "mood"}]
    assert world.probe_accuracy(probes, [1.0, 0.0, 2.0, 5.0], [0.0, 1.0, 1.0, 5.0]) == {"mood": 1 / 3, "rude": 1.0}
    with pytest.raises(ValueError):  # a score missing for a pair is an error, not a silently shorter count
        world.probe_accuracy(probes, [1.0, 0.0, 2.0], [0.0, 1.0, 1.0])


def test_contrast_pairs_are_probe_pairs_on_train_prompts():
    rows = world.probe_pairs(30, seed=0, split="train", probes=["mood"])
    assert len(rows) == 30 and {r["probe"] for r in rows} == {"mood"}
    assert all(world.request_split(world.parse_request(r["prompt"])) == "train" for r in rows)
    test_prompts = {r["prompt"] for r in world.probe_pairs(100, seed=0)}
    assert not test_prompts & {r["prompt"] for r in rows}
    with pytest.raises(ValueError, match="unknown probes"):
        world.probe_pairs(3, probes=["tone"])
