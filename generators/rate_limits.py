"""Client-side rate limits for a server teacher: requests and tokens per minute.

Providers limit requests and tokens per minute and answer 429 past them; a scheduled
production run should stay under the limits rather than learn them from refusals. Each limit is
a token bucket holding one second of its rate (at least one request): a request takes its cost
from the bucket and waits, before it is sent, for as long as the bucket is in debt. A request's
token cost is estimated before sending (prompt characters / 4 plus ``max_tokens``, how providers
count against the limit) and corrected by the usage the server reports. One limiter per server,
model and limits, shared by every shard of a process (threads and event loops alike: the
bucket is plain arithmetic on a monotonic clock under a lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

CHARACTERS_PER_TOKEN = 4  # a plain estimate; the server's reported usage corrects it
MESSAGE_TOKENS = 4  # a chat template's tokens around each message, roughly


def estimated_prompt_tokens(messages: list[dict]) -> int:
    """A chat prompt's tokens, estimated from its characters (no tokenizer needed)."""
    return sum(len(m["content"]) // CHARACTERS_PER_TOKEN + MESSAGE_TOKENS for m in messages)


def estimated_tokens(request: dict) -> int:
    """What a chat request will count against a tokens-per-minute limit, before it is sent."""
    prompt = estimated_prompt_tokens(request.get("messages", []))
    return prompt + int(request.get("max_tokens") or 0)


@dataclass
class TokenBucket:
    """``per_minute`` units a minute, up to one second's worth (at least one unit) at once; a
    request larger than that waits until the bucket has refilled what it is short of."""

    per_minute: float
    clock: Callable[[], float] = time.monotonic
    level: float = field(init=False)
    stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self.level = self.capacity
        self.stamp = self.clock()

    @property
    def rate(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return max(self.rate, 1.0)

    def take(self, cost: float) -> float:
        """Take ``cost`` now; the seconds to wait before using it (0 when the bucket holds it)."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= cost
        return max(0.0, -self.level / self.rate)

    def give_back(self, amount: float) -> None:
        """Return what a request took but did not use (its estimate above the reported usage);
        a request that used more takes the rest (a negative amount)."""
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """The requests and tokens buckets of one server (either may be absent)."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None):
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._lock = threading.Lock()

    def reserve(self, tokens: int) -> float:
        """Book one request of ``tokens`` estimated tokens: the seconds to wait before it."""
        with self._lock:
            waits = [0.0]
            if self.requests is not None:
                waits.append(self.requests.take(1))
            if self.tokens is not None:
                waits.append(self.tokens.take(tokens))
            return max(waits)

    def settle(self, estimated: int, used: int) -> None:
        """Correct a request's token booking by the usage the server reported."""
        if self.tokens is None:
            return
        with self._lock:
            self.tokens.give_back(estimated - used)


_LIMITERS: dict[tuple, RateLimiter] = {}
_REGISTRY = threading.Lock()


def limiter_for(server, model: str) -> RateLimiter | None:
    """The process's limiter for this server and model, or None when the config sets no limit."""
    rpm, tpm = server.requests_per_minute, server.tokens_per_minute
    if rpm is None and tpm is None:
        return None
    key = (server.url, model, rpm, tpm)
    with _REGISTRY:
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(rpm, tpm)
        return _LIMITERS[key]


def retry_after(headers) -> float | None:
    """Seconds a 429 or 503 asks the client to wait (``retry-after-ms`` or ``Retry-After`` in
    seconds or as an HTTP date), or None when it does not say."""
    from email.utils import parsedate_to_datetime

    if headers is None:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
