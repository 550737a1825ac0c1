"""Batches of preference pairs (what the reward model and DPO share): whole rankings in a batch, each distinct answer
scored once, every ranking once per epoch; texts scored in batches of similar length, returned in the order given."""

from rlhf_course.engine import preference_batches


def test_the_pairs_of_a_ranking_are_scored_once_per_distinct_answer():
    answers = {"p1": ["a", "b", "c", "d"], "p2": ["e", "f", "g", "h"]}
    pairs = [{"prompt": p, "chosen": ans[i], "rejected": ans[j]}
             for p, ans in answers.items() for i in range(4) for j in range(i + 1, 4)]
    assert [len(g) for g in preference_batches.group_by_prompt(pairs)] == [6, 6]
    texts, chosen_index, rejected_index = preference_batches.distinct_answers(pairs)
    assert len(texts) == 8  # 12 pairs, 24 answers, 8 of them distinct
    for pair, c, r in zip(pairs, chosen_index, rejected_index):
        assert texts[c] == (pair["prompt"], pair["chosen"]) and texts[r] == (pair["prompt"], pair["rejected"])


def test_ranking_batches_keep_rankings_whole_and_cover_each_once_an_epoch():
    pairs = [{"prompt": f"p{k}", "chosen": "a", "rejected": f"b{i}"} for k in range(6) for i in range(3)]
    total_steps, batches = preference_batches.ranking_batches(pairs, batch_size=6, epochs=1, seed=0)
    batches = list(batches)
    assert total_steps == len(batches) == 3  # 18 pairs of 6 rankings, 2 rankings (6 pairs) a step
    for batch in batches:
        prompts = {pair["prompt"] for pair in batch}
        assert len(batch) == 3 * len(prompts)  # every pair of each ranking in the batch
    assert sorted(pair["prompt"] for batch in batches for pair in batch) == sorted(p["prompt"] for p in pairs)


def test_scored_by_length_returns_the_scores_in_the_order_given():
    prompts, answers = ["a", "bbbbbb", "cc", "ddd"], ["x", "y", "zzzzzzzz", ""]
    batches = []

    def length(rows):
        batches.append(rows)
        return [len(prompts[i]) + len(answers[i]) for i in rows]

    assert preference_batches.scored_by_length(prompts, answers, 2, length) == [2, 7, 10, 3]
    assert batches == [[0, 3], [1, 2]]  # shortest first
