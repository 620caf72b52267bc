"""Exercise checkers: one module per chapter, on the shared ``checker`` machinery.

In a notebook::

    from lm_course.exercises import ch02_attention as ex
    ex.check_stable_softmax(my_softmax)

Each chapter module also holds the reference solutions (``solution_...``), which the
book shows folded in its appendix. :mod:`lm_course.exercises.checker` explains what
every check holds an answer to, and how a chapter writes its own.
"""

from .checker import Case, CheckResult, Forbid, compare, run_cases

__all__ = ["Case", "CheckResult", "Forbid", "compare", "run_cases"]
