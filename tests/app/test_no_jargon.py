"""No internal shorthand reaches a learner: the source documents are named by their titles.

"Seed 000" and friends are the team's names for the documents in ``cnn_core.models.sources``; a
teacher cannot decode them. This scans what every page renders (AppTest: every element's
text, label, help and options), the string literals of the pages, and the text that
cnn_core writes for learners (model descriptions, presets, the Learn page's filters).
"""

from __future__ import annotations

import ast
import re
import tokenize
from collections.abc import Iterator

import pytest

from cnn_core.explain import convolution
from cnn_core.models import layer_lists, sources, zoo
from cnn_core.runs import presets
from tests.factories import REPO, open_page

JARGON = re.compile(
    r"\bseeds?[\s-]*0\d\d\b"  # "seed 000", "seed-001 models", "seeds 000, 003"
    r"|\bseeds?['’]s?(?=\W)"  # "the seed's image", "the seeds' figures"
    r"|\bthe\s+seeds\b"
    r"|\bthe\s+project\s+report\b(?!\s*[*“])",  # a report the reader was never told of
    re.IGNORECASE,
)
PAGES = ["home", "data", "train", "predict", "inspect", "evaluate", "learn"]


def jargon(text: str) -> list[str]:
    """The internal words in a text."""
    return [m.group(0) for m in JARGON.finditer(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Simple ConvNet (seed 000)",
        "the convolution of seed 002, figures 9 to 13",
        "Back to the seed's image",
        "the CIFAR-10 model of the project report (86%)",
        "seed 000: 92.36%, seed 001: 99%",
        "the seeds' models",
        "Seed 004 gives no accuracy figure",
        "the most expensive of the seed-001 models",
    ],
)
def test_the_issue_examples_count_as_jargon(text):
    assert jargon(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Random seed",
        "Seed",
        "A fixed random seed gives the same run twice.",
        f"From {sources.cite('cifar10_report', 'figure 13')}.",
        "the project report “Image Classification Using Convolutional Neural Network CNN”",
    ],
)
def test_plain_words_are_not_jargon(text):
    assert not jargon(text), text


def string_literals(path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string constant in a Python file, f-strings' parts included."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_page_source_holds_jargon():
    files = [REPO / "app.py", *sorted((REPO / "pages").glob("*.py"))]
    found = [
        f"{path.name}:{line}: {word!r} in {text[:80]!r}"
        for path in files
        for line, text in string_literals(path)
        for word in jargon(text)
    ]
    assert not found, "\n".join(found)


def learner_texts() -> Iterator[tuple[str, str]]:
    """(where, text) of everything cnn_core writes for learners to read."""
    for info in zoo.list_models():
        yield f"model {info.key}", f"{info.title} {info.description} {info.citation}"
    for preset in presets.PRESETS:
        yield f"preset {preset.key}", f"{preset.title} {preset.lesson} {preset.target}"
    for name, note in convolution.FILTER_NOTES.items():
        yield f"filter {name}", f"{convolution.FILTER_TITLES[name]} {note}"
    for source in sources.SOURCES.values():
        yield f"source {source.key}", sources.reference(source.key) + source.contributes


def test_no_model_preset_or_filter_text_holds_jargon():
    found = [f"{where}: {jargon(text)}" for where, text in learner_texts() if jargon(text)]
    assert not found, "\n".join(found)


def test_every_zoo_model_cites_its_document_by_title():
    for info in zoo.list_models():
        if info.key != layer_lists.CUSTOM:
            assert sources.get(info.source).title in info.citation, info.key


def rendered_strings(node) -> Iterator[str]:
    """Every string field of an AppTest element and its children (body, label, help,
    options, captions...), read from the protobufs the browser would receive."""
    from google.protobuf.json_format import MessageToDict

    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "DESCRIPTOR"):
        yield from _strings(MessageToDict(proto))
    for child in getattr(node, "children", {}).values():
        yield from rendered_strings(child)


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("name", PAGES)
def test_no_page_renders_jargon(lab_home, name):
    at = open_page(name)
    texts = list(rendered_strings(at._tree))
    assert len(texts) > 5, "the page rendered"
    found = sorted({f"{word!r} in {text[:100]!r}" for text in texts for word in jargon(text)})
    assert not found, "\n".join(found)


def test_the_readme_lists_every_source_under_references():
    readme = (REPO / "README.md").read_text()
    references = readme.split("## References", 1)[1].split("\n## ", 1)[0]
    for key in sources.SOURCES:
        assert sources.reference(key) in references, key
    for name in ("README.md", "RESULTS.md", "BENCHMARKS.md"):
        text = (REPO / name).read_text()
        assert not jargon(text), f"{name}: {jargon(text)}"


def comments(path) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment in a Python file."""
    with path.open() as source:
        for token in tokenize.generate_tokens(source.readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string


def test_the_engine_names_documents_by_title_in_its_docstrings_and_comments():
    """A reader of cnn_core's code (a student, a teacher) meets the same titles."""
    found = [
        f"{path.name}:{line}: {word!r} in {text[:80]!r}"
        for path in sorted((REPO / "cnn_core").glob("*.py"))
        for line, text in [*string_literals(path), *comments(path)]
        for word in jargon(text)
    ]
    assert not found, "\n".join(found)
