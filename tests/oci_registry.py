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
    """Started in `folder`; `self.url` is `oci://127.0.0.1:<port>/charts`. With `users`
    (name -> password) every request needs one of their logins (HTTP basic auth)."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None) -> None:
        if not os.path.exists(REGISTRY):
            if os.environ.get("STACKYARD_REQUIRE_OCI"):
                pytest.fail(f"{REGISTRY} is missing (apt-get install docker-registry)")
            pytest.skip("docker-registry is not installed (CI installs it)")
        port = _free_port()
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {folder / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
            + (_htpasswd_auth(folder, users) if users else ""))
        self._pusher = next(iter(users.items())) if users else None
        self._credentials = folder / "push-login.json"
        self._process = subprocess.Popen([REGISTRY, "serve", str(config)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.host = f"127.0.0.1:{port}"
        self.url = f"oci://{self.host}/charts"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1).close()
                return
            except urllib.error.HTTPError as err:
                if err.code == 401 and users:  # up, and asking for a login
                    return
                raise
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start") from None
                time.sleep(0.1)

    def push(self, archive: Path) -> None:
        import helm_python  # the test process is not doit's: loading Go here is fine

        client = helm_python.RegistryClient(plain_http=True, credentials_file=self._credentials)
        if self._pusher:
            client.login(self.host, *self._pusher, plain_http=True)
        client.push(archive, self.url, plain_http=True)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def _htpasswd_auth(folder: Path, users: dict[str, str]) -> str:
    """The registry's `auth:` section, with a bcrypt htpasswd file (all it accepts)."""
    import bcrypt

    htpasswd = folder / "htpasswd"
    htpasswd.write_text("".join(
        f"{name}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n"
        for name, password in users.items()))
    return f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
