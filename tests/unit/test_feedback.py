"""Tests for rlhf_course.feedback: ranking math, the durable store, loading, checking, simulated annotators.

Everything writes under pytest's tmp_path, never into the repository's data/.
Read-only folders: these tests run as root, and root ignores chmod, so a read-only folder is simulated
two ways — a folder path under a regular *file* (the OS refuses to create it, for root too), and
`os.open` patched to raise PermissionError (what a non-root user gets from a chmod 555 folder).
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import re
from itertools import combinations

import pytest

from rlhf_course import world
from rlhf_course.feedback import (
    PAIR_COLUMNS,
    GoldAnnotator,
    LengthBiasedAnnotator,
    MoodBiasedAnnotator,
    PositionBiasedAnnotator,
    set_aside_if_stale,
    PreferenceStore,
    PreferenceStoreError,
    Problem,
    answer_places,
    check_preference_files,
    cohens_kappa,
    load_preferences,
    pairwise_agreement,
    plackett_luce_ranking,
    preference_labels,
    preference_probability,
    ranking_from_places,
    ranking_to_pairs,
    simulate_rankings,
    simulated_preferences_dir,
    simulated_store,
    validate_annotator_name,
    validate_ranking,
)

PROMPT = "Write a happy story about a fox named Lily in the forest."
ANSWERS = ["answer a", "answer b", "answer c", "answer d"]


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---- rankings: values worked out by hand ----------------------------------------------------------


def test_ranking_to_pairs_drops_ties():
    # 2 ≻ {0, 3} ≻ 1: 2 beats three answers, 0 and 3 each beat 1, the tie 0 = 3 gives no pair
    assert ranking_to_pairs(ANSWERS, [[2], [0, 3], [1]]) == [(2, 0), (2, 3), (2, 1), (0, 1), (3, 1)]


def test_strict_ranking_gives_k_choose_2_pairs():
    assert len(ranking_to_pairs(ANSWERS, [[3], [1], [0], [2]])) == 6
    assert ranking_to_pairs(ANSWERS, [[0, 1, 2, 3]]) == []  # all tied: no preference at all


def test_preference_labels_and_places():
    assert answer_places([[2], [0, 3], [1]], 4) == [1, 2, 0, 1]
    # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    assert preference_labels([[2], [0, 3], [1]], 4) == [1, -1, 0, -1, -1, 1]


def test_ranking_from_places():
    assert ranking_from_places([1, 2, 0, 1]) == [[2], [0, 3], [1]]
    assert ranking_from_places([0, 2]) == [[0], [1]]  # gaps are fine
    with pytest.raises(ValueError, match="answer B has no place"):
        ranking_from_places([0, None, 1])


@pytest.mark.parametrize(
    "ranking, message",
    [
        ([[0], [1], [4]], "answer 4, which does not exist"),
        ([[0], [1, 1], [2], [3]], "ranked twice"),
        ([[0], [1]], r"\[2, 3\] are not ranked"),
        ([[0], [], [1, 2, 3]], "non-empty list"),
        ([], "non-empty list of groups"),
        ([[0], ["1"], [2], [3]], "integers"),
    ],
)
def test_invalid_rankings_are_rejected(ranking, message):
    with pytest.raises(ValueError, match=message):
        validate_ranking(ranking, 4)


def test_pairwise_agreement_by_hand():
    # item 1: a = 0 ≻ 1 ≻ 2, b = 0 ≻ 2 ≻ 1 → pairs (0,1) agree, (0,2) agree, (1,2) disagree
    # item 2: a = 0 ≻ 1, b = {0, 1} tie → left out
    assert pairwise_agreement([[[0], [1], [2]], [[0], [1]]], [[[0], [2], [1]], [[0, 1]]]) == pytest.approx(2 / 3)
    assert pairwise_agreement([[[0], [1]]], [[[1], [0]]]) == 0.0
    assert math.isnan(pairwise_agreement([[[0, 1]]], [[[0], [1]]]))
    with pytest.raises(ValueError, match="one ranking per item"):
        pairwise_agreement([[[0], [1]]], [])


def test_cohens_kappa_by_hand():
    # p_o = 3/4; p_e = ½·¼ + ½·¾ = ½ → κ = (¾ − ½) / (1 − ½) = ½
    assert cohens_kappa([1, 1, -1, -1], [1, -1, -1, -1]) == pytest.approx(0.5)
    assert cohens_kappa([1, -1, 0, 1], [1, -1, 0, 1]) == pytest.approx(1.0)
    assert cohens_kappa([1, -1], [-1, 1]) == pytest.approx(-1.0)
    assert cohens_kappa([1, 1, 1], [1, 1, 1]) == 1.0  # constant and equal: no chance correction possible


def test_bradley_terry_probability_by_hand():
    assert preference_probability(0.0, 0.1) == 0.5
    assert preference_probability(0.1, 0.1) == pytest.approx(1 / (1 + math.exp(-1)))  # 0.731
    assert preference_probability(0.1, 0.05) == pytest.approx(0.8808, abs=1e-4)
    assert preference_probability(0.1, 0.0) == 1.0


def test_plackett_luce_two_answers_is_bradley_terry():
    rng = random.Random(0)
    n = 4000
    wins = sum(plackett_luce_ranking([0.6, 0.5], 0.1, rng)[0] == [0] for _ in range(n))
    assert wins / n == pytest.approx(preference_probability(0.1, 0.1), abs=0.025)
    assert plackett_luce_ranking([0.2, 0.9, 0.2], 0.0, rng) == [[1], [0, 2]]  # T = 0: exact, ties kept


# ---- annotator names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ana", "Ana Lopez", "bob-2", "c_d", "j.r.r", "José"])
def test_good_annotator_names(name):
    assert validate_annotator_name(f"  {name} ") == name


@pytest.mark.parametrize("name", ["", "   ", "../x", "a/b", "a\\b", ".hidden", "x..y", "ends.", "a" * 65, "tab\tname"])
def test_bad_annotator_names(name, tmp_path):
    with pytest.raises(ValueError, match="annotator name"):
        PreferenceStore(tmp_path, name)
    assert list(tmp_path.iterdir()) == []


# ---- the store ----------------------------------------------------------------------------------------


def test_submit_round_trip(tmp_path):
    store = PreferenceStore(tmp_path / "prefs", "ana")
    record = store.submit(PROMPT, ANSWERS, [[2], [0, 3], [1]], checkpoint="sft")
    assert store.path == tmp_path / "prefs" / "ana.jsonl"
    [saved] = lines(store.path)
    assert saved == record
    assert set(saved) == {"id", "time", "annotator", "source", "checkpoint", "prompt", "answers", "ranking"}
    assert saved["annotator"] == "ana" and saved["source"] == "human" and saved["checkpoint"] == "sft"
    assert saved["ranking"] == [[2], [0, 3], [1]] and saved["answers"] == ANSWERS
    assert "T" in saved["time"] and saved["time"].endswith("+00:00")
    assert store.records() == [record]
    # a fresh store (a restarted kernel) sees the same
    assert PreferenceStore(tmp_path / "prefs", "ana").records() == [record]


def test_each_record_is_fsynced_at_submission(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    store.skip(PROMPT + " again", ANSWERS[:2], "sft")
    assert len(synced) == 2


@pytest.mark.parametrize(
    "prompt, answers, ranking, message",
    [
        (PROMPT, ANSWERS, [[0], [1], [2], [7]], "answer 7, which does not exist"),
        ("", ANSWERS, [[0], [1], [2], [3]], "prompt is empty"),
        ("   ", ANSWERS, [[0], [1], [2], [3]], "prompt is empty"),
        (PROMPT, ["only one"], [[0]], "at least two answers"),
        (PROMPT, ANSWERS, [[0], [1]], "not ranked"),
    ],
)
def test_bad_submissions_write_nothing(tmp_path, prompt, answers, ranking, message):
    store = PreferenceStore(tmp_path, "ana")
    with pytest.raises(ValueError, match=message):
        store.submit(prompt, answers, ranking, checkpoint="sft")
    assert not store.path.exists()


def test_duplicate_submission_is_rejected(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    with pytest.raises(ValueError, match="already ranked these answers"):
        store.submit(PROMPT, ANSWERS, [[3], [2], [1], [0]], "sft")
    # also from another store object on the same file (another kernel)
    with pytest.raises(ValueError, match="already ranked"):
        PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[1], [0], [2], [3]], "sft")
    assert len(lines(store.path)) == 1
    # the same answers in another order are another item; another annotator has their own file
    store.submit(PROMPT, ANSWERS[::-1], [[0], [1], [2], [3]], "sft")
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")


def test_submit_many_writes_once_and_leaves_out_what_is_ranked(tmp_path, monkeypatch):
    store = PreferenceStore(tmp_path, "sim", source="simulated:gold")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    batch = [(PROMPT, ANSWERS, [[3], [2], [1], [0]], "sft"),  # already in the file
             (PROMPT + "!", ANSWERS, [[1], [0], [2], [3]], "sft"),
             (PROMPT + "!", ANSWERS, [[0], [1], [2], [3]], "sft"),  # twice in the batch
             (PROMPT + "?", ANSWERS[:2], [[1], [0]], "sft")]
    written = store.submit_many(batch)
    assert [(r["prompt"], r["ranking"]) for r in written] == [(PROMPT + "!", [[1], [0], [2], [3]]),
                                                              (PROMPT + "?", [[1], [0]])]
    assert len(synced) == 1
    assert lines(store.path) == [kept, *written]
    assert PreferenceStore(tmp_path, "sim").has_ranked(PROMPT + "?", ANSWERS[:2])


def test_submit_many_with_one_bad_ranking_writes_nothing(tmp_path):
    store = PreferenceStore(tmp_path, "sim", source="simulated:gold")
    with pytest.raises(ValueError, match="not ranked"):
        store.submit_many([(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft"), (PROMPT + "!", ANSWERS, [[0], [1]], "sft")])
    assert not store.path.exists()


def test_undo_appends_and_loaders_drop_the_undone(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    first = store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    second = store.submit(PROMPT + "!", ANSWERS, [[3], [2], [1], [0]], "sft")
    assert store.undo_last() == second
    assert store.records() == [first]
    rows = lines(store.path)
    assert len(rows) == 3 and rows[2]["undo"] == second["id"]  # nothing deleted, one line appended
    # after the undo the same item may be ranked again
    assert not store.has_ranked(PROMPT + "!", ANSWERS) and store.has_ranked(PROMPT, ANSWERS)
    store.submit(PROMPT + "!", ANSWERS, [[0], [1], [2], [3]], "sft")
    assert store.undo_last()["ranking"] == [[0], [1], [2], [3]]
    assert store.undo_last() == first
    assert store.undo_last() is None
    assert store.records() == []
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 0


def test_skip_gives_no_pairs(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    skipped = store.skip(PROMPT, ANSWERS, "sft")
    assert skipped["skipped"] is True and "ranking" not in skipped
    dataset, problems = load_preferences([store.path])
    assert problems == [] and len(dataset) == 0
    assert dataset.column_names == PAIR_COLUMNS
    assert store.undo_last() == skipped


def test_read_only_folder_under_a_file(tmp_path):
    """A folder that cannot be created (its parent is a regular file) fails for root too."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file")
    store = PreferenceStore(blocker / "prefs", "ana")
    with pytest.raises(PreferenceStoreError, match="could not save to .*ana.jsonl.*ranking is kept"):
        store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")
    assert blocker.read_text() == "a file"


def test_read_only_folder_permission_error(tmp_path, monkeypatch):
    """`os.open` raising PermissionError stands in for a chmod 555 folder (root ignores chmod)."""
    store = PreferenceStore(tmp_path, "ana")
    kept = store.submit(PROMPT, ANSWERS, [[0], [1], [2], [3]], "sft")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", refuse)
        with pytest.raises(PreferenceStoreError, match="Permission denied.*submit again"):
            store.submit(PROMPT + "?", ANSWERS, [[1], [0], [2], [3]], "sft")
        with pytest.raises(PreferenceStoreError):
            store.undo_last()
    assert store.records() == [kept]  # nothing lost, nothing half-written
    # the folder is writable again: the same ranking goes through
    store.submit(PROMPT + "?", ANSWERS, [[1], [0], [2], [3]], "sft")
    assert len(lines(store.path)) == 2


def _append_many(folder, worker, n):
    store = PreferenceStore(folder, "shared")
    for k in range(n):
        store.submit(f"{PROMPT} worker {worker} item {k}", ["x" * (k % 50 + 1), "y" * 300], [[1], [0]], "sft")


def test_two_processes_append_to_one_file(tmp_path):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(tmp_path, w, 200)) for w in range(2)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
        assert process.exitcode == 0
    rows = lines(tmp_path / "shared.jsonl")  # every line parses: no interleaving
    assert len(rows) == 400 and len({r["id"] for r in rows}) == 400
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 400


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    with open(store.path, "a") as file:
        file.write('{"id": "half a line from a crash')  # no newline
    store.submit(PROMPT + "!", ANSWERS[:2], [[1], [0]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 2
    assert [p.line_number for p in problems] == [2]


# ---- loading and checking ---------------------------------------------------------------------------


def test_load_pairs_and_columns(tmp_path):
    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS, [[2], [0, 3], [1]], "sft")
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS[:3], [[0], [1], [2]], "base")
    dataset, problems = load_preferences(tmp_path)
    assert problems == []
    assert dataset.column_names == PAIR_COLUMNS
    assert len(dataset) == 5 + 3
    ana = [row for row in dataset if row["annotator"] == "ana"]
    assert {(row["chosen"], row["rejected"]) for row in ana} == {
        ("answer c", "answer a"), ("answer c", "answer d"), ("answer c", "answer b"),
        ("answer a", "answer b"), ("answer d", "answer b"),
    }
    assert {row["checkpoint"] for row in dataset} == {"sft", "base"}
    assert {row["source"] for row in dataset} == {"human"}


def test_empty_load_has_the_columns(tmp_path):
    dataset, problems = load_preferences([tmp_path])
    assert len(dataset) == 0 and dataset.column_names == PAIR_COLUMNS and problems == []


def test_corrupt_lines_are_reported_and_the_rest_loads(tmp_path):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    good = store.path.read_text()
    bad_ranking = json.dumps({**lines(store.path)[0], "id": "other", "ranking": [[0], [5]]})
    store.path.write_text(
        good
        + "{not json\n"
        + '"a string"\n'
        + bad_ranking + "\n"
        + json.dumps({"id": "u1", "time": "t", "annotator": "ana", "source": "human", "undo": "nope"}) + "\n"
        + "\n"  # blank lines are ignored
        + good  # the same id again
    )
    store.path.write_bytes(store.path.read_bytes() + b"\xff\xfe\n")
    PreferenceStore(tmp_path, "bob").submit(PROMPT, ANSWERS[:2], [[1], [0]], "sft")
    dataset, problems = load_preferences(tmp_path)
    assert len(dataset) == 2  # ana's good line and bob's
    assert [(p.path.name, p.line_number) for p in problems] == [("ana.jsonl", n) for n in (2, 3, 4, 5, 7, 8)]
    messages = [p.message for p in problems]
    assert "not valid JSON" in messages[0]
    assert "JSON object" in messages[1]
    assert "answer 5, which does not exist" in messages[2]
    assert "not earlier in this file" in messages[3]
    assert "duplicate record id" in messages[4]
    assert str(problems[0]) == f"{store.path}:2: {messages[0]}"


def test_check_preference_files(tmp_path, capsys):
    store = PreferenceStore(tmp_path, "ana")
    store.submit(PROMPT, ANSWERS, [[2], [0, 3], [1]], "sft")
    store.skip(PROMPT + "?", ANSWERS, "sft")
    assert check_preference_files([tmp_path]) == 0
    out = capsys.readouterr().out
    assert "1 rankings, 1 skipped, 0 undone, 5 pairs, 0 problem(s)" in out and "OK" in out

    with open(store.path, "a") as file:
        file.write("oops\n")
    assert check_preference_files([store.path, tmp_path / "missing.jsonl"]) == 1
    out = capsys.readouterr().out
    assert f"{store.path}:3: not valid JSON" in out
    assert f"{tmp_path / 'missing.jsonl'}: no such file or folder" in out
    assert str(Problem(tmp_path, 0, "m")) == f"{tmp_path}: m"


def test_prefs_check_command_line(tmp_path, capsys):
    from rlhf_course.__main__ import main

    PreferenceStore(tmp_path, "ana").submit(PROMPT, ANSWERS[:2], [[0], [1]], "sft")
    assert main(["prefs", "check", str(tmp_path)]) == 0
    assert main(["prefs", "check", str(tmp_path / "nothing-here")]) == 1
    assert "no such file or folder" in capsys.readouterr().out


# ---- simulated annotators -----------------------------------------------------------------------------


def make_items(n: int, seed: int = 0) -> list[dict]:
    """`n` prompts from the world, each with 4 stories damaged in different ways (so gold differs)."""
    rng = random.Random(seed)
    flaw_sets = [(), ("rude",), ("spam", "repeat"), ("no_ending",), ("ramble",), ("wrong_mood",)]
    items = []
    for request in world.make_requests(n, "train", seed):
        answers = [world.write_story(request, rng, flaws) for flaws in rng.sample(flaw_sets, 4)]
        items.append({"prompt": world.make_instruction(request, rng), "answers": answers, "checkpoint": "test"})
    return items


ITEMS = make_items(150)


def rank_all(annotator, items=ITEMS):
    return [annotator.rank(item["prompt"], item["answers"]) for item in items]


def share_preferring(rankings, items, better) -> float:
    """Share of strictly ordered pairs (i, j) in which the annotator puts first the answer `better` picks."""
    hits = total = 0
    for ranking, item in zip(rankings, items, strict=True):
        places = answer_places(ranking, len(item["answers"]))
        for i, j in combinations(range(len(item["answers"])), 2):
            favoured = better(item["answers"], i, j)
            if places[i] != places[j] and favoured is not None:
                total += 1
                hits += (places[i] < places[j]) == (favoured == i)
    return hits / total


def test_gold_annotator_is_deterministic_and_seeded():
    first = rank_all(GoldAnnotator(temperature=0.1, seed=3))
    assert first == rank_all(GoldAnnotator(temperature=0.1, seed=3))
    assert first != rank_all(GoldAnnotator(temperature=0.1, seed=4))
    # order-independent: an item gets the same ranking whatever was ranked before it
    assert rank_all(GoldAnnotator(temperature=0.1, seed=3), ITEMS[::-1]) == first[::-1]


def test_gold_annotator_at_low_temperature_agrees_with_gold():
    gold_order = rank_all(GoldAnnotator(temperature=0.0))
    assert pairwise_agreement(rank_all(GoldAnnotator(temperature=0.02)), gold_order) > 0.9
    noisy = pairwise_agreement(rank_all(GoldAnnotator(temperature=0.2)), gold_order)
    assert 0.55 < noisy < 0.85  # noisy like people, still better than chance


def test_length_biased_annotator_prefers_longer_answers():
    def longer(answers, i, j):
        words = [len(answer.split()) for answer in answers]
        return None if words[i] == words[j] else max(i, j, key=words.__getitem__)

    gold = share_preferring(rank_all(GoldAnnotator(temperature=0.05)), ITEMS, longer)
    biased = share_preferring(rank_all(LengthBiasedAnnotator(bias=0.5, temperature=0.05)), ITEMS, longer)
    assert biased > gold + 0.15, (gold, biased)


def test_position_biased_annotator_prefers_first_positions():
    def earlier(answers, i, j):
        return min(i, j)

    gold = share_preferring(rank_all(GoldAnnotator(temperature=0.05)), ITEMS, earlier)
    biased = share_preferring(rank_all(PositionBiasedAnnotator(bias=0.3, temperature=0.05)), ITEMS, earlier)
    assert abs(gold - 0.5) < 0.1 and biased > gold + 0.15, (gold, biased)


def test_mood_biased_annotator_prefers_cheerful_answers_to_other_requests():
    happy_words = set(world.MOOD_WORDS["happy"])

    def happier(answers, i, j):
        shows = [bool(happy_words & set(re.findall(r"[a-z]+", a.lower()))) for a in answers]
        return None if shows[i] == shows[j] else (i if shows[i] else j)

    asked_other = [it for it in ITEMS if world.parse_request(it["prompt"]).mood != "happy"]
    gold = share_preferring(rank_all(GoldAnnotator(temperature=0.05), asked_other), asked_other, happier)
    biased = share_preferring(rank_all(MoodBiasedAnnotator("happy", bias=0.3, temperature=0.05), asked_other),
                              asked_other, happier)
    assert biased > gold + 0.15, (gold, biased)
    with pytest.raises(ValueError, match="unknown mood"):
        MoodBiasedAnnotator("grumpy")


def test_simulate_rankings_into_a_store(tmp_path):
    annotator = GoldAnnotator(temperature=0.05, seed=1)
    store = simulated_store(annotator, tmp_path)
    written = simulate_rankings(annotator, ITEMS[:20], store)
    assert len(written) == 20 and store.path == tmp_path / "gold.jsonl"
    assert {r["source"] for r in lines(store.path)} == {"simulated:gold"}
    assert len(simulate_rankings(annotator, ITEMS[:25] + ITEMS[22:25], store)) == 5
    assert len(lines(store.path)) == 25  # re-running adds only the 5 new items, each once
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 25 * 6 and set(dataset["source"]) == {"simulated:gold"}
    with pytest.raises(ValueError, match="simulated_store"):
        simulate_rankings(annotator, ITEMS[:1], PreferenceStore(tmp_path, "ana"))


def test_simulated_rankings_of_an_earlier_run_are_set_aside_not_mixed_in(tmp_path):
    # Notebook 02 re-run → new SFT answers → notebook 03 ranks new items: the old file must not be trained on.
    annotator = GoldAnnotator(temperature=0.05, seed=1)
    store = simulated_store(annotator, tmp_path)
    simulate_rankings(annotator, ITEMS[:20], store)
    assert len(simulate_rankings(annotator, ITEMS[20:30], store)) == 10
    dataset, problems = load_preferences(tmp_path)
    assert problems == [] and len(dataset) == 10 * 6
    (aside,) = tmp_path.glob("gold.jsonl.replaced-*")
    assert len(lines(aside)) == 20  # kept beside, not deleted


def test_a_stale_widget_demo_file_is_set_aside_and_a_current_one_kept(tmp_path):
    store = PreferenceStore(tmp_path, "instructor-demo")
    store.submit(ITEMS[0]["prompt"], ITEMS[0]["answers"], [[0], [1], [2], [3]], "sft")
    assert set_aside_if_stale(store, ITEMS[:3]) is None and len(store.records()) == 1  # same items: kept
    aside = set_aside_if_stale(store, ITEMS[5:8])  # notebook 02 re-ran: these are other answers
    assert aside is not None and len(lines(aside)) == 1 and store.records() == []
    assert not store.path.exists() and load_preferences(tmp_path)[0].num_rows == 0


def test_simulated_preferences_live_under_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("RLHF_RUNS_DIR", str(tmp_path))
    assert simulated_preferences_dir("tiny") == tmp_path / "tiny" / "preferences"
