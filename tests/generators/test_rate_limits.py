"""Requests- and tokens-per-minute limits for server teachers (issue 27 item 3), against a
real HTTP server that stamps each request's arrival: the rate it sees holds the configured one
within 10%, shards of one process share the limit, reported usage corrects the token
estimate, and a 429 waits what ``Retry-After`` asks."""

from __future__ import annotations

import threading
import time

import pytest

from sublearn.core.chat import ChatPrompt
from sublearn.core.config import parse_config
from sublearn.generators.backends import load_teacher
from sublearn.generators.rate_limits import TokenBucket, retry_after
from tests.misbehaving_server import completion, misbehaving_server

USED = (20, 40)  # prompt and completion tokens each answer reports


def teacher_for(url: str, **server) -> object:
    config = {
        "name": "limited",
        "teacher": {
            "model": "counted",
            "backend": "openai",
            "sampling": {"max_new_tokens": 100},
            "server": {"base_url": url, "max_retries": 2, **server},
        },
        "dataset": {"kind": "numbers", "n_prompts": 8},
    }
    return load_teacher(parse_config(config).teacher)


class Arrivals:
    """A server's view: when each request arrived."""

    def __init__(self, refuse_first: dict | None = None):
        self.times: list[float] = []
        self.lock = threading.Lock()
        self.refuse_first = refuse_first

    def __call__(self, request: dict):
        with self.lock:
            self.times.append(time.monotonic())
            first = len(self.times) == 1
        if first and self.refuse_first is not None:
            return 429, {"error": {"message": "slow down"}}, self.refuse_first
        return 200, completion("1, 2, 3", *USED)

    def steady_rate(self, skip: int) -> float:
        """Requests a second after the first ``skip`` (the bucket's initial burst)."""
        times = sorted(self.times)[skip:]
        return (len(times) - 1) / (times[-1] - times[0])


def prompts(n: int) -> list[ChatPrompt]:
    return [ChatPrompt(None, f"Continue: {i}, {i + 1}") for i in range(n)]


def test_requests_per_minute_hold_across_the_shards_of_a_process():
    arrivals = Arrivals()
    with misbehaving_server(arrivals) as url:
        # two shards, each its own teacher in its own thread, as the flow runs them
        shards = [teacher_for(url, requests_per_minute=300, max_concurrency=8) for _ in range(2)]
        threads = [threading.Thread(target=t.generate, args=(prompts(13), 0)) for t in shards]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(arrivals.times) == 26
    # 300 a minute is 5 a second: a burst of one second's 5, then one every 0.2 s
    assert arrivals.steady_rate(skip=5) == pytest.approx(5.0, rel=0.10)


def test_tokens_per_minute_count_the_reported_usage():
    """The estimate books the prompt and max_tokens (100); the answers report 60 tokens, and
    the limiter gives the difference back, so the reported tokens arrive at the limit's rate."""
    arrivals = Arrivals()
    with misbehaving_server(arrivals) as url:
        teacher = teacher_for(url, tokens_per_minute=12000, max_concurrency=1)
        teacher.generate(prompts(24), seed=0)
    tokens_per_s = arrivals.steady_rate(skip=4) * sum(USED)
    assert tokens_per_s == pytest.approx(12000 / 60, rel=0.10)


def test_a_429_waits_what_retry_after_asks():
    arrivals = Arrivals(refuse_first={"Retry-After": "2"})
    with misbehaving_server(arrivals) as url:
        assert teacher_for(url).generate(prompts(1), seed=0) == ["1, 2, 3"]
    first, second = arrivals.times
    assert 2.0 <= second - first < 3.0


def test_retry_after_forms_and_the_bucket_arithmetic():
    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None
    now = [0.0]
    bucket = TokenBucket(600, clock=lambda: now[0])  # 10 a second, 10 at once
    assert [bucket.take(1) for _ in range(10)] == [0.0] * 10
    assert bucket.take(1) == pytest.approx(0.1)  # the 11th waits a tenth of a second
    now[0] = 5.0  # idle time refills to the capacity, never beyond
    assert bucket.take(10) == 0.0 and bucket.take(1) > 0
    bucket.give_back(100)
    assert bucket.level == bucket.capacity
