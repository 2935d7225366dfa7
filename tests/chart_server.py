"""A real HTTP server on 127.0.0.1 serving a folder: a Helm chart repository or manifests.

It records every path requested, can insist on HTTP basic auth, and can be stopped to
prove that a build no longer needs it.
"""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

AnyServer = TypeVar("AnyServer", bound=http.server.HTTPServer)


@contextmanager
def serving(server: AnyServer) -> Iterator[AnyServer]:
    """`server` answering from a thread until the block ends, then closed."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        expected = self.server.credentials
        if expected is not None:
            sent = self.headers.get("Authorization", "")
            if sent != "Basic " + base64.b64encode(expected.encode()).decode():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="charts"')
                self.end_headers()
                return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows failures, not access logs."""


class _Server(http.server.ThreadingHTTPServer):
    requests: list[str]
    credentials: str | None


class ChartServer:
    """Serves `folder` at `self.url` until `stop()`, or until its `with` block ends."""

    def __init__(self, folder: Path, credentials: str | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        handler = functools.partial(_Handler, directory=str(folder))
        self._server = _Server(("127.0.0.1", 0), handler)
        self._server.requests = []
        self._server.credentials = credentials
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[str]:
        return self._server.requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> ChartServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def publish(server: ChartServer, chart: Path, version: str | None = None) -> Path:
    """Package `chart` (optionally as another version) into the server's folder and
    re-index it, as `helm package` + `helm repo index` would; returns the archive."""
    import helm_python  # the test process is not doit's: loading Go here is fine

    archive = Path(helm_python.package(chart, destination=server.folder, version=version))
    helm_python.repo_index_generate(server.folder)
    return archive
