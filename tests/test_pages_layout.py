"""Every page is listed in app.py and runs through it, even when opened first by a deep link."""

import re

from tests.conftest import REPO

PAGE_FILES = sorted(p for p in (REPO / "pages").glob("*.py") if not p.name.startswith("_"))


def test_every_page_script_is_in_the_navigation():
    listed = set(re.findall(r'st\.Page\("pages/(\w+)\.py"', (REPO / "app.py").read_text()))
    assert listed == {p.stem for p in PAGE_FILES}


def test_every_page_imports_the_shared_module_that_leaves_legacy_mode():
    # Without it, the first request after a server start for /<page> runs that page
    # without app.py (Streamlit's legacy pages/ mode): no sidebar, wrong navigation.
    for page in PAGE_FILES:
        assert re.search(r"^from pages(\._shared)? import", page.read_text(), re.M), page.name
