"""Starts the Streamlit server on app.py, with the page scripts routed by st.navigation only.

Streamlit still knows a legacy way of making a multipage app: a folder named ``pages/`` next
to the main script becomes a menu. It drops that mode once a script calls st.navigation, but
decides per server on the first session, so the first tabs of a fresh server (a classroom
reconnecting after a restart) would get the legacy menu and run a page without app.py. The
lab's pages live in ``pages/`` and are routed by app.py's st.navigation, so the legacy mode
is switched off here, before any session starts.

Usage: ``python scripts/serve.py [streamlit run options]`` (./run.sh does this).
"""

import sys
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str]) -> None:
    # Streamlit reads this before each script run (script_runner) and sets it only while it
    # is None; st.navigation sets it to False in the same way.
    PagesManager.uses_pages_directory = False
    cli.main(args=["run", str(APP), *argv], prog_name="streamlit")  # exits with its status


if __name__ == "__main__":
    main(sys.argv[1:])
