"""GET a URL for the store: the status code is checked (Fabrikate ignored it), credentials
from the URL or `access.yaml` are sent as HTTP basic auth and never shown in a message."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .access import basic_auth, origin
from .redact import redact
from .store import SourceError, network_timeout

DEADLINE_FACTOR = 10
"""A whole download may take this many times the stall timeout (10 minutes by default):
a server dribbling a byte at a time never lets a single read time out."""


def _without_userinfo(url: str) -> tuple[str, str | None]:
    """The URL to request and its `user:password` (None when it has none)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=host)), unquote(userinfo)


class _AuthorizeOrigin(urllib.request.BaseHandler):
    """Adds `Authorization` to each request (the first and every redirect) made to the
    source's own origin only. urllib's redirect handler copies the headers of a request to
    the next one, so a header set on the first request would reach any host a server
    redirects to; Go's client and Helm (without --pass-credentials) keep it for the
    source's host."""

    def __init__(self, allowed: tuple[str, str, int | None], authorization: str) -> None:
        self.allowed = allowed
        self.authorization = authorization

    def http_request(self, request: urllib.request.Request) -> urllib.request.Request:
        if origin(request.full_url) == self.allowed:
            request.add_unredirected_header("Authorization", self.authorization)
        return request

    https_request = http_request


_SCHEMES = ("http", "https")
"""The only URLs fetched: urllib's default opener also reads `file:`, `ftp:` and `data:`
URLs, so a definition (or an index's `urls:`, or a redirect) could make a build copy any
file of the machine into `generated/`."""


def refuse_other_schemes(url: str, where: str = "") -> None:
    """SourceError naming `url` (and `where` it was found) unless it is http(s)."""
    if urlsplit(url).scheme.lower() not in _SCHEMES:
        raise SourceError(f"{redact(url)}{where}: only http:// and https:// URLs are "
                          "downloaded (a local manifest or chart is a component without "
                          "`method`)")


class _HTTPOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """urllib follows a redirect to `ftp:` too; here only to http(s)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        refuse_other_schemes(newurl, f" (a redirect from {redact(req.full_url)})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _NotLinkLocal:
    """Refuses a connection that reached a link-local address (169.254.0.0/16, fe80::/10),
    where clouds serve instance metadata and credentials: a stack from another team could
    otherwise name such a URL as a manifest and have the answer written into `generated/`.
    Checked on the socket, so a name that resolves there is caught too."""

    sock: Any
    host: str

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        address = str(self.sock.getpeername()[0]).partition("%")[0]
        if ipaddress.ip_address(address).is_link_local:
            self.sock.close()
            raise SourceError(f"{self.host} is at the link-local address {address}, where "
                              "clouds serve instance metadata and credentials: not "
                              "downloaded")


class _HTTPConnection(_NotLinkLocal, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_NotLinkLocal, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_HTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(_HTTPSConnection, req, context=self._context)  # type: ignore[attr-defined]


def get(url: str, *, token: str | None = None) -> bytes:
    """The body of a successful GET; SourceError naming the (redacted) URL otherwise.

    A token is sent as the basic-auth user name, as git sends `https://<token>@host/...`.
    The request runs in a thread of its own, given `DEADLINE_FACTOR` times the stall
    timeout in all: a server dribbling its headers or body a byte at a time never lets
    one read time out, and urllib has no deadline for the whole (the thread, a daemon,
    is left to its read)."""
    stall = network_timeout()
    outcome: list[bytes | BaseException] = []

    def fetch() -> None:
        try:
            outcome.append(_get(url, token, stall))
        except BaseException as err:  # raised again in the caller's thread
            outcome.append(err)

    worker = threading.Thread(target=fetch, name="stackyard-get", daemon=True)
    worker.start()
    worker.join(DEADLINE_FACTOR * stall)
    if not outcome:
        raise SourceError(f"{redact(url)} timed out: not downloaded in {DEADLINE_FACTOR * stall:g} "
                          f"s ({DEADLINE_FACTOR} times STACKYARD_NETWORK_TIMEOUT, {stall:g} s); "
                          "set that variable higher for a slow link")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def _get(url: str, token: str | None, stall: float) -> bytes:
    refuse_other_schemes(url)
    target, userinfo = _without_userinfo(url)
    request = urllib.request.Request(target, headers={"User-Agent": "stackyard"})
    if token:
        authorization: str | None = basic_auth(token)
    elif userinfo:
        authorization = "Basic " + base64.b64encode(userinfo.encode()).decode()
    else:
        authorization = None
    try:
        handlers: list[urllib.request.BaseHandler] = [_HTTPOnlyRedirects(), _HTTPHandler(),
                                                      _HTTPSHandler()]
        if authorization:
            handlers.append(_AuthorizeOrigin(origin(target), authorization))
        with urllib.request.build_opener(*handlers).open(request, timeout=stall) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        raise SourceError(f"HTTP {err.code} {err.reason} from {redact(url)}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, TimeoutError):
            raise SourceError(f"{redact(url)} timed out: nothing received for {stall:g} s "
                              "(STACKYARD_NETWORK_TIMEOUT); set that variable higher for a "
                              "slow server") from None
        raise SourceError(f"cannot reach {redact(url)}: {reason}") from None
