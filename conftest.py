"""pytest hooks shared by the whole suite.

nbval executes every notebook but keeps the outputs to itself. So that CI executes each notebook only once,
this hook writes nbval's executed copy of each notebook to `runs/<profile>/executed/` as its cells run
(the same place `python -m rlhf_course run` writes to), for the Jupyter Book build to use.
"""

import copy
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("RLHF_HEADLESS", "1")  # nobody is at the widgets: notebooks drive them by code

_executed: dict = {}  # notebook path -> (executed copy, cells by id(original cell))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    if type(item).__name__ != "IPyNbCell":
        return
    import nbformat

    from rlhf_course.config import get_profile
    from rlhf_course.paths import runs_dir

    path = str(item.parent.fspath)
    if path not in _executed:
        notebook = copy.deepcopy(item.parent.nb)
        originals = [id(c) for c in item.parent.nb.cells]
        _executed[path] = (notebook, dict(zip(originals, notebook.cells)), [0])
    notebook, by_original, counter = _executed[path]
    cell = by_original[id(item.cell)]
    counter[0] += 1
    cell.execution_count = counter[0]
    cell.outputs = [copy.deepcopy(o) for o in (item.test_outputs or [])]
    for output in cell.outputs:
        if "execution_count" in output:
            output.execution_count = counter[0]
    folder = runs_dir(get_profile().name) / "executed"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / os.path.basename(path))
