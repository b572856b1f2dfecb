"""pages/_session.py names every session key the pages keep and every hand-off between
pages: no page spells out a session key of its own or another page's in st.session_state,
and none names a widget key of another page."""

import ast
import re
from pathlib import Path

from pages import _session as session

PAGES = Path(__file__).resolve().parents[2] / "pages"
SWITCHED = ["_shared", "data", "evaluate", "home", "inspect", "learn", "predict", "train"]
PREFIXES = {"inspect": "inspect_", "evaluate": "evaluate_", "learn": "learn_",
            "data": "data_", "train": "train_"}  # fmt: skip
STATE_ACCESS = re.compile(r"session_state(\[|\.(get|pop|setdefault)\()\s*f?[\"']")


def keys_of_session() -> dict[str, str]:
    return {
        name: value
        for name, value in vars(session).items()
        if name.isupper() and isinstance(value, str) and name not in ("DEFAULT_DATASET",)
    }


def test_the_session_keys_are_distinct():
    keys = {k: v for k, v in keys_of_session().items() if not k.startswith("URL_")}
    keys.pop("INSPECT_SOURCE_TEST"), keys.pop("INSPECT_SALIENCY_TAB")  # values, not keys
    assert len(set(keys.values())) == len(keys), keys


def test_no_page_spells_out_a_session_key():
    for name in SWITCHED:
        text = (PAGES / f"{name}.py").read_text()
        assert not STATE_ACCESS.findall(text), f"pages/{name}.py: {STATE_ACCESS.findall(text)}"


def widget_keys(path: Path) -> list[str]:
    """The literal start of every key= argument in a page."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        for kw in getattr(node, "keywords", []) if isinstance(node, ast.Call) else []:
            if kw.arg != "key":
                continue
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                found.append(kw.value.value)
            elif isinstance(kw.value, ast.JoinedStr) and kw.value.values:
                first = kw.value.values[0]
                if isinstance(first, ast.Constant):
                    found.append(first.value)
    return found


def test_no_page_names_another_pages_widget_key():
    for name in SWITCHED:
        for key in widget_keys(PAGES / f"{name}.py"):
            for other, prefix in PREFIXES.items():
                assert other == name or not key.startswith(prefix), (name, key)


def test_the_hand_off_keys_are_the_ones_inspect_reads():
    text = (PAGES / "inspect.py").read_text()
    for used in (
        "session.INSPECT_MODEL",
        "session.INSPECT_SOURCE",
        "session.INSPECT_TAB",
        "session.INSPECT_EPOCH",
        "session.inspect_index_key",
        "session.latest_image",
    ):
        assert used in text, used  # fmt: skip
    assert "session.open_test_image_in_inspect" in (PAGES / "evaluate.py").read_text()
    assert "session.keep_latest_image" in (PAGES / "predict.py").read_text()
