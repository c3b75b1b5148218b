"""Fakes of external services (a real aiohttp OpenAI-compatible server) for tests and benchmarks."""
