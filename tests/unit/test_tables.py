"""Tables a notebook ends on, and the summary `report.record_phase` returns instead of the whole report."""

from rlhf_course.course import report
from rlhf_course.course.tables import Table, flatten, format_value


def test_numbers_are_shown_to_three_significant_digits_and_whole_numbers_whole():
    assert [format_value(v) for v in (0.123456, 12.3456, 1234.5, 40, 12_345, True, False, None, "sft")] == [
        "0.123", "12.3", "1,234", "40", "12,345", "✓", "✗", "—", "sft"]


def test_a_table_aligns_numbers_right_and_text_left_and_escapes_html():
    table = Table([{"model": "<b>sft</b>", "gold": 0.61234}, {"model": "ppo", "gold": 0.7}], caption="gold")
    page = table._repr_html_()
    assert "<th style='text-align:left;padding:0.15em 0.8em'>model</th>" in page
    assert "&lt;b&gt;sft&lt;/b&gt;" in page and "<td style='text-align:right;padding:0.15em 0.8em'>0.612</td>" in page
    assert repr(table).splitlines() == ["gold", "model        gold", "----------  -----", "<b>sft</b>  0.612",
                                        "ppo           0.7"]


def test_flatten_names_nested_numbers_by_path_and_leaves_lists_out():
    assert flatten({"wall_s": 3.0, "gold": {"sft": 0.6, "ppo": {"t1": 0.7}}, "history": [1, 2]}) == {
        "wall_s": 3.0, "gold.sft": 0.6, "gold.ppo.t1": 0.7}


def test_record_phase_returns_this_phases_checks_and_numbers_not_the_whole_report(runs):
    report.check("tiny", "ppo.gold_gain", 0.14, at_least=0.1)
    report.check("tiny", "sft.gold_gain", 0.3, at_least=0.2)
    summary = report.record_phase("tiny", "ppo", {"wall_s": 12.0, "gold": {"ppo": 0.75}})
    assert list(summary.checks) == ["ppo.gold_gain"]
    outcomes, numbers = summary.tables()
    assert outcomes.rows == [["gold_gain", 0.14, "≥ 0.1", True]]
    assert numbers.rows == [["wall_s", 12.0], ["gold.ppo", 0.75]]
    assert report.read_report("tiny")["phases"]["ppo"] == {"wall_s": 12.0, "gold": {"ppo": 0.75}}


def test_a_large_nested_entry_is_named_with_its_size_not_spelled_out(runs):
    board = {name: {"gold": 0.5, "low": 0.4, "high": 0.6} for name in ("sft", "ppo", "dpo")}
    summary = report.record_phase("tiny", "grpo", {"wall_s": 3.0, "gold": {"grpo": 0.7}, "scoreboard": board,
                                                   "curve": [1, 2]})
    (numbers,) = summary.tables()
    assert numbers.rows == [["wall_s", 3.0], ["gold.grpo", 0.7], ["scoreboard", "9 numbers"]]
