"""The CPU side of a profile: the data preparation the notebooks do before and around training.

On a GPU machine the training is fast and this part is not: it runs on the CPU whatever the device (the gpu
profile generates 200,000 corpus documents and 20,000 demonstrations, and ranks 1,000 × 4 answers plus 2,000
contrast pairs), so it is part of the 10 minutes the whole course may take there. Each step is what a notebook
does, at the profile's sizes, timed on its own (median of `--repetitions`):

  01  make the corpus (`world.make_corpus` + `datasets.Dataset` + train/test split); read its texts from the
      dataset column (as a list, `column[:]`, and row by row, `list(column)`, which is what iterating a
      `datasets` column does); train the tokenizer; tokenise the corpus into one stream
  02  make the demonstrations (generated + hand-written, as a shuffled `Dataset`); tokenise them
  03  rank the candidate answers with the simulated gold annotator into a preference file, and the contrast
      pairs into another; load both back as preference pairs. The candidates here are written by
      `world.write_story` (no model is needed for timing); the notebook samples them from the SFT model.

    nice -n 10 .venv/bin/python benchmarks/bench_prep.py --profile gpu [--repetitions 3] [--output prep_gpu]

`--compare DIR` times another checkout's `rlhf_course` (e.g. `git worktree add /tmp/old HEAD~1`) in the same
run: every repetition is a fresh process per arm, the arms alternating which goes first.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

import common  # noqa: E402  (standard library only)


def prepare(profile, workdir: Path) -> dict[str, float]:
    """One pass over every step; seconds per step."""
    from datasets import Dataset

    from rlhf_course import world
    from rlhf_course.feedback import annotators, preference_loading
    from rlhf_course.phases import pretrain, sft
    from rlhf_course.world import tokenizer

    seconds = {}
    split, seconds["01 corpus"] = common.timed(lambda: Dataset.from_list(
        world.make_corpus(profile.world.corpus_documents, seed=profile.world.seed)
    ).train_test_split(test_size=profile.pretrain.heldout_documents, seed=profile.seed))
    train, test = split["train"], split["test"]
    texts, seconds["01 texts: column[:]"] = common.timed(lambda: (train["text"][:], test["text"][:]))
    by_row, seconds["01 texts: list(column)"] = common.timed(lambda: (list(train["text"]), list(test["text"])))
    assert by_row == texts
    train_texts, heldout_texts = texts
    tok, seconds["01 train tokenizer"] = common.timed(
        lambda: tokenizer.train_tokenizer(train_texts, profile.model.vocab_size))
    _, seconds["01 tokenize corpus"] = common.timed(
        lambda: (pretrain.tokenize_corpus(tok, train_texts), pretrain.tokenize_corpus(tok, heldout_texts)))

    demos, seconds["02 demonstrations"] = common.timed(lambda: sft.demonstration_dataset(profile.world, profile.seed))
    _, seconds["02 tokenize demonstrations"] = common.timed(
        lambda: sft.tokenize_demonstrations(tok, demos, profile.model.max_seq_len))

    config, rng = profile.reward, random.Random(0)
    items = [{"prompt": p, "answers": [world.write_story(world.parse_request(p), rng)
                                       for _ in range(config.answers_per_prompt)], "checkpoint": "sft"}
             for p in world.prompt_set("candidates", config.candidate_prompts)]
    contrast = [{"prompt": r["prompt"], "answers": [r["better"], r["worse"]], "checkpoint": "world"}
                for r in world.probe_pairs(config.contrast_pairs, seed=profile.seed, split="train", probes=["mood"])]
    folder = workdir / "preferences"
    shutil.rmtree(folder, ignore_errors=True)
    gold = annotators.GoldAnnotator(temperature=config.annotator_temperature, seed=profile.seed)
    writer = annotators.GoldAnnotator(config.annotator_temperature, seed=profile.seed, name="contrast-writer")
    _, seconds["03 rank candidates"] = common.timed(lambda: annotators.simulate_rankings(
        gold, items, annotators.simulated_store(gold, folder)))
    _, seconds["03 rank contrast pairs"] = common.timed(lambda: annotators.simulate_rankings(
        writer, contrast, annotators.simulated_store(writer, folder)))
    (pairs, problems), seconds["03 load preferences"] = common.timed(
        lambda: preference_loading.load_preferences([folder]))
    assert not problems and len(pairs) > 0
    return seconds


def one_pass(profile_name: str, package: str | None) -> dict[str, float]:
    """`prepare` in a fresh process, importing `rlhf_course` from `package` (a checkout) if given."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, __file__, "--profile", profile_name, "--one-pass"], env=env,
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    print(f"  rlhf_course from {result.pop('package')}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="gpu")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--compare", metavar="CHECKOUT", help="another checkout's root: its rlhf_course is the "
                        "second arm (repetitions interleaved, alternating which goes first)")
    parser.add_argument("--output", default=None, help="results/<name>.md ('' to skip; default prep_<profile>)")
    parser.add_argument("--one-pass", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import rlhf_course
    from rlhf_course.config import get_profile

    profile = get_profile(args.profile)
    if args.one_pass:
        with tempfile.TemporaryDirectory() as workdir:
            print(json.dumps({"package": str(Path(rlhf_course.__file__).parent), **prepare(profile, Path(workdir))}))
        return
    arms = {"this tree": None}
    if args.compare:
        arms[args.compare] = str(Path(args.compare).resolve())
    print(f"profile {profile.name}; arms {list(arms)}")
    runs = {arm: [] for arm in arms}
    for repetition in range(args.repetitions):
        for arm in (list(arms) if repetition % 2 == 0 else list(arms)[::-1]):
            runs[arm].append(one_pass(profile.name, arms[arm]))
            print(f"{arm}, repetition {repetition + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in runs[arm][-1].items()),
                  flush=True)
    steps = list(runs["this tree"][0])
    medians = {arm: {step: statistics.median(run[step] for run in runs[arm]) for step in steps} for arm in arms}
    counted = [step for step in steps if step != "01 texts: list(column)"]  # the notebook reads column[:]
    rows = [[step, *(f"{medians[arm][step]:.2f}" for arm in arms)] for step in steps]
    rows.append(["total (without list(column))", *(f"{sum(medians[arm][s] for s in counted):.2f}" for arm in arms)])
    text = common.table(["step", *(f"{arm}: median s" for arm in arms)], rows)
    print(text)
    name = f"prep_{profile.name}.md" if args.output is None else args.output
    if name:
        header = common.machine_header(f"CPU-side preparation, profile {profile.name}", {
            "arms": ", ".join(f"{arm} (rlhf_course from {path or 'this tree'})" for arm, path in arms.items()),
            "repetitions": f"{args.repetitions}, each a fresh process, arms alternating"})
        path = common.write_result(name if name.endswith(".md") else name + ".md", header + "\n" + text + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
