"""The course's training recipes, one small module per chapter.

Each module builds :class:`~lm_course.zoo.Recipe` objects and calls
:func:`~lm_course.zoo.register`; the registry imports every module here the first time
a name is looked up, so a new chapter only adds a file.

``GPT_CODE`` lists the modules whose code decides a trained character-level GPT; a
recipe's ``code`` usually starts from it.
"""

GPT_CODE = (
    "lm_course.attention",
    "lm_course.positional",
    "lm_course.models.blocks",
    "lm_course.models.gpt",
    "lm_course.training",
    "lm_course.tokenizers.char",
    "lm_course.data.loaders",
    "lm_course.charlm",
)
