"""lm_course: the small, tested package behind the course's notebooks.

Each module holds one concept: ``data`` (data sets), ``tokenizers``, ``attention``,
``positional``, ``models``, ``training``, ``generation``, ``plotting`` and ``exercises``.
"""

__version__ = "0.1.0"
