"""The ``backlogd`` console script: the service CLI plus the commands that need the web layer."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from service import cli


def main(argv: Sequence[str] | None = None) -> int:
    from web.serve import cmd_serve  # the HTTP service; imported here so CLI-only runs stay light

    return cli.main(argv, extra={"serve": ("run the HTTP service with the web UI", cmd_serve)})


if __name__ == "__main__":
    sys.exit(main())
