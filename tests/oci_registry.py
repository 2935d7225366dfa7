"""A real OCI registry on 127.0.0.1: Debian's `docker-registry` (CNCF distribution)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OciRegistry:
    """Started in `folder`; `self.url` is `oci://127.0.0.1:<port>/charts`."""

    def __init__(self, folder: Path) -> None:
        if not os.path.exists(REGISTRY):
            if os.environ.get("STACKYARD_REQUIRE_OCI"):
                pytest.fail(f"{REGISTRY} is missing (apt-get install docker-registry)")
            pytest.skip("docker-registry is not installed (CI installs it)")
        port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
        self._process = subprocess.Popen([REGISTRY, "serve", str(config)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.host = f"127.0.0.1:{port}"
        self.url = f"oci://{self.host}/charts"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.1)

    def push(self, archive: Path) -> None:
        import helm_python  # the test process is not doit's: loading Go here is fine

        helm_python.push(archive, self.url, plain_http=True)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
