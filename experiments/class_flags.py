"""Where the instructor's view draws its lines (#19): who gets flagged, and how high α runs, over many classes.

No training: simulated classes rank notebook 03's candidate items (`artifacts.load_candidates`) into temporary
class folders (`simulated_students.simulated_class`, one write per student) and `class_numbers.class_summary`
reads them.

1. Flagging (`class_numbers.FLAG_BELOW_MEDIAN`, `MIN_PAIRS_TO_FLAG`): 10 classes of 30 × 25 (class seeds 0-9), each
   with 26 careful students (noisy gold annotators, T 0.03-0.12), one careless (T = 2) and three biased: how far
   below the class median each kind of student's agreement with the class falls, and who is flagged.
2. The same with few rankings: 20 classes of 8 careful students × 10 rankings (60 pairs each): how many careful
   students fall more than 0.15 below the median (why the view waits for 150 pairs before it flags anyone).
3. α of notebook 03's demonstration class (8 careful students × 15 rankings, 3 items for all) over class seeds
   0-19: what its check's threshold stands on.

    .venv/bin/python experiments/class_flags.py [--profile tiny]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # common.py: tables, benchmarks/results/
import common  # noqa: E402  (standard library only)


def simulated_summary(items, students, rankings_each: int, everyone_ranks: int, seed: int):
    """The class's numbers after `students` ranked their shares (no minimum for flags: gaps are read off)."""
    from rlhf_course.feedback import annotators, class_numbers, classroom

    folder = tempfile.mkdtemp(prefix="class-flags-")
    assignment = classroom.make_assignment(items, [s.name for s in students], rankings_each, everyone_ranks,
                                           seed=seed)
    classroom.write_assignment(folder, assignment)
    for student in students:
        annotators.simulated_store(student, folder).submit_many(
            (item["prompt"], item["answers"], student.rank(item["prompt"], item["answers"]), item["checkpoint"])
            for item in classroom.student_items(folder, student.name))
    return class_numbers.class_summary(folder, simulated_pairs=5600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--output", default=None, help="results file (default class_flags_<profile>.md; '' to skip)")
    args = parser.parse_args()

    from class_reward import kind_of

    from rlhf_course.course import artifacts
    from rlhf_course.feedback import class_numbers, simulated_students

    items = artifacts.load_candidates(args.profile)
    text = []

    # 1. 30 × 25
    rows, gaps = [], {}
    for seed in range(10):
        students = simulated_students.simulated_class(30, seed=seed, n_careless=1)
        summary = simulated_summary(items, students, 25, 5, seed)
        for student in students:
            gaps.setdefault(kind_of(student), []).append(summary.class_median - summary.student(student.name).vs_class)
        flagged = [kind_of(next(s for s in students if s.name == r.name)) for r in summary.students if r.flagged]
        careful = [summary.class_median - summary.student(s.name).vs_class for s in students
                   if kind_of(s).startswith("noisy")]
        careless = next(s for s in students if kind_of(s).startswith("careless"))
        rows.append([seed, round(summary.alpha, 3), round(summary.class_median, 3), round(max(careful), 3),
                     round(summary.class_median - summary.student(careless.name).vs_class, 3),
                     ", ".join(flagged) or "nobody",
                     min(r.vs_class_pairs for r in summary.students)])
    text += ["## 1. Flagging in classes of 30 × 25", "",
             common.table(["class seed", "α", "class median", "careful students: largest gap below the median",
                           "careless student's gap", "flagged", "fewest pairs compared"], rows), "",
             common.table(["kind of student", "students", "gap below the median: min", "median", "max"],
                          [[kind, len(v), round(min(v), 3), round(statistics.median(v), 3), round(max(v), 3)]
                           for kind, v in gaps.items()]), ""]

    # 2. 8 × 10: few pairs
    over, careful_students, fewest = 0, 0, []
    for seed in range(20):
        students = simulated_students.simulated_class(8, seed=seed, n_biased=0)
        summary = simulated_summary(items, students, 10, 2, seed)
        for row in summary.students:
            careful_students += 1
            over += summary.class_median - row.vs_class > class_numbers.FLAG_BELOW_MEDIAN
        fewest.append(min(r.vs_class_pairs for r in summary.students))
    text += ["## 2. Few rankings: 20 classes of 8 careful students × 10 rankings", "",
             f"{over} of {careful_students} careful students fell more than {class_numbers.FLAG_BELOW_MEDIAN} below "
             f"the class median on {min(fewest)}-{max(fewest)} pairs each (the view flags no one under "
             f"{class_numbers.MIN_PAIRS_TO_FLAG} pairs).", ""]

    # 3. notebook 03's demonstration class
    alphas = []
    for seed in range(20):
        students = simulated_students.simulated_class(8, seed=seed, n_biased=0)
        alphas.append(simulated_summary(items, students, 15, 3, seed).alpha)
    text += ["## 3. α of notebook 03's demonstration class (8 careful students × 15 rankings), class seeds 0-19", "",
             f"min {min(alphas):.3f}, median {statistics.median(alphas):.3f}, max {max(alphas):.3f}; seed 0 (the "
             f"notebook's at course seed 0): {alphas[0]:.3f}.", ""]

    report = "\n".join(text)
    print(report)
    output = f"class_flags_{args.profile}.md" if args.output is None else args.output
    if output:
        header = common.machine_header("Where the instructor's view draws its lines: flags and α over many classes",
                                       {"profile": args.profile, "candidates": f"{len(items)} items of notebook 03"})
        print(f"wrote {common.write_result(output, header + chr(10) + report)}")


if __name__ == "__main__":
    main()
