"""The robustness sweep's tables (`benchmarks/results/robustness_tiny*.md`) are the one source of its numbers.

Every figure of the sweep that the course quotes is checked here against the table it comes from:

- each `report.check` in the notebooks has, on the line above it, a comment in one form,
  `# sweep over 11 runs (robustness_tiny.md, robustness_tiny_avx512.md): worst 0.827, median 0.852`
  (`worst X (highest)` for an `at_most` check): the number of runs, the worst run and the median over the runs of
  the tables it names, for the quantity the check below it records;
- each check's threshold is the one in the tables' threshold column (a table measured with another threshold is
  out of date: rerun `experiments/robustness.py`);
- the figures the prose quotes (the book's page "Will it work on my machine?") are listed in QUOTED below with the
  quantity and tables each comes from; rewording one means updating its entry.

A quoted figure with d decimals must be the table's value rounded to d decimals (d at most 3, the tables' own).
"""

import json
import re
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
BOTH = ("robustness_tiny.md", "robustness_tiny_avx512.md")
AVX2, AVX512 = ("robustness_tiny.md",), ("robustness_tiny_avx512.md",)


# --- the tables ---------------------------------------------------------------------------------------------------

def parse_table(name):
    """{quantity: {"threshold": "≥ 0.1" or None, "min"/"median"/"max": float, "runs": {run: float}}} of one results
    file: the checked quantities by their `report.check` name, the headline numbers by their label."""
    rows = {}
    for line in (RESULTS / name).read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 5:
            continue
        if cells[0] == "quantity":
            header = cells
            continue
        if set(cells[0]) <= set("-"):
            continue
        row = dict(zip(header, cells))
        runs = {run: float(row[run]) for run in header[5:] if row[run] not in ("—", "")}
        rows[cells[0].strip("`")] = {"threshold": row[header[1]] or None,
                                     **{k: float(row[k]) for k in ("min", "median", "max")}, "runs": runs}
    return rows


TABLES = {name: parse_table(name) for name in BOTH}


def figures(quantity, tables):
    """Runs, min, median and max of `quantity` over every run of `tables` (the union of their run columns); a pair
    of quantities (a, b) stands for a − b, run by run."""
    values = []
    for table in tables:
        for name in (quantity if isinstance(quantity, tuple) else (quantity,)):
            assert name in TABLES[table], f"{table} has no row {name!r}: rerun experiments/robustness.py"
        if isinstance(quantity, tuple):
            a, b = (TABLES[table][name]["runs"] for name in quantity)
            values += [round(a[run] - b[run], 3) for run in a]
        else:
            values += TABLES[table][quantity]["runs"].values()
    return {"runs": len(values), "min": min(values), "median": statistics.median(values), "max": max(values)}


def number(text):
    return float(text.replace("−", "-").replace("+", ""))


def agrees(quoted, true):
    """A quoted figure agrees if it is the true value rounded to the quoted decimals (at most the tables' three)."""
    decimals = len(quoted.split(".")[1]) if "." in quoted else 0
    assert decimals <= 3, f"{quoted} has more decimals than the tables (3)"
    return abs(number(quoted) - true) <= 0.5 * 10 ** -decimals + 1e-9


def test_tables_parse():
    for name, rows in TABLES.items():
        checked = [q for q, row in rows.items() if row["threshold"]]
        assert len(checked) >= 20 and "ppo.gold_gain" in checked and "PPO gold − SFT gold" in rows, name
        for quantity, row in rows.items():  # the table's own statistics are those of its run columns
            assert row["min"] == min(row["runs"].values()) and row["max"] == max(row["runs"].values()), quantity
            assert agrees(f"{row['median']:.3f}", statistics.median(row["runs"].values())), quantity


# --- the notebooks' checks ----------------------------------------------------------------------------------------

SWEEP_COMMENT = re.compile(r"^\s*# sweep over (?P<runs>\d+) runs \((?P<tables>[\w.]+(?:, [\w.]+)*)\): "
                           r"worst (?P<worst>-?[\d.]+)(?P<highest> \(highest\))?, median (?P<median>-?[\d.]+)$")
CHECK = re.compile(r'report\.check\(\s*profile\.name,\s*"(?P<quantity>[^"]+)"')
BOUND = re.compile(r"\bat_(?P<side>least|most)=(?P<value>-?[\d.]+)")


def notebook_checks():
    """(notebook, quantity, side, threshold, the sweep comment's match or None) for every report.check."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "code":
                continue
            lines = "".join(cell["source"]).splitlines()
            for i, line in enumerate(lines):
                check = CHECK.search(line)
                if not check:
                    continue
                call = "\n".join(lines[i:]).split("report.check(")[1]
                bound = BOUND.search(call)
                assert bound, f"{path.name}: report.check of {check['quantity']} has no at_least/at_most"
                comment = SWEEP_COMMENT.match(lines[i - 1]) if i else None
                found.append((path.name, check["quantity"], bound["side"], bound["value"], comment))
    return found


CHECKS = notebook_checks()


def test_every_check_has_a_threshold_from_the_tables():
    assert len(CHECKS) >= 20
    for notebook, quantity, side, value, _ in CHECKS:
        for table in BOTH:
            row = TABLES[table].get(quantity)
            assert row and row["threshold"], (
                f"{notebook}: {quantity} is not in {table}: rerun experiments/robustness.py to measure it")
            expected = f"{'≥' if side == 'least' else '≤'} {value}"
            assert row["threshold"] == expected, (
                f"{notebook}: {quantity} checks {expected} but {table} was measured with {row['threshold']}: "
                "rerun experiments/robustness.py (or --from the notebook) so the table shows the sweep under this "
                "threshold, then update the sweep comments")
    checked = {quantity for _, quantity, *_ in CHECKS}
    for table in BOTH:
        stale = {q for q, row in TABLES[table].items() if row["threshold"]} - checked
        assert not stale, f"{table} lists checks no notebook makes any more: {sorted(stale)}; rerun the sweep"


@pytest.mark.parametrize("notebook, quantity, side, value, comment", CHECKS, ids=[c[1] for c in CHECKS])
def test_check_comment_quotes_its_table(notebook, quantity, side, value, comment):
    assert comment, (f"{notebook}: the line above report.check of {quantity} should be "
                     "'# sweep over N runs (robustness_tiny.md, robustness_tiny_avx512.md): worst X, median Y'")
    true = figures(quantity, tuple(comment["tables"].split(", ")))
    worst = true["min"] if side == "least" else true["max"]
    where = f"{notebook}, {quantity} (from {comment['tables']})"
    assert int(comment["runs"]) == true["runs"], (
        f"{where}: {comment['runs']} runs quoted, the tables have {true['runs']}")
    assert bool(comment["highest"]) == (side == "most"), f"{where}: write '(highest)' exactly for an at_most check"
    assert agrees(comment["worst"], worst), f"{where}: worst run quoted {comment['worst']}, the tables say {worst:.3f}"
    assert agrees(comment["median"], true["median"]), (
        f"{where}: median quoted {comment['median']}, the tables say {true['median']:.3f}")


def test_no_free_form_sweep_figures_in_notebook_code():
    """Beside a check, the sweep is quoted in the one form above; no other sweep statistics in code comments."""
    loose = re.compile(r"#.*(\bsweeps?\b|\bworst run\b).*\d|#.*\b\d+ runs\b")
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                for line in "".join(cell["source"]).splitlines():
                    assert SWEEP_COMMENT.match(line) or not loose.search(line), f"{path.name}: {line.strip()}"


# --- figures quoted in prose --------------------------------------------------------------------------------------

# (file, text with {placeholders}, {placeholder: (quantity, statistic)}, tables). The text must occur in the file
# (a notebook's markdown cells joined, line breaks read as spaces) with each placeholder the table's figure.
QUOTED = [
    ("book/robustness.md", "(its correlation with length rises by {lo} to {hi})",
     {"lo": ("evaluation.length_bias_reward_correlation", "min"),
      "hi": ("evaluation.length_bias_reward_correlation", "max")}, BOTH),
    ("book/robustness.md", "made the answers anywhere from {lo} tokens *shorter* to {hi} tokens longer",
     {"lo": ("PPO length gain against the length-biased RM (tokens)", "-min"),
      "hi": ("PPO length gain against the length-biased RM (tokens)", "max")}, BOTH),
    ("book/robustness.md", "picks answers {lo} to {hi} tokens longer in every run",
     {"lo": ("evaluation.length_bias_best_of_k_tokens", "min"),
      "hi": ("evaluation.length_bias_best_of_k_tokens", "max")}, BOTH),
    ("book/robustness.md", "put happy words into anywhere from {lo} % to {hi} % more of the stories",
     {"lo": ("PPO happy share gain against the happy-biased RM", "%min"),
      "hi": ("PPO happy share gain against the happy-biased RM", "%max")}, BOTH),
    ("book/robustness.md", "The after column is the {runs} runs of the two current sweeps",
     {"runs": ("ppo.gold_gain", "runs")}, BOTH),
    ("book/robustness.md",
     "gold falls {lo} to {hi} past its peak over the {runs} runs of the next sweep (median {med})",
     {"lo": ("evaluation.overoptimisation_gold_drop", "min"), "hi": ("evaluation.overoptimisation_gold_drop", "max"),
      "runs": ("evaluation.overoptimisation_gold_drop", "runs"),
      "med": ("evaluation.overoptimisation_gold_drop", "median")}, AVX2),
    ("book/robustness.md", "The gain is {lo} to {hi} on all {runs} runs (median {med})",
     {"lo": ("evaluation.label_budget_accuracy_gain", "min"), "hi": ("evaluation.label_budget_accuracy_gain", "max"),
      "runs": ("evaluation.label_budget_accuracy_gain", "runs"),
      "med": ("evaluation.label_budget_accuracy_gain", "median")}, AVX2),
    ("book/robustness.md", "with PPO's gain over SFT {plo} to {phi}, its gain at temperature 0.7 {clo} to {chi}, "
     "DPO's {dlo} to {dhi} and gold's fall past its best-of-n peak {olo} to {ohi}",
     {"plo": ("ppo.gold_gain", "min"), "phi": ("ppo.gold_gain", "max"),
      "clo": ("ppo.gold_gain_at_t0.7", "min"), "chi": ("ppo.gold_gain_at_t0.7", "max"),
      "dlo": ("dpo.gold_gain", "min"), "dhi": ("dpo.gold_gain", "max"),
      "olo": ("evaluation.overoptimisation_gold_drop", "min"), "ohi": ("evaluation.overoptimisation_gold_drop", "max")},
     AVX512),
]

WORDS = {6: "six", 7: "seven", 8: "eight", 11: "eleven"}


def prose(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    if path.endswith(".ipynb"):
        text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"] if c["cell_type"] == "markdown")
    return re.sub(r"\s+", " ", text)


def statistic(quantity, spec, tables):
    """The true value a placeholder stands for: a statistic, '-' for its negation ('0.04 below'), '%' for percent."""
    true = figures(quantity, tables)
    if spec == "runs":
        return true["runs"]
    sign, name = (spec[0], spec[1:]) if spec[0] in "-%" else ("", spec)
    return {"": 1, "-": -1, "%": 100}[sign] * true[name]


@pytest.mark.parametrize("path, template, slots, tables", QUOTED, ids=[f"{q[0]}:{q[1][:30]}" for q in QUOTED])
def test_prose_quotes_its_table(path, template, slots, tables):
    pattern = re.escape(template)
    for slot in slots:
        pattern = pattern.replace(re.escape("{" + slot + "}"), f"(?P<{slot}>[+−-]?[\\d.]+|[a-z]+)")
    match = re.search(pattern, prose(path))
    assert match, f"{path}: text not found (reworded? update QUOTED): {template}"
    for slot, (quantity, spec) in slots.items():
        true, quoted = statistic(quantity, spec, tables), match[slot]
        if spec == "runs":
            assert quoted in (str(true), WORDS.get(true)), f"{path}: '{quoted}' runs quoted, {tables} have {true}"
        else:
            assert agrees(quoted.rstrip("."), true), (
                f"{path}: {quantity} {spec} quoted {quoted}, {tables} say {true:.3f}")


# The book's table "after: min, median, max", over the runs of both tables; its "before" column is an earlier sweep
# that left no table.
BOOK_ROWS = {
    "base model's gold score": "base.gold_mean",
    "SFT's gain over the base model": "sft.gold_gain_over_base",
    "reward model's held-out accuracy": "reward.heldout_accuracy",
    "PPO's gain over SFT": "ppo.gold_gain",
    "PPO's win rate against SFT": "ppo.win_rate_vs_sft",
    "PPO's gain over SFT, both sampled at temperature 0.7": "ppo.gold_gain_at_t0.7",
    "DPO's gain over SFT": "dpo.gold_gain",
    "GRPO's gain over SFT (notebook 07)": "grpo.gold_gain",
    "GRPO's gold minus PPO's": "GRPO gold − PPO gold",
    "gold's fall past its best-of-n peak (weak proxy)": "evaluation.overoptimisation_gold_drop",
}


def test_book_table_quotes_the_tables():
    rows = {}
    for line in (ROOT / "book" / "robustness.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0] in BOOK_ROWS:
            rows[cells[0]] = cells[2]
    assert set(rows) == set(BOOK_ROWS), (
        "book/robustness.md's table of what still varies has other rows: update BOOK_ROWS")
    for label, quantity in BOOK_ROWS.items():
        true = figures(quantity, BOTH)
        for name, quoted in zip(("min", "median", "max"), rows[label].split(", ")):
            assert agrees(quoted, true[name]), (
                f"book/robustness.md, {label}: {name} {quoted}, the tables say {true[name]:.3f}")
