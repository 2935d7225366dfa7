"""Chart version constraints as Helm reads them (`1.2.3`, `^1.2`, `~1.2.0`, `>=1, <2`).

Helm's Masterminds constraints are close to npm's ranges; commas (AND) become spaces.
An empty constraint picks the newest release that is not a pre-release, as `helm pull`.
"""

from __future__ import annotations

import semantic_version


def newest_matching(versions: list[str], constraint: str) -> str | None:
    """The newest of `versions` that satisfies `constraint`, or None."""
    if constraint in versions:
        return constraint
    try:
        spec = semantic_version.NpmSpec(constraint.replace(",", " ").strip() or "*")
    except ValueError:
        return None
    parsed = {}
    for text in versions:
        try:
            parsed[semantic_version.Version.coerce(text.removeprefix("v"))] = text
        except ValueError:
            continue
    chosen = spec.select(parsed)
    return None if chosen is None else parsed[chosen]
