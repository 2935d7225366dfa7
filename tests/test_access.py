"""`access.yaml` tokens for private sources: a real git smart-HTTP server and a chart
repository on 127.0.0.1 that both refuse requests without the token."""

from __future__ import annotations

import http.server
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rules.sources import chartrepo
from rules.sources import http as sources_http
from rules.sources.access import AccessTokens, basic_auth, repository_access_files
from rules.sources.cache import cache_root, tag_cache_root
from tests.chart_server import ChartServer, publish, serving
from tests.doit_runner import (
    SHARED_CHARTS,
    DoitRun,
    doit,
    git_stack_fleet,
    install_dodo,
    one_cluster_fleet,
    snapshot,
    write,
)
from tests.git_server import GitServer
from tests.helpers import files_containing, make_repo

TOKEN = "tok-9f8e7d6c5b4a"


def served_defs(tmp_path: Path, config_map: str, served_as: str,
                token: str | None = None) -> GitServer:
    """A git smart-HTTP server of `tmp_path/served` with one bare repository at
    `served_as`: a static component whose one ConfigMap is named `config_map`."""
    work = Path(make_repo(tmp_path / "work" / "defs", {
        "component.yaml": "name: defs\ntype: static\npath: m\n",
        "m/cm.yaml": f"kind: ConfigMap\nmetadata:\n  name: {config_map}\n"}
        ).removeprefix("file://"))
    subprocess.run(["git", "clone", "-q", "--bare", str(work),
                    str(tmp_path / "served" / served_as)], check=True)
    return GitServer(tmp_path / "served", token=token)


def build_with_token(tmp_path: Path, url: str, *stop_servers: Callable[[], None]
                     ) -> tuple[Path, DoitRun]:
    """Build a fleet whose one component is the git source `url`, with PRIVATE_TOKEN
    given to it in access.yaml; then stop the servers."""
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: defs, method: git, source: '{url}'}}")
    write(root / "stacks/s/access.yaml", f"'{url}': PRIVATE_TOKEN\n")
    try:
        return root, doit_with(root, TOKEN)
    finally:
        for stop in stop_servers:
            stop()


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A private git repository (a static component) and a private chart repository."""
    git_server = served_defs(tmp_path, "private", "defs.git", token=TOKEN)
    chart_server = ChartServer(tmp_path / "charts", credentials=f"{TOKEN}:")
    publish(chart_server, SHARED_CHARTS / "kured")
    yield f"{git_server.url}/defs.git", chart_server.url
    git_server.stop()
    chart_server.stop()


def doit_with(root: Path, token: str | None, *args: str) -> DoitRun:
    """`doit` with PRIVATE_TOKEN set to `token`, or unset."""
    environment = {k: v for k, v in os.environ.items() if k != "PRIVATE_TOKEN"}
    if token is not None:
        environment["PRIVATE_TOKEN"] = token
    return doit(root, *args, env=environment)


def fleet(root: Path, git_url: str, chart_url: str) -> None:
    one_cluster_fleet(
        root, f"{{name: defs, method: git, source: '{git_url}'}}",
        f"{{name: kured, type: helm, method: helm, source: '{chart_url}', path: kured}}")
    write(root / "stacks/s/access.yaml",
          f"'{git_url}': PRIVATE_TOKEN\n'{chart_url}': PRIVATE_TOKEN\n")


def test_tokens_from_access_yaml_reach_the_servers_and_nothing_else(
        tmp_path: Path, cache: Path, private: tuple[str, str]) -> None:
    git_url, chart_url = private
    root = tmp_path / "fleet"
    fleet(root, git_url, chart_url)

    refused = doit_with(root, None)
    assert refused.returncode != 0
    assert ("stacks/s/access.yaml: " + git_url + ": environment variable PRIVATE_TOKEN is "
            "not set") in refused.stderr
    assert f"cannot fetch {git_url}" in refused.stderr, refused.stderr

    run = doit_with(root, TOKEN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "name: private" in (root / "generated/c1/defs/defs.yaml").read_text()
    assert "kind: DaemonSet" in (root / "generated/c1/kured.yaml").read_text()
    assert TOKEN not in refused.stdout + refused.stderr + run.stdout + run.stderr
    assert files_containing(root, TOKEN) == [] and files_containing(cache, TOKEN) == []

    # once fetched, a rebuild from a fresh workspace needs no token: it fetches nothing
    before = snapshot(root / "generated")
    for folder in ("generated", ".stackyard"):
        subprocess.run(["rm", "-rf", str(root / folder)], check=True)
    again = doit_with(root, None)
    assert again.returncode == 0, again.stdout + again.stderr
    assert snapshot(root / "generated") == before


def test_doit_lock_uses_the_tokens_too(tmp_path: Path, private: tuple[str, str]) -> None:
    git_url, chart_url = private
    root = tmp_path / "fleet"
    fleet(root, git_url, chart_url)
    assert doit_with(root, TOKEN).returncode == 0
    relock = doit_with(root, TOKEN, "lock")
    assert relock.returncode == 0, relock.stdout + relock.stderr
    assert "0 of 2 pin(s) in stacks.lock moved" in relock.stderr
    tokenless = doit_with(root, None, "lock")
    assert tokenless.returncode != 0
    origin = git_url.rsplit("/", 1)[0]
    assert (f"stacks.lock: cannot fetch {git_url}: fatal: could not read Username for "
            f"'{origin}': terminal prompts disabled") in tokenless.stderr.splitlines(), (
        tokenless.stderr)


def test_doit_lock_uses_access_files_of_git_sourced_stacks(
        tmp_path: Path, private: tuple[str, str]) -> None:
    """The stack itself comes from git, with its own access.yaml for a private chart
    repository: a walk of the fleet's repository does not see that file."""
    _, chart_url = private
    stack = make_repo(tmp_path / "remote" / "stack", {
        "component.yaml": "name: s\nsubcomponents:\n  - {name: kured, type: helm, "
                          f"method: helm, source: '{chart_url}', path: kured}}\n",
        "access.yaml": f"'{chart_url}': PRIVATE_TOKEN\n"})
    root = git_stack_fleet(tmp_path / "fleet", stack)
    write(root / "access.yaml", f"'{chart_url}/other': PRIVATE_TOKEN\n")  # the grant (D42)
    assert doit_with(root, TOKEN).returncode == 0
    relock = doit_with(root, TOKEN, "lock")
    assert relock.returncode == 0, relock.stdout + relock.stderr
    assert "0 of 2 pin(s) in stacks.lock moved" in relock.stderr


@pytest.mark.parametrize(("text", "message"), [
    ("- a\n", "stacks/s/access.yaml: expected a mapping of source URL to environment variable"),
    ("'https://h/x.git': [A]\n",
     "stacks/s/access.yaml: https://h/x.git: expected the name of an environment variable"),
])
def test_a_malformed_access_file_is_a_clear_error(tmp_path: Path, text: str,
                                                  message: str) -> None:
    root = tmp_path / "fleet"
    install_dodo(root)
    write(root / "stacks/s/component.yaml", "name: s\ntype: static\npath: m\n")
    write(root / "stacks/s/m/a.yaml", "kind: A\n")
    write(root / "environments/c1.yaml", "stack: ../stacks/s\n")
    assert doit_with(root, None).returncode == 0
    before = snapshot(root / "generated")
    write(root / "stacks/s/access.yaml", text)
    run = doit_with(root, None)
    assert run.returncode != 0 and message in run.stderr, run.stderr
    assert snapshot(root / "generated") == before


def test_a_user_and_password_token_is_sent_as_both(tmp_path: Path, cache: Path) -> None:
    """`<user>:<password>` in the variable means what it meant in Fabrikate's URL form."""
    with ChartServer(tmp_path / "charts", credentials="ci-bot:pw-77a1") as server:
        publish(server, SHARED_CHARTS / "kured")
        root = tmp_path / "fleet"
        one_cluster_fleet(
            root, f"{{name: kured, type: helm, method: helm, source: '{server.url}', path: kured}}")
        write(root / "stacks/s/access.yaml", f"'{server.url}': PRIVATE_TOKEN\n")
        run = doit_with(root, "ci-bot:pw-77a1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "kind: DaemonSet" in (root / "generated/c1/kured.yaml").read_text()


def test_relocking_walks_a_tree_of_any_depth_for_access_files(tmp_path: Path) -> None:
    """`doit lock` reads every access.yaml; a 1,100-level tree once exhausted recursion."""
    root = tmp_path / "fleet"
    one_cluster_fleet(root, "{name: a, type: static, path: m}")
    write(root / "stacks/s/m/a.yaml", "kind: A\n")
    levels = [root / "notes"]
    for _ in range(1100):  # level by level: mkdir(parents=True) and rmtree recurse
        levels.append(levels[-1] / "d")
    for level in levels:
        level.mkdir()
    write(root / "stacks/s/access.yaml", "'https://h/x.git': UNSET_FOR_THIS_TEST\n")
    write(root / ".stackyard/access.yaml", "- not read: hidden folders are skipped\n")

    try:
        run = subprocess.run([sys.executable, "-m", "rules.sources", "lock", str(root)],
                             capture_output=True, text=True, check=False)
    finally:  # pytest's clean-up of old temp folders could not remove it
        for level in reversed(levels):
            level.rmdir()

    assert run.returncode == 0, run.stdout + run.stderr
    assert "environment variable UNSET_FOR_THIS_TEST is not set" in run.stderr


class _Recording(http.server.BaseHTTPRequestHandler):
    """Records each request's path and Authorization; `/to?<url>` redirects to <url>."""

    server: _RecordingServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        path, _, location = self.path.partition("?")
        self.send_response(302 if path == "/to" else 200)
        if path == "/to":
            self.send_header("Location", location)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"body")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _RecordingServer(http.server.ThreadingHTTPServer):
    seen: list[tuple[str, str | None]]


@pytest.fixture
def two_hosts() -> Iterator[tuple[_RecordingServer, _RecordingServer]]:
    servers = [_RecordingServer(("127.0.0.1", 0), _Recording) for _ in range(2)]
    for server in servers:
        server.seen = []
    with serving(servers[0]), serving(servers[1]):
        yield servers[0], servers[1]


@pytest.mark.parametrize("credentials", ["token", "userinfo"])
def test_a_redirect_to_another_host_gets_no_token(
        two_hosts: tuple[_RecordingServer, _RecordingServer], credentials: str) -> None:
    """Like Go's client and Helm without --pass-credentials: the token is for the source's
    own scheme, host and port; a redirect within it keeps it, one elsewhere drops it."""
    source, other = two_hosts
    here, there = (f"http://127.0.0.1:{s.server_address[1]}" for s in two_hosts)
    if credentials == "token":
        def get(url: str) -> bytes:
            return sources_http.get(url, token=TOKEN)
    else:
        def get(url: str) -> bytes:
            return sources_http.get(url.replace("http://", f"http://{TOKEN}:@", 1))
    expected = basic_auth(TOKEN)

    assert get(f"{here}/to?{there}/chart.tgz") == b"body"
    assert get(f"{here}/to?{here}/to?{there}/index.yaml") == b"body"
    assert get(f"{here}/to?/same.tgz") == b"body"

    assert other.seen == [("/chart.tgz", None), ("/index.yaml", None)]
    assert [auth for _, auth in source.seen] == [expected] * 5
    assert source.seen[-1][0] == "/same.tgz"


class _RedirectingGit(http.server.BaseHTTPRequestHandler):
    """Redirects every request to `server.target` (another host); records each one."""

    server: _RedirectingServer

    def do_GET(self) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        self.send_response(302)
        self.send_header("Location", self.server.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _RedirectingServer(http.server.ThreadingHTTPServer):
    target: str
    seen: list[tuple[str, str, str | None]]


def test_a_git_redirect_to_another_host_gets_no_token(tmp_path: Path, cache: Path) -> None:
    """git sent the `extraHeader` token in its later requests to the host the first one
    was redirected to (`localhost` here, not `127.0.0.1`); now it follows no redirect
    for a source with a token, and says what to do."""
    elsewhere = served_defs(tmp_path, "defs", "defs.git")
    redirecting = _RedirectingServer(("127.0.0.1", 0), _RedirectingGit)
    redirecting.target = elsewhere.url.replace("127.0.0.1", "localhost")
    redirecting.seen = []
    threading.Thread(target=redirecting.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{redirecting.server_address[1]}/defs.git"
    _, run = build_with_token(tmp_path, url, redirecting.shutdown, redirecting.server_close,
                              elsewhere.stop)
    assert [auth for *_, auth in elsewhere.seen if auth] == []
    assert redirecting.seen == [("GET", "/defs.git/info/refs?service=git-upload-pack",
                                 basic_auth(TOKEN))]
    assert run.returncode != 0
    assert f"git source of 'defs' ({url} at HEAD): cannot fetch {url}: " in run.stderr
    assert (f"fatal: unable to access '{url}/': The requested URL "
            "returned error: 302 (a redirect: git follows none for a source with a token "
            "from access.yaml, so that the token never reaches another host; write the URL "
            "it redirects to, in the definition and in access.yaml)") in run.stderr, run.stderr


def test_the_users_own_git_config_count_settings_are_kept(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token's git setting is added after the user's `GIT_CONFIG_COUNT` ones: here an
    `insteadOf` rewrite of the short URL the definition uses to where the repository is."""
    server = served_defs(tmp_path, "rewritten", "team/defs.git", token=TOKEN)
    short = f"{server.url}/team"
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", f"url.{server.url}/team/defs.git.insteadOf")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", short)
    root, run = build_with_token(tmp_path, short, server.stop)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "name: rewritten" in (root / "generated/c1/defs/defs.yaml").read_text()


class _Repository(http.server.BaseHTTPRequestHandler):
    """A chart repository whose index lists its archive at `http://` on its own host and
    port; records (scheme, path, Authorization) of each request."""

    server: _EitherProtocol

    def do_GET(self) -> None:
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        self.server.seen.append((scheme, self.path, self.headers.get("Authorization")))
        port = self.server.server_address[1]
        body = (f"apiVersion: v1\nentries:\n  kured:\n  - version: 1.0.0\n    urls: "
                f"['http://127.0.0.1:{port}/kured-1.0.0.tgz']\n".encode()
                if self.path == "/index.yaml" else b"archive")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _EitherProtocol(http.server.ThreadingHTTPServer):
    """Speaks TLS to a client that starts with a TLS handshake, plain HTTP otherwise, on
    one port: `https://host:port` and `http://host:port` differ only in their scheme."""

    seen: list[tuple[str, str, str | None]]
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, object]:
        connection, address = super().get_request()
        if connection.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
            connection = self.context.wrap_socket(connection, server_side=True)
        return connection, address


def test_an_archive_over_plain_http_gets_no_token_of_an_https_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same host and port, other scheme: the token would cross the network in clear."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "cert.pem"))  # urllib trusts it
    server = _EitherProtocol(("127.0.0.1", 0), _Repository)
    server.seen = []
    server.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    repository = f"https://127.0.0.1:{server.server_address[1]}"
    with serving(server):
        assert chartrepo.download(repository, "kured", "1.0.0", TOKEN) == b"archive"
    assert server.seen == [("https", "/index.yaml", basic_auth(TOKEN)),
                           ("http", "/kured-1.0.0.tgz", None)]


@pytest.mark.parametrize("granted", [False, True])
def test_a_fetched_stack_names_only_variables_the_repository_grants_its_host(
        tmp_path: Path, cache: Path, two_hosts: tuple[_RecordingServer, _RecordingServer],
        granted: bool) -> None:
    """Another team's stack must not choose which secret of the build is sent where
    (D42): its access.yaml counts only for a variable that the repository's root
    access.yaml gives to the same scheme, host and port (one elsewhere does not grant)."""
    server, _ = two_hosts
    here = f"http://127.0.0.1:{server.server_address[1]}"
    stack = make_repo(tmp_path / "remote" / "stack", {
        "component.yaml": "name: s\nsubcomponents:\n  - {name: m, type: static, "
                          f"method: http, source: '{here}/m.yaml'}}\n",
        "access.yaml": f"'{here}/m.yaml': PRIVATE_TOKEN\n"})
    root = git_stack_fleet(tmp_path / "fleet", stack)
    write(root / "stacks/access.yaml", f"'{here}/charts': PRIVATE_TOKEN\n")  # not a grant
    write(root / "z/access.yaml", "https://unrelated.example/x: UNSET_FOR_THIS_TEST\n")
    if granted:
        write(root / "access.yaml", f"'{here}/charts': PRIVATE_TOKEN\n")

    run = doit_with(root, TOKEN)

    assert run.returncode == 0, run.stdout + run.stderr
    assert server.seen == [("/m.yaml", basic_auth(TOKEN) if granted else None)]
    refused = (f"access.yaml: {here}/m.yaml: PRIVATE_TOKEN is not sent: a fetched stack's "
               "access.yaml may only name a variable that the fleet's root access.yaml "
               f"(access.yaml) gives to the same host; add `{here}/m.yaml: PRIVATE_TOKEN` "
               "to it to send it")
    assert (refused in run.stderr) is not granted, run.stderr
    assert "UNSET_FOR_THIS_TEST" not in run.stderr  # a file no build reads says nothing

    # a grant added afterwards counts from the next build (the plan watches for it): the
    # file, its render and the output gone, it is fetched again with the token
    write(root / "access.yaml", f"'{here}/m.yaml': PRIVATE_TOKEN\n")
    for gone in (cache / "files", root / "generated", root / ".stackyard/renders.sqlite3"):
        shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    assert doit_with(root, TOKEN).returncode == 0
    assert server.seen[-1] == ("/m.yaml", basic_auth(TOKEN))


def _tokens_with(tmp_path: Path, own: str, fetched: str) -> AccessTokens:
    """The repository's own access.yaml holds `own`; a fetched stack's (in the store at
    `$STACKYARD_CACHE`) holds `fetched`."""
    write(tmp_path / "repo/access.yaml", own)
    stored = cache_root() / "trees/0123/abcd/access.yaml"
    write(stored, fetched)
    tag_cache_root()
    tokens = AccessTokens(tmp_path / "repo")
    tokens.register(stored)
    return tokens


@pytest.mark.parametrize("own", [
    "oci://ghcr.io/example/charts: LOGIN\n",  # another scheme's host and port
    "ssh://git@github.com/x.git: LOGIN\n",
    "'https://h:80a/x.git': LOGIN\n",  # no port to compare: nothing is granted
    "https://127.0.0.1:8443/x: LOGIN\n",
])
def test_a_grant_is_for_one_scheme_host_and_port(tmp_path: Path, cache: Path,
                                                 own: str) -> None:
    tokens = _tokens_with(tmp_path, own, "oci://127.0.0.1:18083/charts: LOGIN\n"
                                         "'https://h:80a/y.git': LOGIN\n")
    assert tokens.variable("oci://127.0.0.1:18083/charts") == ""
    assert tokens.variable("https://h:80a/y.git") == ""


def test_a_store_inside_the_repository_is_not_the_repositorys_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With `STACKYARD_CACHE` relative (or through a link) and inside the repository, the
    search for its own access.yaml files must not find the store's copies of fetched
    stacks: they would grant themselves."""
    repo = tmp_path / "repo"
    (tmp_path / "link").symlink_to(repo)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STACKYARD_CACHE", "link/cache")
    tokens = _tokens_with(tmp_path, "https://github.com/a/b.git: LOGIN\n",
                          "'http://127.0.0.1:9/loot.git': LOGIN\n")
    assert cache_root() == repo / "cache"
    assert tokens.variable("http://127.0.0.1:9/loot.git") == ""
    assert repository_access_files(repo) == [repo / "access.yaml"]


@pytest.mark.parametrize("seed", ["1", "2", "4"])
def test_a_granted_token_is_sent_after_the_store_is_emptied(
        tmp_path: Path, cache: Path, seed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh CI runner: `.stackyard/` restored, the store empty. Checking the cached
    plan looked at files of the missing checkout and remembered them as missing, so the
    fetched stack's access.yaml went unread once planning had fetched it again, and the
    download got a 401, for some hash seeds only (audit 12)."""
    with ChartServer(tmp_path / "www", credentials=f"{TOKEN}:") as server:
        write(server.folder / "m.yaml", "kind: ConfigMap\nmetadata: {name: m}\n")
        stack = make_repo(tmp_path / "remote" / "stack", {
            "component.yaml": "name: st\nsubcomponents:\n  - {name: m, type: static, "
                              f"method: http, source: '{server.url}/m.yaml'}}\n",
            "access.yaml": f"'{server.url}/m.yaml': PRIVATE_TOKEN\n"})
        root = git_stack_fleet(tmp_path / "fleet", stack)
        write(root / "access.yaml", f"'{server.url}/other': PRIVATE_TOKEN\n")  # the grant
        monkeypatch.setenv("PYTHONHASHSEED", seed)
        assert doit_with(root, TOKEN).returncode == 0
        shutil.rmtree(cache)
        shutil.copy(root / "environments/c1.yaml", root / "environments/c2.yaml")
        run = doit_with(root, TOKEN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (root / "generated/c2/m.yaml").is_file()


def test_the_root_access_file_gives_tokens_to_every_source(tmp_path: Path, cache: Path
                                                          ) -> None:
    """The fleet's root access.yaml is read by every plan, before any other: here it
    gives the token that fetches the environment's stack itself (audit 12: only
    `doit lock` used it, and builds failed to clone)."""
    with served_defs(tmp_path, "from-root", "defs.git", token=TOKEN) as server:
        url = f"{server.url}/defs.git"
        root = git_stack_fleet(tmp_path / "fleet", url)
        write(root / "access.yaml", f"'{url}': PRIVATE_TOKEN\n")
        run = doit_with(root, TOKEN)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "name: from-root" in (root / "generated/c1/defs.yaml").read_text()


def test_the_first_access_file_naming_a_source_gives_its_token(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in Fabrikate, the first definition wins: the root file's, read before a stack's."""
    server = ChartServer(tmp_path / "served", credentials=f"{TOKEN}:")
    write(server.folder / "m.yaml", "kind: ConfigMap\n")
    url = f"{server.url}/m.yaml"
    root = tmp_path / "fleet"
    one_cluster_fleet(root, f"{{name: m, type: static, method: http, source: '{url}'}}")
    write(root / "access.yaml", f"'{url}': PRIVATE_TOKEN\n")
    write(root / "stacks/s/access.yaml", f"'{url}': OTHER_TOKEN\n")
    monkeypatch.setenv("OTHER_TOKEN", "not-the-token")
    try:
        run = doit_with(root, TOKEN)
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout + run.stderr
    assert server.requests == ["/m.yaml"]
    assert (root / "generated/c1/m.yaml").read_text() == "---\nkind: ConfigMap\n\n"


def test_a_no_op_reads_no_access_file(tmp_path: Path, cache: Path) -> None:
    """A no-op build still tidies `stacks.lock` (so it makes its sources), but reads no
    access.yaml: an unset variable in the root file is said when planning, not on every
    no-op."""
    stack = make_repo(tmp_path / "remote" / "stack",
                      {"component.yaml": "name: s\ntype: static\npath: m\n",
                       "m/cm.yaml": "kind: ConfigMap\n"})
    root = git_stack_fleet(tmp_path / "fleet", stack)
    write(root / "access.yaml", "https://example.invalid/x.git: UNSET_FOR_THIS_TEST\n")
    first = doit_with(root, None)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "UNSET_FOR_THIS_TEST is not set" in first.stderr

    again = doit_with(root, None)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
