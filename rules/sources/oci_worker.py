"""The child process of `rules.sources.oci`: one registry call with the Helm SDK.

    python -m rules.sources.oci_worker tags <oci://ref> <plain_http 0|1>
    python -m rules.sources.oci_worker pull <oci://ref> <version> <folder> <plain_http 0|1>
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    import helm_python

    helm_python.disable_logging()
    try:
        if argv[0] == "tags":
            reference, plain = argv[1], argv[2] == "1"
            print(json.dumps(helm_python.RegistryClient(plain_http=plain).tags(reference)))
        elif argv[0] == "pull":
            reference, version, folder, plain = argv[1], argv[2], argv[3], argv[4] == "1"
            helm_python.pull(reference, version=version, destination=folder, plain_http=plain)
        else:
            print(f"unknown command {argv[0]!r}", file=sys.stderr)
            return 2
    except helm_python.HelmError as err:
        print(err.detail, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
