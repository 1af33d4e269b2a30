"""``server.max_usd``: a generate step stops sending before its spend could pass the cap
(live requests batch by batch; in batch mode, before a shard's batch is submitted).

What was spent is on disk: each batch's reported usage is written beside its shard
(``usage-<start>-<stop>.json``), so a rerun knows what the step already cost and a killed or
stopped run resumes without paying for its finished batches again. Before a batch is sent, its
bound (estimated prompt tokens, and ``max_new_tokens`` for every request, at the config's
prices) is booked beside the bounds of the batches other shards of the process have in flight;
if spent plus booked would pass the cap, the step stops with one line naming the cap.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from sublearn.core.chat import ChatPrompt
from sublearn.core.errors import UserError
from sublearn.generators.rate_limits import estimated_prompt_tokens

USAGE_GLOB = "usage-*.json"


class SpendCapReached(UserError, RuntimeError):
    """The next batch could pass ``server.max_usd``."""


def usage_path(shard_dir: Path, batch: tuple[int, int]) -> Path:
    return Path(shard_dir) / f"usage-{batch[0]:08d}-{batch[1]:08d}.json"


BATCH_DISCOUNT = 0.5  # OpenAI's and Anthropic's batch APIs bill half the live price


def dollars(server, prompt_tokens: float, completion_tokens: float) -> float:
    """What these tokens cost at the server's prices, at the batch discount in batch mode."""
    live = (
        prompt_tokens * server.usd_per_million_input
        + completion_tokens * server.usd_per_million_output
    ) / 1e6
    return live * BATCH_DISCOUNT if server.mode == "batch" else live


_IN_FLIGHT: dict[str, float] = {}
_LOCK = threading.Lock()


class SpendCap:
    """The cap on one generate step's spend, shared by the shards of a process."""

    def __init__(self, server, max_new_tokens: int, shard_dir: Path):
        self.server = server
        self.max_new_tokens = max_new_tokens
        self.shard_dir = Path(shard_dir)
        self.key = str(self.shard_dir.resolve())

    def spent(self) -> float:
        """Dollars the step's finished batches cost, by the usage the server reported."""
        total = 0.0
        for path in self.shard_dir.glob(USAGE_GLOB):
            usage = json.loads(path.read_text())
            total += dollars(self.server, usage["prompt_tokens"], usage["completion_tokens"])
        return total

    def bound(self, chats: list[ChatPrompt]) -> float:
        """The most a batch of these prompts can cost: every request to ``max_new_tokens``."""
        prompt = sum(estimated_prompt_tokens(c.messages()) for c in chats)
        return dollars(self.server, prompt, len(chats) * self.max_new_tokens)

    def book(self, chats: list[ChatPrompt]) -> float:
        """Book a batch's bound before sending it, or stop when it could pass the cap."""
        if not chats:
            return 0.0
        bound = self.bound(chats)
        with _LOCK:
            spent, flying = self.spent(), _IN_FLIGHT.get(self.key, 0.0)
            if spent + flying + bound > self.server.max_usd:
                raise SpendCapReached(
                    f"teacher.server.max_usd: ${spent:.4f} spent and ${flying:.4f} in flight; "
                    f"the next {len(chats)} requests could cost ${bound:.4f} more, past the "
                    f"${self.server.max_usd:g} cap: stopped (finished batches are kept; rerun "
                    "with a higher cap to continue)"
                )
            _IN_FLIGHT[self.key] = flying + bound
        return bound

    def release(self, bound: float) -> None:
        with _LOCK:
            _IN_FLIGHT[self.key] = max(0.0, _IN_FLIGHT.get(self.key, 0.0) - bound)
