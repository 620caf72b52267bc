"""lm_course: the small, tested package behind the course's notebooks.

Each module or subpackage holds one concept: ``data`` (data sets), ``tokenizers``,
``attention``, ``positional``, ``models``, ``training``, ``generation``, ``zoo`` (the
model cache), ``pretraining``, ``finetune``, ``translation``, ``compression``,
``parallel``, ``plotting`` and ``exercises``.
"""

__version__ = "0.1.0"
