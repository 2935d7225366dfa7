"""The child process of `rules.sources.oci`: one registry call with the Helm SDK.

    python -m rules.sources.oci_worker tags <oci://ref> <plain_http 0|1>
    python -m rules.sources.oci_worker pull <oci://ref> <version> <folder> <plain_http 0|1>

A login, if any, comes on stdin as JSON (`registry`, `username`, `password`).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from typing import Any


def _client(helm_python: Any, plain: bool) -> Any:
    """A registry client logged in as stdin says, else one with the user's own Docker /
    Helm registry logins. The SDK reads logins from a credentials file: this one lives in
    memory (memfd), so a token never touches the disk."""
    login = sys.stdin.read()
    if not login:
        return helm_python.RegistryClient(plain_http=plain)
    credentials = json.loads(login)
    auth = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode())
    config = {"auths": {credentials["registry"]: {"auth": auth.decode()}}}
    memory = os.memfd_create("stackyard-registry-login")
    os.write(memory, json.dumps(config).encode())
    return helm_python.RegistryClient(plain_http=plain,
                                      credentials_file=f"/proc/self/fd/{memory}")


def main(argv: list[str]) -> int:
    import helm_python

    helm_python.disable_logging()
    try:
        if argv[0] == "tags":
            reference, plain = argv[1], argv[2] == "1"
            print(json.dumps(_client(helm_python, plain).tags(reference)))
        elif argv[0] == "pull":
            reference, version, folder, plain = argv[1], argv[2], argv[3], argv[4] == "1"
            _client(helm_python, plain).pull(reference, version=version, destination=folder,
                                             plain_http=plain)
        else:
            print(f"unknown command {argv[0]!r}", file=sys.stderr)
            return 2
    except helm_python.HelmError as err:
        print(err.detail, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
