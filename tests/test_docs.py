"""The examples of the API reference run, as a user would paste them."""
from __future__ import annotations

import doctest
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_api_reference_examples_run():
    result = doctest.testfile(str(DOCS / "api.md"), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 25
    assert result.failed == 0


README = DOCS.parent / "README.md"
SITE = DOCS.parent / "tests" / "startproject_site"


def _fenced_blocks(text: str) -> tuple[list[tuple[str, str, str]], bool]:
    """(section heading, info string, code) of every fenced block; and whether the last fence was closed."""
    blocks, heading, fence, lines = [], "", None, []
    for line in text.splitlines():
        if fence is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif line.startswith("```"):
                fence, lines = line[3:].strip(), []
        elif line.rstrip() == "```":  # a closing fence has nothing after it (CommonMark)
            blocks.append((heading, fence, "\n".join(lines) + "\n"))
            fence = None
        else:
            lines.append(line)
    return blocks, fence is None


def test_readme_closes_every_code_fence():
    blocks, closed = _fenced_blocks(README.read_text())
    assert closed, "the README's last code fence is never closed"
    assert all(info for _, info, _ in blocks), "a code block without a language"
    assert not [code for _, _, code in blocks if "\n## " in "\n" + code], "a section heading inside a code block"


def test_readme_django_section_is_what_the_startproject_site_has():
    """Every statement of the section's file blocks (``# mysite/<file>`` first) is in that file, verbatim."""
    import ast

    checked = 0
    for heading, info, code in _fenced_blocks(README.read_text())[0]:
        first = code.splitlines()[0]
        if heading != "In your Django project" or info != "python" or not first.startswith("# mysite/"):
            continue
        site_file = (SITE / first[2:].split(":")[0]).read_text()
        for statement in ast.parse(code).body:
            source = ast.get_source_segment(code, statement, padded=True)
            assert source in site_file, f"{first[2:]} lacks:\n{source}"
            checked += 1
    assert checked >= 10
    assert (SITE / "sliders.py").resolve() == (DOCS.parent / "examples" / "sliders.py").resolve()
