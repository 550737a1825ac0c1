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
    board = dashboard.RLDashboard(4, ["p"])
    state = _state()
    for record, kl in zip(state.history, [0.0, -1.0, -1.0, -1.0]):
        record["kl"] = kl
    board.update(state)
    board.close()
    assert "negative" in board.warnings.value
    assert len(board.plots.outputs) == 0


def _history(n=6, **extra):
    """A short fake run: every PPO metric each iteration, gold every other one."""
    return [dict(RECORD, iteration=i + 1, reward=0.1 * i, **extra, **({"gold": 0.6} if i % 2 == 0 else {}))
            for i in range(n)]


def test_summary_figure_has_the_chosen_panels_with_their_data():
    history = _history()
    fig = dashboard.summary_figure(history, title="PPO")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    keys = ["reward", "gold", "kl", "entropy", "clip_fraction", "approx_kl", "explained_variance",
            "mean_length", "ended_fraction"]
    assert titles == [dashboard.PANELS[key][0] for key in keys]
    reward_x, reward_y = fig.axes[0].lines[0].get_data()
    assert list(reward_x) == [1, 2, 3, 4, 5, 6] and list(reward_y) == [0.1 * i for i in range(6)]
    assert list(fig.axes[1].lines[0].get_xdata()) == [1, 3, 5]  # gold only where it was measured
    assert min(ax.title.get_fontsize() for ax in fig.axes if ax.get_title()) >= 11


def test_grpo_summary_skips_panels_without_data():
    history = _history(flat_groups=0.2)  # no verifier reward in this run
    keys = dashboard.summary_keys(history, dashboard.GRPO_PANELS)
    assert "verifier" not in keys and "flat_groups" in keys and len(keys) <= 9
    fig = dashboard.summary_figure(history, dashboard.GRPO_PANELS)
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == [dashboard.GRPO_PANELS[k][0] for k in keys]


def test_close_headless_shows_the_final_figure_and_a_few_answers(monkeypatch):
    monkeypatch.setenv("RLHF_HEADLESS", "1")
    shown = []
    monkeypatch.setattr(dashboard, "display", shown.append)
    samples = [{"iteration": i, "answers": [f"answer {i}", "other", "third"], "gold": [0.5, 0.6, 0.7]}
               for i in (1, 5, 9)]
    state = rl.RLState(history=_history(9), samples=samples)
    board = dashboard.RLDashboard(9, ["p1", "p2", "p3"])
    board.update(state)
    board.close()
    figure, table = shown
    assert len(figure.axes) == 9
    assert [row[:2] for row in table.rows] == [["p1", 1], ["p1", 9], ["p2", 1], ["p2", 9]]


def test_live_widget_shown_only_when_someone_watches(monkeypatch, capsys):
    shown = []
    monkeypatch.setattr(dashboard, "display", shown.append)
    board = dashboard.RLDashboard(2, ["p"])
    monkeypatch.setenv("RLHF_HEADLESS", "1")
    board._ipython_display_()
    assert shown == [] and "JupyterLab" in capsys.readouterr().out
    monkeypatch.setenv("RLHF_HEADLESS", "0")
    board._ipython_display_()
    board.close()
    assert shown == [board.widget]
