"""The HTTP service: REST API, live progress (SSE with an ETag polling fallback) and the web UI."""
