"""The notebooks' plumbing: what a notebook's first cell calls (`course.start`), the report, the exercises,
plots and dashboards, and the experiments notebooks share through a cache."""

from rlhf_course.course.session import Session, is_headless, start
from rlhf_course.outline import NOTEBOOKS

__all__ = ["NOTEBOOKS", "Session", "is_headless", "start"]
