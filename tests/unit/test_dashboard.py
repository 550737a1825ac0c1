"""The PPO dashboard: every panel drawn from a history, answers escaped, warnings shown, nothing drawn headless."""

from rlhf_course.course import dashboard
from rlhf_course.engine import rl

RECORD = {"reward": 0.1, "kl": 0.2, "entropy": 1.0, "clip_fraction": 0.01, "approx_kl": 0.001, "value_loss": 1.0,
          "explained_variance": 0.1, "mean_length": 50.0, "ended_fraction": 0.9, "ratio": 1.0}


def _state(n=4):
    history = [dict(RECORD, iteration=i + 1, **({"gold": 0.6} if i % 2 == 0 else {})) for i in range(n)]
    return rl.RLState(history=history, samples=[{"iteration": 1, "answers": ["<b>Lily</b>"], "gold": [0.5]}])


def test_figure_has_a_panel_per_metric():
    fig = dashboard.ppo_figure(_state().history)
    assert [ax.get_title() for ax in fig.axes] == [title for title, _ in dashboard.PANELS.values()]


def test_samples_table_escapes_model_text():
    html = dashboard.samples_table(_state().samples, ["Write <a> story"])
    assert "&lt;b&gt;Lily&lt;/b&gt;" in html and "Write &lt;a&gt; story" in html and "gold 0.50" in html


def test_update_shows_warnings_and_skips_frames_headless(monkeypatch):
    monkeypatch.setenv("RLHF_HEADLESS", "1")
    board = dashboard.PPODashboard(4, ["p"])
    state = _state()
    for record, kl in zip(state.history, [0.0, -1.0, -1.0, -1.0]):
        record["kl"] = kl
    board.update(state)
    board.close()
    assert "negative" in board.warnings.value
    assert len(board.plots.outputs) == 0
