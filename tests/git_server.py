"""A real git server on 127.0.0.1: `git http-backend` (smart HTTP) behind a small HTTP
server that can insist on a token sent as basic auth, and records what it was sent."""

from __future__ import annotations

import http.server
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from rules.sources.access import basic_auth


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        if self.server.token and self.headers.get("Authorization") != basic_auth(
                self.server.token):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        environment = {
            "GIT_PROJECT_ROOT": str(self.server.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
            "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        output = subprocess.run(["git", "http-backend"], input=body, env=environment,
                                capture_output=True, check=True).stdout
        head, _, content = output.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode().split("\r\n") if line]
        status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
        self.send_response(status)
        for key, value in headers:
            if key.lower() != "status":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Server(http.server.ThreadingHTTPServer):
    root: Path
    token: str | None
    seen: list[tuple[str, str, str | None]]


class GitServer:
    """Serves the bare repositories below `root` at `self.url/<name>.git` until `stop()`,
    or until its `with` block ends."""

    def __init__(self, root: Path, token: str | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.root = root
        self._server.token = token
        self._server.seen = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def seen(self) -> list[tuple[str, str, str | None]]:
        """(method, path, Authorization) of each request, in order."""
        return self._server.seen

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> GitServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
