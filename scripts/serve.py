"""Starts the Streamlit server on app.py, with the page scripts routed by st.navigation only.

Streamlit still knows a legacy way of making a multipage app: a folder named ``pages/`` next
to the main script becomes a menu. It drops that mode once a script calls st.navigation, but
decides per server on the first session, so the first tabs of a fresh server (a classroom
reconnecting after a restart) would get the legacy menu and run a page without app.py. The
lab's pages live in ``pages/`` and are routed by app.py's st.navigation, so the legacy mode
is switched off here, before any session starts.

TensorFlow's import takes most of a start (8-13 s on two cores), so the server imports it
in a thread of its own: once the first page has been drawn (app.py), or IMPORT_AT_LATEST_S
after the start if no one has opened the lab by then. Home, Data and Learn render without
it; a page that needs it shows a spinner until it is done (pages/_shared.py). It does not
begin at once because it holds the interpreter lock for up to seconds at a time, which
would hold up the first page too.

Usage: ``python scripts/serve.py [streamlit run options]`` (./run.sh does this).
"""

import sys
import threading
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
IMPORT_AT_LATEST_S = 10.0  # the server answers within 1-3 s; a first page follows in 1-2


def serve(app: Path, argv: list[str]) -> None:
    """Runs `streamlit run app` routed by st.navigation only (benchmarks start a bare app so)."""
    # Streamlit reads this before each script run (script_runner) and sets it only while it
    # is None; st.navigation sets it to False in the same way.
    PagesManager.uses_pages_directory = False
    cli.main(args=["run", str(app), *argv], prog_name="streamlit")  # exits with its status


def import_tensorflow_later() -> None:
    """Starts the background import of TensorFlow, unless a first page already has."""
    # Imported here, in the timer's thread, not before the server starts: pages/_shared
    # brings numpy, Pillow and the lab's data code (about 2 s), which would delay the
    # first page by as much.
    from pages._shared import import_tensorflow_in_background

    import_tensorflow_in_background()


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO))  # Streamlit adds it too, but only once it runs app.py
    later = threading.Timer(IMPORT_AT_LATEST_S, import_tensorflow_later)
    later.daemon = True  # a server stopped before then does not wait for it
    later.start()
    serve(APP, argv)


if __name__ == "__main__":
    main(sys.argv[1:])
