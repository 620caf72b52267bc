"""Exercise checkers: one module per chapter, on top of the shared ``checker`` machinery.

In a notebook::

    from lm_course.exercises import ch02_attention as ex
    ex.check_stable_softmax(my_softmax)

Each chapter module also holds the reference solutions (``solution_...``), which the book
shows folded in its appendix.
"""

from .checker import Case, CheckResult, compare, run_cases

__all__ = ["Case", "CheckResult", "compare", "run_cases"]
