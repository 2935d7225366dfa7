"""Credentials in a source URL must never reach an error message or a log."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#]*@")
"""Userinfo as urllib (`urlsplit`), `http.py` and `oci.py` split it: everything up to the
LAST `@` of the authority, which ends at the first `/`, `?` or `#`. A password holding an
`@` (`user:p@ss@host`) is then hidden whole, not up to its first `@`."""
_REDACTED = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\*\*\*@")


def redact(url: str) -> str:
    """`https://user:token@host/x` -> `https://***@host/x`; other URLs unchanged."""
    return _USERINFO.sub(r"\1***@", url)


def was_redacted(url: str) -> bool:
    """Whether `url` is the output of `redact` for a URL that had credentials."""
    return bool(_REDACTED.match(url))


def redact_text(text: str, url: str) -> str:
    """Git's own messages quote the URL it was given: hide its credentials there too."""
    return text.replace(url, redact(url))
