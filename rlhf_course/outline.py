"""The course's notebooks in order: what each is called and which checkpoint it writes.

The one list every other part reads: the first cell's title (`course.start`), the error for a missing
checkpoint (which notebook makes it), the introduction's table of contents, and the tests that every notebook
has its expected minutes in each profile.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Notebook:
    number: str  # "04": what `course.start` and `run --until` take
    file: str  # "04_ppo": notebooks/<file>.ipynb
    title: str
    writes: str | None = None  # the checkpoint it saves under runs/<profile>/checkpoints/, if any


NOTEBOOKS = (
    Notebook("00", "00_introduction", "Introduction"),
    Notebook("01", "01_base_model", "Pretraining a base model", writes="base"),
    Notebook("02", "02_sft", "Supervised fine-tuning", writes="sft"),
    Notebook("03", "03_reward_model", "A reward model from human rankings", writes="reward"),
    Notebook("04", "04_ppo", "PPO", writes="ppo"),
    Notebook("05", "05_evaluation", "Evaluation and the limits of RLHF"),
    Notebook("06", "06_dpo", "DPO", writes="dpo"),
    Notebook("07", "07_grpo", "RL without a critic (GRPO) and verifiable rewards", writes="grpo"),
)
BY_NUMBER = {notebook.number: notebook for notebook in NOTEBOOKS}


def checkpoint_notebook(phase: str) -> Notebook | None:
    """The notebook that writes checkpoint `phase` ("ppo" -> 04_ppo), or None for one no notebook writes."""
    return next((notebook for notebook in NOTEBOOKS if notebook.writes == phase), None)
