"""The fake OpenAI-compatible server as a process for the soak: ``tests.fakes.openai_server``'s
``FakeLLM`` with its ``early_grace`` knob on the command line, and, on SIGTERM, a ``STATS`` line that
also says how late after each 429 every early request arrived (to tell a request that was already on
the wire when the 429 left from a client that ignored the pause).

    python -m tests.reliability.llm_process --port 0 --latency 0.05 --fault-rate-429 0.1 \
        --retry-after 0.2 --early-grace 0.02

prints ``LISTENING <port>`` when ready. The options are those of ``tests.fakes.openai_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

from aiohttp import web

from tests.fakes.openai_server import FakeLLM


def early_report(fake: FakeLLM) -> list[dict[str, float]]:
    """For each early request, the 429 it ignored for longest: seconds since that 429 was sent, and
    seconds still left before its deadline."""
    out = []
    grace = fake.early_grace
    for arrived, _ in fake.early_requests:
        windows = [
            (arrived - sent, deadline - arrived)
            for sent, deadline in fake._announced
            if sent + grace <= arrived < deadline - grace
        ]
        late, left = max(windows, default=(-1.0, -1.0))
        out.append({"after_429": round(late, 4), "before_deadline": round(left, 4)})
    return out


async def serve(args: argparse.Namespace) -> None:
    rates = {"429": args.fault_rate_429, "500": args.fault_rate_500, "reset": args.fault_rate_reset}
    fake = FakeLLM(
        latency=args.latency,
        throttle_retry_after=args.retry_after,
        fault_rates={k: v for k, v in rates.items() if v},
        early_grace=args.early_grace,
        seed=args.seed,
    )
    runner = web.AppRunner(fake.app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    print(f"LISTENING {runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    stats: dict[str, Any] = {**fake.stats(), "early": early_report(fake)}
    print(f"STATS {json.dumps(stats)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The fake LLM with its early-request grace exposed.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--fault-rate-429", type=float, default=0.0)
    parser.add_argument("--fault-rate-500", type=float, default=0.0)
    parser.add_argument("--fault-rate-reset", type=float, default=0.0)
    parser.add_argument("--early-grace", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=0)
    asyncio.run(serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
