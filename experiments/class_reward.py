"""A class ranks together (#19): what 30 students' rankings are worth, and how the instructor's taste gets in.

1. **A class ranks at once.** 30 simulated students (`simulated_students.simulated_class`: noisy gold annotators, each
   with their own temperature in 0.03-0.12, one careless student at T = 2, three with a bias) rank 25 of notebook
   03's candidate items each (4 SFT answers) as the widget's Submit does (one append + fsync per ranking, 0.1 s
   apart), in 30 processes started together, into one class folder, while the instructor's view
   (`class_numbers.class_summary`) refreshes in a loop. Counted: rankings submitted and found, ids found twice,
   refresh times during and after.
2. **The instructor's numbers**: Krippendorff's α, each kind of student's agreement with the class and with the
   gold judge, who is flagged.
3. **The class's reward model against the simulated annotator's.** One reward model on the class's rankings
   alone; one on the rankings of notebook 03's simulated gold annotator (T = 0.05) of the same items as many
   times (one such annotator per student, each with its own seed, ranks that student's share). Both through the
   class folder's files (`preference_loading.load_preferences`) and notebook 03's trainer and settings
   (`reward.train_reward_model`, `profile.reward`), no contrast pairs, at training seeds `--seeds`. Held-out
   accuracy on notebook 03's held-out SFT answers (`artifacts`). Where the class disagreed with gold: each pair
   the gold judge orders (gold gap >= 0.05) is put under the gold component that differs most between its answers.
4. **Your taste in the model.** The instructor ranks the other candidate items (one ranking each) with a
   deliberate taste: sad stories first, whatever was asked for (`MoodBiasedAnnotator("sad", bias=1.0)`). A
   reward model trained on that picks best-of-n, n = 1 … 16, among 16 SFT answers to each of 64 test prompts;
   beside it the class's reward model on the same answers. Measured: the share of picks that show sad words among
   answers to prompts that asked for another mood, and the picks' gold score, both as expectations over every n
   of the 16 answers (`evaluation.best_of_n_mean`).

Needs notebook 03's run: runs/<profile>/checkpoints/sft and artifacts/ (candidates, held-out answers).

    nice -n 10 .venv/bin/python experiments/class_reward.py [--students 30] [--rankings 25] [--seeds 0 1 …]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py: tables, benchmarks/results/
import common  # noqa: E402  (standard library only)

BEST_OF = 16
TASTE_PROMPTS = 64
NS = [1, 2, 4, 8, 16]


# --------------------------------------------------------------------------------------------------
# 1. 30 students in 30 processes
# --------------------------------------------------------------------------------------------------


def student_process(folder: Path, ready: Path, number: int, n_students: int, seed: int) -> None:
    """One student (a process of its own): make the student, say so, wait for the start, rank the whole share."""
    from rlhf_course.feedback import simulated_students

    student = simulated_students.simulated_class(n_students, seed=seed, n_careless=1)[number]
    (ready / f"ready-{number}").touch()
    while not (ready / "go").exists():
        time.sleep(0.005)
    print(json.dumps([record["id"] for record in simulated_students.rank_like_a_student(student, folder, pause_s=0.1)]))


def rank_at_once(folder: Path, n_students: int, seed: int, simulated_pairs: int) -> dict:
    """Start every student in a process of their own, refresh the instructor's numbers until all are done."""
    from rlhf_course.feedback import class_numbers
    from rlhf_course.feedback.preference_loading import read_preference_file

    ready = Path(tempfile.mkdtemp(prefix="class-ready-"))
    processes = [subprocess.Popen([sys.executable, __file__, "--student", str(folder), str(ready), str(number),
                                   str(n_students), str(seed)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for number in range(n_students)]
    deadline = time.monotonic() + 300
    while len(list(ready.glob("ready-*"))) < n_students and time.monotonic() < deadline:
        time.sleep(0.05)
    (ready / "go").touch()
    started = time.perf_counter()
    counts, seconds, cpu_seconds, problems_seen, monotonic = [], [], [], 0, True
    while any(process.poll() is None for process in processes):
        cpu = time.process_time()  # this process only refreshes: its CPU time is the refresh's own work
        summary = class_numbers.class_summary(folder, simulated_pairs=simulated_pairs)
        cpu_seconds.append(time.process_time() - cpu)
        monotonic &= not counts or summary.rankings >= counts[-1]
        counts.append(summary.rankings)
        seconds.append(summary.seconds)
        problems_seen += len(summary.problems)
    wall = time.perf_counter() - started
    submitted = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        if process.returncode:
            raise SystemExit(f"a student process failed:\n{err[-2000:]}")
        submitted += json.loads(out)
    on_disk = [r["id"] for path in folder.glob("*.jsonl") for r in read_preference_file(path)[0]]
    final = class_numbers.class_summary(folder, simulated_pairs=simulated_pairs)
    return {"processes": n_students, "submitted": len(submitted), "found": final.rankings,
            "ids_on_disk": len(on_disk), "ids_found_twice": len(on_disk) - len(set(on_disk)),
            "ids_missing": len(set(submitted) - set(on_disk)), "repeats": sum(r.repeats for r in final.students),
            "wall_s": wall, "refreshes": len(counts), "refresh_max_s": max(seconds, default=0.0),
            "refresh_median_s": statistics.median(seconds) if seconds else 0.0,
            "refresh_cpu_max_s": max(cpu_seconds, default=0.0), "counts_monotonic": monotonic,
            "problems_during": problems_seen, "problems_final": len(final.problems)}


def refresh_times(folder: Path, simulated_pairs: int, repetitions: int = 5) -> dict:
    """Seconds of `class_summary` and of the view's Refresh on the finished folder (medians)."""
    from rlhf_course.feedback import class_numbers, class_view

    summaries = [class_numbers.class_summary(folder, simulated_pairs=simulated_pairs).seconds
                 for _ in range(repetitions)]
    view = class_view.ClassView(folder, simulated_pairs=simulated_pairs)
    clicks = []
    for _ in range(repetitions):
        start = time.perf_counter()
        view.refresh_button.click()
        clicks.append(time.perf_counter() - start)
    return {"summary_s": statistics.median(summaries), "view_s": statistics.median(clicks),
            "summary_max_s": max(summaries), "view_max_s": max(clicks)}


# --------------------------------------------------------------------------------------------------
# 2. The instructor's numbers, by kind of student
# --------------------------------------------------------------------------------------------------


def kind_of(student) -> str:
    from rlhf_course.feedback import annotators, simulated_students

    if isinstance(student, annotators.MoodBiasedAnnotator):
        return f"{student.mood}-biased (+{student.bias})"
    if isinstance(student, annotators.LengthBiasedAnnotator):
        return f"length-biased (+{student.bias})"
    if isinstance(student, annotators.PositionBiasedAnnotator):
        return f"position-biased (+{student.bias})"
    if student.temperature == simulated_students.CARELESS_TEMPERATURE:
        return f"careless (T = {student.temperature:g})"
    return "noisy gold (T 0.03-0.12)"


def by_kind(summary, students) -> list[list]:
    kinds: dict[str, list] = {}
    for student in students:
        kinds.setdefault(kind_of(student), []).append(summary.student(student.name))
    return [[kind, len(rows), statistics.fmean(r.vs_class for r in rows), statistics.fmean(r.vs_gold for r in rows),
             sum(r.flagged for r in rows)] for kind, rows in kinds.items()]


def noisy_gold_alpha(folder: Path, students) -> float:
    """α over the noisy gold students only (what notebook 03's headless check asserts on)."""
    from rlhf_course.feedback import rankings
    from rlhf_course.feedback.preference_loading import read_preference_file
    from rlhf_course.feedback.preference_records import effective_records, item_key
    from rlhf_course.feedback.rankings import preference_labels

    noisy = {s.name for s in students if kind_of(s).startswith("noisy")}
    by_item: dict[str, list[list[int]]] = {}
    for path in folder.glob("*.jsonl"):
        if path.stem in noisy:
            for record in effective_records(read_preference_file(path)[0]):
                by_item.setdefault(item_key(record["prompt"], record["answers"]), []).append(
                    preference_labels(record["ranking"], len(record["answers"])))
    units = [list(votes) for rankings in by_item.values() if len(rankings) >= 2 for votes in zip(*rankings)]
    return rankings.krippendorff_alpha(units)


# --------------------------------------------------------------------------------------------------
# 3. Reward models from the class and from the simulated annotator
# --------------------------------------------------------------------------------------------------


def gold_rankings_of_the_same_shares(folder: Path, class_folder: Path, students, temperature: float, seed: int):
    """Notebook 03's simulated gold annotator, one per student (own seed), ranks that student's share."""
    from rlhf_course.feedback import annotators, classroom

    for number, student in enumerate(students):
        gold = annotators.GoldAnnotator(temperature, seed=seed + 100 + number, name=student.name)
        share = classroom.student_items(class_folder, student.name)
        annotators.simulated_store(gold, folder).submit_many(
            (item["prompt"], item["answers"], gold.rank(item["prompt"], item["answers"]), item["checkpoint"])
            for item in share)


def pairs_in(folder: Path) -> list[dict]:
    from rlhf_course.feedback.preference_loading import load_preferences

    dataset, problems = load_preferences(folder)
    if problems:
        raise SystemExit(f"{len(problems)} problem(s) in {folder}, e.g. {problems[0]}")
    return list(dataset)


def train_on(profile, pairs: list[dict], seed: int):
    """Notebook 03's reward model, trained on `pairs` (its trainer and settings, at `seed`)."""
    import torch

    from rlhf_course.engine import models
    from rlhf_course.phases import reward

    _, tok, _ = models.load_checkpoint("sft", profile.name, device="cpu")
    torch.manual_seed(seed)
    model = reward.init_reward_model(models.checkpoint_dir("sft", profile.name), tok)
    start = time.perf_counter()
    reward.train_reward_model(model, tok, pairs, profile.reward, seed=seed, progress=False)
    return model, tok, time.perf_counter() - start


def heldout_accuracy(model, tok, heldout: dict) -> tuple[float, int]:
    from rlhf_course.course import experiments
    from rlhf_course.phases import reward

    return experiments.heldout_accuracy(reward.score_texts(model, tok, heldout["prompts"], heldout["answers"],
                                                           normalized=False), heldout)


def largest_gold_difference(prompt: str, better: str, worse: str) -> str:
    """The part of the gold score that differs most between two answers (`world.gold_breakdown`)."""
    from rlhf_course import world

    a, b = world.gold_breakdown(prompt, better), world.gold_breakdown(prompt, worse)
    if a["story"] != b["story"]:
        return "story (too few real sentences)"
    return max(world.GOLD_WEIGHTS, key=lambda part: abs(world.GOLD_WEIGHTS[part] * (a[part] - b[part])))


def errors_by_gold_part(folders: dict[str, Path], min_gold_gap: float = 0.05) -> list[list]:
    """Per gold part: pairs the gold judge orders (gap >= min_gold_gap) in each folder's rankings, and the share
    of them each folder's annotators ordered the other way round."""
    from rlhf_course import world
    from rlhf_course.feedback.preference_loading import read_preference_file
    from rlhf_course.feedback.preference_records import effective_records
    from rlhf_course.feedback.rankings import answer_places

    tally: dict[str, dict[str, list[int]]] = {}  # part → folder → [pairs, wrong]
    gold_cache: dict[tuple[str, str], float] = {}
    for label, folder in folders.items():
        for path in folder.glob("*.jsonl"):
            for record in effective_records(read_preference_file(path)[0]):
                if "ranking" not in record:
                    continue
                prompt, answers = record["prompt"], record["answers"]
                gold = [gold_cache.setdefault((prompt, a), world.gold_score(prompt, a)) for a in answers]
                places = answer_places(record["ranking"], len(answers))
                for i in range(len(answers)):
                    for j in range(len(answers)):
                        if gold[i] - gold[j] >= min_gold_gap and places[i] != places[j]:
                            part = largest_gold_difference(prompt, answers[i], answers[j])
                            counts = tally.setdefault(part, {}).setdefault(label, [0, 0])
                            counts[0] += 1
                            counts[1] += places[i] > places[j]
    rows = []
    for part, per_folder in sorted(tally.items(), key=lambda kv: -kv[1].get("class", [0])[0]):
        row = [part, per_folder.get("class", [0, 0])[0]]
        row += [per_folder[label][1] / per_folder[label][0] if per_folder.get(label, [0])[0] else float("nan")
                for label in folders]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# 4. The instructor's taste
# --------------------------------------------------------------------------------------------------


def taste_best_of_n(profile, taste_model, class_model, tok, seed: int) -> dict:
    """Best-of-n by each reward model among BEST_OF SFT answers to each of TASTE_PROMPTS test prompts."""
    from rlhf_course import world
    from rlhf_course.engine import generation, models
    from rlhf_course.phases import evaluation, reward

    sft_model, _, _ = models.load_checkpoint("sft", profile.name, device="cpu")
    prompts = world.prompt_set("evaluation", TASTE_PROMPTS)
    flat = [p for p in prompts for _ in range(BEST_OF)]
    start = time.perf_counter()
    answers = generation.sample_answers(sft_model, tok, flat, profile.sampling.max_new_tokens,
                                        seed=profile.sampling.seed + seed, batch_size=200, progress=False).texts
    sampling_s = time.perf_counter() - start
    sad = [float("sad" in world.moods_shown(a)) for a in answers]
    gold = [world.gold_score(p, a) for p, a in zip(flat, answers)]
    rewards = {"taste": reward.score_texts(taste_model, tok, flat, answers),
               "class": reward.score_texts(class_model, tok, flat, answers)}
    groups = range(0, len(flat), BEST_OF)
    not_sad = [g for g in groups if world.parse_request(flat[g]).mood not in (None, "sad")]
    curves = {}
    for name, scores in rewards.items():
        curves[name] = [{"n": n,
                         "sad_share": statistics.fmean(evaluation.best_of_n_mean(scores[g:g + BEST_OF],
                                                                                 sad[g:g + BEST_OF], n)
                                                       for g in not_sad),
                         "gold": statistics.fmean(evaluation.best_of_n_mean(scores[g:g + BEST_OF], gold[g:g + BEST_OF],
                                                                            n) for g in groups)}
                        for n in range(1, BEST_OF + 1)]
    return {"curves": curves, "prompts": len(prompts), "not_sad_prompts": len(not_sad), "sampling_s": sampling_s}


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--rankings", type=int, default=25)
    parser.add_argument("--everyone-ranks", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="reward-model training seeds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default=None, help="results file name (default class_reward_<profile>.md; ''"
                                                       " to skip)")
    parser.add_argument("--student", nargs=5, metavar=("FOLDER", "READY", "NUMBER", "N", "SEED"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.student:
        folder, ready, number, n_students, seed = args.student
        student_process(Path(folder), Path(ready), int(number), int(n_students), int(seed))
        return

    started = time.perf_counter()
    import torch

    from rlhf_course.config import get_profile
    from rlhf_course.course import artifacts
    from rlhf_course.feedback import annotators, class_numbers, classroom, simulated_students

    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    log = print
    candidates = artifacts.load_candidates(profile.name)
    heldout = artifacts.load_heldout_answers(profile.name)
    simulated_pairs = class_numbers.notebook03_pairs(profile)
    work = Path(tempfile.mkdtemp(prefix="class-reward-"))
    class_dir, gold_dir, taste_dir = work / "class", work / "gold", work / "taste"

    # 1. the class ranks, all at once
    students = simulated_students.simulated_class(args.students, seed=profile.seed, n_careless=1)
    assignment = classroom.make_assignment(candidates, [s.name for s in students], args.rankings,
                                           everyone_ranks=args.everyone_ranks, seed=profile.seed)
    classroom.write_assignment(class_dir, assignment)
    log(f"{len(assignment['items'])} items for {args.students} students × {args.rankings}; ranking in "
        f"{args.students} processes …")
    concurrency = rank_at_once(class_dir, args.students, profile.seed, simulated_pairs)
    log(json.dumps(concurrency))
    refresh = refresh_times(class_dir, simulated_pairs)
    log(json.dumps(refresh))

    # 2. the instructor's numbers
    summary = class_numbers.class_summary(class_dir, simulated_pairs=simulated_pairs)
    kinds = by_kind(summary, students)
    alpha_noisy = noisy_gold_alpha(class_dir, students)

    # 3. class vs simulated gold annotator, same items, same number of rankings
    gold_rankings_of_the_same_shares(gold_dir, class_dir, students, profile.reward.annotator_temperature, profile.seed)
    data = {"class": pairs_in(class_dir), "simulated gold annotator": pairs_in(gold_dir)}
    accuracies: dict[str, list[float]] = {name: [] for name in data}
    train_s, class_model, tok = [], None, None
    for seed in args.seeds:
        for name, pairs in data.items():
            model, tok, seconds = train_on(profile, pairs, seed)
            accuracy, counted = heldout_accuracy(model, tok, heldout)
            accuracies[name].append(accuracy)
            train_s.append(seconds)
            log(f"seed {seed} {name}: {len(pairs)} pairs, held-out accuracy {accuracy:.3f} on {counted} pairs "
                f"({seconds:.0f} s)")
            if name == "class" and class_model is None:
                class_model = model
    errors = errors_by_gold_part({"class": class_dir, "simulated gold annotator": gold_dir})

    # 4. the instructor's taste
    instructor = annotators.MoodBiasedAnnotator("sad", bias=1.0, temperature=profile.reward.annotator_temperature,
                                                seed=profile.seed + 7, name="instructor")
    taste_items = candidates[len(assignment["items"]):]
    store = annotators.simulated_store(instructor, taste_dir)
    store.submit_many((it["prompt"], it["answers"], instructor.rank(it["prompt"], it["answers"]), it["checkpoint"])
                      for it in taste_items)
    taste_pairs = pairs_in(taste_dir)
    taste_model, tok, _ = train_on(profile, taste_pairs, args.seeds[0])
    taste_accuracy, _ = heldout_accuracy(taste_model, tok, heldout)
    taste = taste_best_of_n(profile, taste_model, class_model, tok, profile.seed)
    wall = time.perf_counter() - started

    # the report
    gaps = [c - g for c, g in zip(accuracies["class"], accuracies["simulated gold annotator"])]
    flagged = ", ".join(f"{r.name} ({kind_of(next(s for s in students if s.name == r.name))})"
                        for r in summary.students if r.flagged) or "nobody"
    text = [
        "## 1. 30 students rank at once",
        "",
        f"{concurrency['processes']} processes, each a simulated student ranking their share through "
        "`simulated_students.rank_like_a_student` (what the class widget's Submit does: one append + fsync per "
        "ranking), "
        "started together; the instructor's `class_summary` refreshed in a loop meanwhile.",
        "",
        common.table(["quantity", "value"], [
            ["rankings submitted", concurrency["submitted"]], ["rankings found by the view", concurrency["found"]],
            ["record ids on disk", concurrency["ids_on_disk"]], ["ids found twice", concurrency["ids_found_twice"]],
            ["submitted ids missing", concurrency["ids_missing"]], ["repeated rankings", concurrency["repeats"]],
            ["wall time of the ranking, s", round(concurrency["wall_s"], 1)],
            ["refreshes while ranking", concurrency["refreshes"]],
            ["counts never went down", concurrency["counts_monotonic"]],
            ["problems seen while ranking / at the end", f"{concurrency['problems_during']} / "
                                                          f"{concurrency['problems_final']}"],
            ["refresh while ranking (wall: 30 students' processes share the cores), median / max s",
             f"{concurrency['refresh_median_s']:.3f} / {concurrency['refresh_max_s']:.3f}"],
            ["refresh while ranking, CPU time of the refresh itself, max s", f"{concurrency['refresh_cpu_max_s']:.3f}"],
            ["refresh of the finished folder: class_summary, median / max s",
             f"{refresh['summary_s']:.3f} / {refresh['summary_max_s']:.3f}"],
            ["refresh of the finished folder: ClassView Refresh click, median / max s",
             f"{refresh['view_s']:.3f} / {refresh['view_max_s']:.3f}"],
        ]),
        "",
        "## 2. The instructor's numbers",
        "",
        f"{summary.rankings} rankings → {summary.pairs} pairs ({summary.pairs / simulated_pairs:.0%} of the "
        f"{simulated_pairs:,} pairs notebook 03's simulated annotator gives); {summary.items} items, every one ranked "
        f"by >= 2 students, {args.everyone_ranks} by all. Krippendorff's α (nominal, answer-pair preferences) = "
        f"**{summary.alpha:.3f}** over {summary.alpha_units} units; over the noisy gold students alone "
        f"{alpha_noisy:.3f}. Class median agreement with the others' majority {summary.class_median:.3f}; flagged "
        f"(> {class_numbers.FLAG_BELOW_MEDIAN} below it): {flagged}.",
        "",
        common.table(["kind of student", "students", "agrees with class (mean)", "agrees with gold (mean)", "flagged"],
                     kinds),
        "",
        "## 3. The class's reward model against the simulated annotator's",
        "",
        f"Same {summary.items} items, {summary.rankings} rankings each side, notebook 03's trainer and settings "
        f"(epochs {profile.reward.epochs}, batch {profile.reward.batch_size}, lr {profile.reward.lr}), no contrast "
        f"pairs. Held-out pairwise accuracy against gold on notebook 03's held-out SFT answers, training seeds "
        f"{args.seeds}; each model trained in {statistics.median(train_s):.0f} s (median).",
        "",
        common.table(["rankings from", "pairs", *[f"seed {s}" for s in args.seeds], "mean"],
                     [[name, len(data[name]), *[round(a, 3) for a in accuracies[name]],
                       round(statistics.fmean(accuracies[name]), 3)] for name in data]),
        "",
        f"Class minus simulated: {', '.join(f'{g:+.3f}' for g in gaps)} (mean {statistics.fmean(gaps):+.3f}; "
        "target: within 0.05).",
        "",
        "Where the class disagreed with gold: every pair of a ranking whose gold scores differ by >= 0.05, under the "
        "part of the gold score that differs most between the two answers; the share ordered the other way round.",
        "",
        common.table(["gold part that differs most", "class pairs", "class wrong", "simulated annotator wrong"],
                     [[part, n, round(c, 3), round(g, 3)] for part, n, c, g in errors]),
        "",
        "## 4. Your taste in the model",
        "",
        f"The instructor ranked {len(taste_items)} other candidate items (one ranking each, {len(taste_pairs)} pairs) "
        "preferring sad stories whatever was asked for (MoodBiasedAnnotator('sad', bias=1.0)); that reward model's "
        f"held-out accuracy against gold is {taste_accuracy:.3f}. Best-of-n among {BEST_OF} SFT answers to each of "
        f"{taste['prompts']} test prompts ({taste['not_sad_prompts']} ask for another mood than sad): the share of "
        "picks showing sad words among those, and the gold score of the picks (all prompts).",
        "",
        common.table(["n", "sad share, instructor's RM", "sad share, class RM", "gold, instructor's RM",
                      "gold, class RM"],
                     [[n, round(taste["curves"]["taste"][n - 1]["sad_share"], 3),
                       round(taste["curves"]["class"][n - 1]["sad_share"], 3),
                       round(taste["curves"]["taste"][n - 1]["gold"], 3),
                       round(taste["curves"]["class"][n - 1]["gold"], 3)] for n in NS]),
        "",
        "Sad share with the instructor's reward model for every n = 1 … 16: "
        + ", ".join(f"{point['sad_share']:.3f}" for point in taste["curves"]["taste"]) + ".",
        "",
        f"Total wall time {wall:.0f} s (sampling {BEST_OF} × {taste['prompts']} answers: {taste['sampling_s']:.0f} s).",
    ]
    report = "\n".join(text)
    print(report)
    output = f"class_reward_{profile.name}.md" if args.output is None else args.output
    if output:
        header = common.machine_header("A class ranks together: the class's reward model and the instructor's taste", {
            "profile": f"{profile.name} (seed {profile.seed}), torch threads {args.threads}",
            "students": f"{args.students} × {args.rankings} rankings of {profile.reward.answers_per_prompt} answers "
                        f"(simulated_students.simulated_class: 1 careless, 3 biased)",
        })
        path = common.write_result(output, header + "\n" + report + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
