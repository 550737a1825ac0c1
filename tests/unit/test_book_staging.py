"""What the book build does to executed notebooks before Sphinx sees them (scripts/build_book.py)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("build_book", ROOT / "scripts" / "build_book.py")
build_book = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_book)

VIEW, STATE = build_book.WIDGET_VIEW, build_book.WIDGET_STATE


def widget_output(model_id: str, text: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0}, "text/plain": text}}


def test_a_closed_progress_bar_leaves_nothing_and_a_live_widget_stays():
    frozen = widget_output("closed-bar", "sampling:   0%|          | 0/2 [00:00<?, ?it/s]")
    other = widget_output("no-state", "RankingWidget(items=12)")
    kept = widget_output("saved", "PPO dashboard")
    nb = {"metadata": {"widgets": {STATE: {"state": {"saved": {}}}}},
          "cells": [{"cell_type": "code", "outputs": [frozen, other, kept]}]}
    assert build_book.strip_stateless_widgets(nb) == 2
    outputs = nb["cells"][0]["outputs"]
    assert [o["data"].get("text/plain") for o in outputs] == ["RankingWidget(items=12)", "PPO dashboard"]
    assert VIEW not in outputs[0]["data"] and VIEW in outputs[1]["data"]
