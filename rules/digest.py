"""Digests (xxh3_128) of values, via one canonical JSON form.

A render's up-to-date key is one digest over everything that changes its output and nothing
else: no absolute paths, no mtimes. File contents are digested in `filestate`.
"""

from __future__ import annotations

import json
from typing import Any

import xxhash


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_value(value: Any) -> str:
    return xxhash.xxh3_128_hexdigest(canonical_json(value))


def digest_texts(*parts: str) -> str:
    """Of strings that cannot hold NUL (names, versions, digests): no JSON to build."""
    return xxhash.xxh3_128_hexdigest("\0".join(parts).encode())
