"""Reading a secret (the LLM key, the API token, a PAT) by the name the settings give it.

The settings never hold a secret, only the name of the environment variable or systemd credential to
read it from. Whatever reads one registers it with the log redactor, so no log line can carry it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from service.logs import redact


def read_secret(name: str | None, env: Mapping[str, str]) -> str | None:
    """A secret by name: a systemd credential file first, then the environment variable."""
    if not name:
        return None
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        secret = (Path(cred_dir) / name).read_text(encoding="utf-8").strip() or None
    else:
        secret = env.get(name) or None
    redact(secret)
    return secret
