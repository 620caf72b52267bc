"""``python -m lm_course``: see :mod:`lm_course.cli`."""

from .cli import main

main()
