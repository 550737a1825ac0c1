"""The command line: bad input gets one clear line and a non-zero exit status, never a traceback."""

import errno
import json
import os
import subprocess
import sys

from rlhf_course.__main__ import main


def test_unknown_profile(capsys):
    assert main(["run", "--profile", "huge"]) == 2
    err = capsys.readouterr().err
    assert "unknown profile 'huge'" in err and "tiny" in err and "Traceback" not in err


def test_unknown_notebook_number(capsys):
    assert main(["run", "--until", "42"]) == 2
    err = capsys.readouterr().err
    assert "--until 42" in err and "00" in err


def test_from_after_until(capsys):
    assert main(["run", "--from", "02", "--until", "01"]) == 2
    assert "comes after" in capsys.readouterr().err


def test_unknown_profile_in_environment(monkeypatch, capsys):
    monkeypatch.setenv("RLHF_PROFILE", "medium")
    assert main(["report"]) == 2
    assert "RLHF_PROFILE" in capsys.readouterr().err


def test_corrupt_report_is_one_line(runs, capsys):
    (runs / "tiny").mkdir(parents=True)
    (runs / "tiny" / "report.json").write_text("{oops")
    assert main(["report", "--profile", "tiny"]) == 1
    assert "not valid JSON" in capsys.readouterr().err


def _run_cli(*args, env_runs, timeout=300, cwd=None):
    env = dict(os.environ, RLHF_RUNS_DIR=str(env_runs), RLHF_PROFILE="tiny")
    return subprocess.run([sys.executable, "-m", "rlhf_course", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=cwd)


def _ranking_line(**fields):
    record = {"id": "r1", "time": "2026-01-01T00:00:00+00:00", "annotator": "ana", "source": "human",
              "checkpoint": "sft", "prompt": "Write a story.", "answers": ["a", "b"], "ranking": [[0], [1]]}
    return json.dumps({**record, **fields}) + "\n"


def test_prefs_check_a_folder_that_cannot_be_read(tmp_path, monkeypatch, capsys):
    """Root may read any folder, so listing it is refused the way a chmod 000 folder refuses other users."""
    (tmp_path / "ana.jsonl").write_text(_ranking_line())
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(tmp_path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert main(["prefs", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}: cannot read this folder: Permission denied" in out and "OK" not in out


def test_prefs_check_flags_lines_the_loaders_cannot_use(tmp_path, capsys):
    path = tmp_path / "ana.jsonl"
    path.write_text(_ranking_line() + _ranking_line(id="r2", prompt="\ud800") + '{"id": ' + "[" * 5000 + "]" * 5000
                    + "}\n")
    assert main(["prefs", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: 1 rankings, 0 skipped, 0 undone, 1 pairs, 2 problem(s)" in out
    assert f"{path}:2: the prompt contains '\\ud800'" in out and f"{path}:3: JSON nested too deeply" in out


def test_prefs_check_does_not_hang_on_a_fifo(tmp_path):
    """Opening a FIFO for reading waits for a writer: a regression would hang, so it runs with a timeout."""
    (tmp_path / "ana.jsonl").write_text(_ranking_line())
    os.mkfifo(tmp_path / "bob.jsonl")
    result = _run_cli("prefs", "check", str(tmp_path), env_runs=tmp_path / "runs", timeout=120)
    assert result.returncode == 1, result.stderr
    assert f"{tmp_path / 'bob.jsonl'}: not read: not a regular file but a FIFO" in result.stdout
    assert f"{tmp_path / 'ana.jsonl'}: 1 rankings" in result.stdout and "Traceback" not in result.stderr


def test_running_a_notebook_without_its_input_checkpoint(runs):
    """Notebook 02 needs `base`: the run stops with the notebook, the cell and what to run instead. (A corrupt
    checkpoint raises the same CheckpointError: tests/unit/test_models.py; one kernel start here is enough.)
    RLHF_RUNS_DIR is given relative to where `run` starts: the kernel, which starts in notebooks/, looks in the
    same folder (it once looked under notebooks/ instead)."""
    result = _run_cli("run", "--from", "02", "--until", "02", env_runs=runs.name, cwd=runs.parent)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()
    message = next(line for line in last if line.startswith("error:"))
    assert "02_sft.ipynb failed in code cell 2" in message and "CheckpointError" in message
    assert "01_base_model" in message
    assert str(runs.resolve() / "tiny" / "checkpoints" / "base") in message
    assert (runs / "tiny" / "executed" / "02_sft.ipynb").exists()
    import nbformat  # the failed run's copy is the notebook as written: the memory probe never stays in it

    source = nbformat.read(os.path.join(os.path.dirname(__file__), "..", "..", "notebooks", "02_sft.ipynb"), 4)
    assert len(nbformat.read(runs / "tiny" / "executed" / "02_sft.ipynb", 4).cells) == len(source.cells)


def _one_cell_notebook(folder, source):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source)]
    path = folder / "00_probe.ipynb"
    nbformat.write(notebook, path)
    return path


def test_kernels_over_tcp_where_there_are_no_unix_sockets(tmp_path, monkeypatch, capfd):
    """Windows has no Unix sockets: the runner's kernel then talks TCP on 127.0.0.1, encrypted, so ipykernel
    does not warn that the traffic is plain text."""
    import socket

    import nbformat

    from rlhf_course import __main__ as cli

    assert cli.kernel_connection(str(tmp_path))["transport"] == "ipc"  # here: Unix sockets
    with monkeypatch.context() as patch:  # only for this call: asyncio itself needs AF_UNIX here
        patch.delattr(socket, "AF_UNIX")
        settings = cli.kernel_connection(str(tmp_path))
    assert settings["transport"] == "tcp" and settings["ip"] == "127.0.0.1"
    assert settings["transport_encryption"] == "auto"
    monkeypatch.setattr(cli, "has_unix_sockets", lambda: False)
    path = _one_cell_notebook(tmp_path, "print(6 * 7)")
    run = cli.execute_notebook(path, tmp_path / "out" / path.name, timeout=120)
    executed = nbformat.read(tmp_path / "out" / path.name, as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "42\n"
    assert len(executed.cells) == 1 and run.peak_gpu_gib is None  # the memory probe ran and was taken out
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out


def test_the_peak_gpu_memory_is_read_from_the_probe_cell():
    from rlhf_course.__main__ import peak_gpu_gib

    def printed(text):
        return [{"output_type": "stream", "name": "stdout", "text": text}]

    assert peak_gpu_gib(printed('{"peak_gpu_bytes": 3221225472}\n')) == 3.0
    assert peak_gpu_gib(printed('{"peak_gpu_bytes": null}\n')) is None  # no CUDA
    assert peak_gpu_gib([]) is None and peak_gpu_gib(printed("not json")) is None
