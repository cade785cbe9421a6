"""A local stub of an OpenAI-compatible chat provider for the tier-3 tests: it records every
request (to prove what leaves the platform is masked) and answers as its ``mode`` says."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "sk-stub-key"
GOOD = '{"candidate": "c2", "reason": "the field labelled Member ID"}'
# What the stub answers in each mode: (HTTP status, message content, seconds before answering).
MODES = {
    "good": (200, GOOD, 0.0),
    "prose": (200, "The Member ID field is c2.", 0.0),
    "fenced": (200, '```json\n{"candidate": "c2"}\n```', 0.0),
    "unknown": (200, '{"candidate": "c99"}', 0.0),
    "slow": (200, GOOD, 0.5),
    "error": (500, "", 0.0),
}
TOTAL_TOKENS = 312


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    raw: str  # the body as it arrived
    body: dict


class ChatProvider:
    """POST /v1/chat/completions on 127.0.0.1: records each request, answers as ``mode`` says
    (``content``, when set, replaces the mode's message content)."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.mode = "good"
        self.content: str | None = None
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                provider.requests.append(
                    Recorded(self.path, dict(self.headers), raw, json.loads(raw))
                )
                status, content, delay_s = MODES[provider.mode]
                time.sleep(delay_s)
                self._send(status, provider.completion(provider.content or content))

            def _send(self, status: int, answer: dict) -> None:
                payload = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the slow mode)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        # A short poll: shutdown() waits for one, and every test closes its provider.
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def completion(self, content: str) -> dict:
        if self.mode == "error":
            return {"error": {"message": "boom"}}
        return {
            "object": "chat.completion",
            "model": "stub-model-2024",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 12, "total_tokens": TOTAL_TOKENS},
        }

    def question(self, number: int = 0) -> dict:
        """The user message of a recorded request: what the model was asked."""
        return json.loads(self.requests[number].body["messages"][1]["content"])

    def close(self):
        self.server.shutdown()
        self.server.server_close()
