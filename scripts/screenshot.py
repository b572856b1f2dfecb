"""Screenshot pages of a running CNN Lab in Debian's Chromium, to look at them as a learner would.

.venv/bin/python scripts/screenshot.py http://localhost:8501 data predict --out /tmp/shots
"""

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("pages", nargs="*", default=[""], help="url paths, e.g. data train")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/screens"))
    parser.add_argument("--wait-text", default="", help="text to wait for on every page")
    parser.add_argument("--settle-ms", type=int, default=1500)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for path in args.pages:
            page.goto(f"{args.url.rstrip('/')}/{path}")
            page.wait_for_selector("[data-testid='stAppViewContainer']")
            if args.wait_text:
                page.get_by_text(args.wait_text, exact=True).first.wait_for()
            page.wait_for_timeout(args.settle_ms)
            target = args.out / f"{path or 'home'}.png"
            page.screenshot(path=str(target), full_page=True)
            print(target)
        browser.close()


if __name__ == "__main__":
    main()
