"""Repository hygiene: lint, clean notebooks, documented public API, true README."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import lm_course

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
COLAB_MARKER = '"google.colab" in sys.modules'


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if not found:
        pytest.skip(
            f"{name} is not installed; install the test extras: "
            "pip install -e '.[test]'"
        )
    return found


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "lm_course", "tests", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_executed_in_order(notebook: Path) -> None:
    result = subprocess.run(
        [
            _tool("nbstripout"),
            "--verify",
            "--keep-output",
            "--keep-count",
            "--extra-keys",
            "metadata.language_info.version",
            str(notebook),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, (
        f"{notebook.name} has metadata nbstripout would remove; "
        "regenerate it with `make notebooks`"
    )
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert COLAB_MARKER in "".join(code[0]["source"]), (
        "the first cell must install the course in Colab"
    )
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    for cell in code:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", f"stored error in {notebook.name}"
            data = output.get("data", {})
            assert "image/svg+xml" not in data, "plots must be PNG"
            assert "application/vnd.jupyter.widget-view+json" not in data, "no widgets"
            text = "".join(output.get("text", ""))
            assert "/work/" not in text and "/home/" not in text, (
                "no absolute paths in outputs"
            )
    assert notebook.stat().st_size < 3_000_000


def _public_members():
    for info in pkgutil.walk_packages(lm_course.__path__, "lm_course."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                name.startswith("_")
                or getattr(obj, "__module__", None) != module.__name__
            ):
                continue
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{info.name}.{name}", obj


def test_public_api_has_docstrings_and_type_hints() -> None:
    missing_doc, missing_hints = [], []
    for qualname, obj in _public_members():
        if not inspect.getdoc(obj):
            missing_doc.append(qualname)
        if inspect.isfunction(obj):
            sig = inspect.signature(obj)
            if sig.return_annotation is inspect.Signature.empty or any(
                p.annotation is inspect.Parameter.empty
                for p in sig.parameters.values()
                if p.name not in ("self", "cls")
            ):
                missing_hints.append(qualname)
    assert not missing_doc, f"public objects without a docstring: {missing_doc}"
    assert not missing_hints, (
        f"public functions without full type hints: {missing_hints}"
    )


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", readme, flags=re.M):
        assert re.search(rf"^{target}:", makefile, flags=re.M), (
            f"README mentions make {target}"
        )
    assert "make book" in readme and "make test" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def test_book_is_published_to_github_pages_on_every_push_to_main() -> None:
    """The publishing workflow: trigger, permissions, the tools, build, deploy."""
    import yaml

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    workflow = yaml.safe_load((ROOT / ".github/workflows/book.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"]["pages"] == "write"
    assert workflow["permissions"]["id-token"] == "write"
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    used = {step.get("uses", "").split("@")[0]: step for step in steps}
    commands = "\n".join(step.get("run", "") for step in steps)
    assert "jupyter-book build . -W --keep-going --all" in commands
    assert used["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert "actions/deploy-pages" in used
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in extras["optional-dependencies"]["book"]:
        assert requirement in commands, f"the workflow must install {requirement}"
    contributing = (ROOT / "book" / "contributing.md").read_text(encoding="utf-8")
    assert ".github/workflows/book.yml" in contributing, "document the workflow"
