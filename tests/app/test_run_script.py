"""./run.sh as a teacher starts it: the address it prints is the one the server listens on,
and a start that installs nothing says nothing about installing."""

import os
import signal
import subprocess
import urllib.request

import pytest

from devtools.browser import REPO, free_port, poll_until


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_run_sh_prints_the_port_it_serves_on(tmp_path, form):
    port = free_port()
    flag = ["--server.port", str(port)] if form == "separate" else [f"--server.port={port}"]
    env = dict(os.environ, CNN_LAB_HOME=str(tmp_path / "lab"))
    proc = subprocess.Popen(
        ["bash", "run.sh", *flag, "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert f"http://localhost:{port} " in first, first
        assert "Installing" not in first  # the venv is installed: nothing to say about it
        poll_until(lambda: answers(f"http://127.0.0.1:{port}"), 90, f"the app on port {port}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
