"""The server's protective settings and the pinned dependencies stay as they should."""

import re
import tomllib

from tests.factories import REPO

# Oldest releases without the known issues: Keras safe_mode bypasses (fixed by 3.9 and
# hardened since), Pillow decoder CVEs (fixed by 11.x), Streamlit path traversal (1.37).
MINIMUM = {"keras": (3, 12, 0), "pillow": (11, 3, 0), "streamlit": (1, 37, 0),
           "tensorflow-cpu": (2, 18, 0)}  # fmt: skip


def pins() -> dict[str, tuple[int, ...]]:
    found = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([0-9.]+)\s*$", line.strip())
        if match:
            found[match.group(1).lower()] = tuple(int(p) for p in match.group(2).split("."))
    return found


def test_every_runtime_requirement_is_pinned_exactly():
    lines = [ln.strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    requirements = [ln for ln in lines if ln and not ln.startswith("#")]
    assert requirements and all("==" in ln for ln in requirements), requirements


def test_pins_are_not_older_than_the_known_fixes():
    found = pins()
    for name, oldest in MINIMUM.items():
        assert name in found, f"{name} is not pinned"
        assert found[name] >= oldest, f"{name} {found[name]} is older than {oldest}"


def test_streamlit_keeps_xsrf_and_cors_on_and_caps_uploads():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    server = config["server"]
    assert server.get("enableXsrfProtection", True) is True
    assert server.get("enableCORS", True) is True
    assert 1 <= server["maxUploadSize"] <= 100  # MB: images, not the 200 MB default
    assert config["client"]["showErrorDetails"] in ("none", False)
