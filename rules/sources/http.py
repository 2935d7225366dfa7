"""GET a URL for the store: the status code is checked (Fabrikate ignored it), credentials
from the URL or `access.yaml` are sent as HTTP basic auth and never shown in a message."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit, urlunsplit

from .access import basic_auth
from .redact import redact
from .store import SourceError

TIMEOUT_SECONDS = 60


def _without_userinfo(url: str) -> tuple[str, str | None]:
    """The URL to request and its `user:password` (None when it has none)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=host)), unquote(userinfo)


def get(url: str, *, token: str | None = None) -> bytes:
    """The body of a successful GET; SourceError naming the (redacted) URL otherwise.

    A token is sent as the basic-auth user name, as git sends `https://<token>@host/...`.
    """
    target, userinfo = _without_userinfo(url)
    request = urllib.request.Request(target, headers={"User-Agent": "stackyard"})
    if token:
        request.add_header("Authorization", basic_auth(token))
    elif userinfo:
        encoded = base64.b64encode(userinfo.encode()).decode()
        request.add_header("Authorization", f"Basic {encoded}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        raise SourceError(f"HTTP {err.code} {err.reason} from {redact(url)}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise SourceError(f"cannot reach {redact(url)}: {reason}") from None
