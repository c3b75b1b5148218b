"""The ``backlogd`` console script: the service CLI plus the commands that need the web layer."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service import cli
from service.settings import Settings


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from web.serve import cmd_serve  # the HTTP stack loads only for `serve`

    return await cmd_serve(args, settings)


def main(argv: Sequence[str] | None = None) -> int:
    return cli.main(argv, extra={"serve": ("run the HTTP service with the web UI", _serve)})


if __name__ == "__main__":
    sys.exit(main())
