"""The app's own menu, and no other, from the very first load of a fresh server.

The page scripts live in pages/, which Streamlit also reads as a legacy multipage app: a
menu of its own ("app", "shared", "data", ...) for the sessions that start before any
session has called st.navigation. scripts/serve.py switches that mode off before the first
session; these tests watch every menu a tab ever draws, from its first paint on.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devtools.browser import (
    REPO,
    SERVER_START_TIMEOUT_S,
    AppServer,
    assert_app_navigation,
    free_port,
    start_server,
    stop_server,
    wait_for_health,
)

APP_MENU = "Home|Data|Train|Predict|Inspect|Evaluate|Learn"

# Runs in every tab before the app's own scripts: records each distinct set of sidebar menus
# the tab ever shows ("<menus>:<links of each>"), however briefly.
WATCH_MENUS = r"""
window.__menus = [];
const record = () => {
  const navs = Array.from(document.querySelectorAll('[data-testid="stSidebarNav"]'));
  if (!navs.length) return;
  // a link reads "<icon name>\n\n<title>": keep the title
  const title = a => a.innerText.trim().split('\n').pop();
  const links = nav => Array.from(nav.querySelectorAll('a')).map(title).join('|');
  const seen = navs.length + ':' + navs.map(links).join(' / ');
  if (!window.__menus.includes(seen)) window.__menus.push(seen);
};
new MutationObserver(record).observe(
  document, {subtree: true, childList: true, characterData: true}
);
"""


def menus_seen(browser, url: str, paths: tuple[str, ...]) -> list[list[str]]:
    """Opens one tab per path at the same moment; every menu each tab showed, once drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(WATCH_MENUS)
    try:
        tabs = [context.new_page() for _ in paths]
        for tab, path in zip(tabs, paths, strict=True):
            tab.goto(url + path, wait_until="commit")  # all tabs connect before any is drawn
        for tab in tabs:
            tab.get_by_test_id("stSidebarNav").first.wait_for(timeout=60_000)
            tab.wait_for_timeout(1500)  # a second menu, or a replaced one, would show by now
        return [tab.evaluate("window.__menus.slice()") for tab in tabs]
    finally:
        context.close()


@pytest.mark.browser
def test_a_fresh_server_shows_only_the_app_menu_from_the_first_load(browser, tmp_path):
    server = start_server(tmp_path / "lab")
    try:
        seen = menus_seen(browser, server.url, ("/", "/train", "/predict"))
        assert seen == [[f"1:{APP_MENU}"]] * 3, seen
        # and the page drawn is app.py's (its dataset chooser), not a page script alone
        context = browser.new_context()
        page = context.new_page()
        page.goto(server.url + "/learn")
        assert_app_navigation(page)
        context.close()
    finally:
        stop_server(server)


@pytest.mark.browser
def test_the_watch_sees_the_legacy_menu_when_streamlit_is_started_plainly(browser, tmp_path):
    """The control: `streamlit run app.py` without scripts/serve.py draws the legacy menu on
    a fresh server's first load, and the watch above sees it, so it is able to fail."""
    home = tmp_path / "lab"
    home.mkdir()
    port = free_port()
    log = open(home / "server.log", "ab")  # noqa: SIM115 - closed with the server below
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=REPO, env={**os.environ, "CNN_LAB_HOME": str(home)},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = AppServer(proc, f"http://127.0.0.1:{port}", home, home / "server.log")
    try:
        wait_for_health(server.url, proc, SERVER_START_TIMEOUT_S)
        (first,) = menus_seen(browser, server.url, ("/",))
        legacy = [menu for menu in first if "app" in menu.split(":", 1)[1].split("|")]
        assert legacy, f"no legacy menu (its first link, app, is the entry script): {first}"
    finally:
        stop_server(server)
        log.close()
