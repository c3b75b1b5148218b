"""A real llama.cpp ``llama-server`` on loopback serving SmolLM2-135M-Instruct (``make test-llm``).

``scripts/llama-server.sh`` builds the binary and unpacks the model into a cache outside the
repository and prints their paths; ``make test-llm`` passes them as ``LLAMA_SERVER`` and
``LLAMA_MODEL``. Selected without them, these tests fail (they are never skipped silently).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CONTEXT = 2048  # the server's context window: the long-vision test goes past it


@dataclass(frozen=True)
class LlamaServer:
    base_url: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One llama-server for the session: ``-c 2048``, one slot, two threads, loopback only."""
    binary, model = os.environ.get("LLAMA_SERVER"), os.environ.get("LLAMA_MODEL")
    if not binary or not model or not Path(binary).exists() or not Path(model).exists():
        pytest.fail("LLAMA_SERVER and LLAMA_MODEL must name the binary and the GGUF: run `make test-llm`")
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    args = [binary, "-m", model, "--host", "127.0.0.1", "--port", str(port), "-c", str(CONTEXT)]
    args += ["-np", "1", "-t", "2", "--seed", "7"]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama-server did not come up:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.25)
        yield LlamaServer(f"{url}/v1", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
