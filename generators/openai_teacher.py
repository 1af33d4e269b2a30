"""A teacher behind any OpenAI-compatible server: OpenAI itself, vLLM's and SGLang's servers,
llama.cpp's server, Ollama, ``transformers serve``. Chat completions over HTTP, many requests in
flight (``server.max_concurrency``), under the config's requests- and tokens-per-minute limits
(``generators.rate_limits``); 429 and 5xx are retried here, waiting what ``Retry-After`` asks or
backing off. The key is read from the environment variable the config names, and never kept
anywhere else: not in the config, the lineage, logs or errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from sublearn.core.chat import ChatPrompt
from sublearn.core.errors import UserError, printable
from sublearn.generators.rate_limits import estimated_tokens, limiter_for, retry_after


class ServerError(UserError, RuntimeError):
    """A server that cannot be reached or refuses a request, phrased as one line."""


def api_key(server) -> str:
    """The key from ``server.api_key_env``; a local server without one gets a placeholder
    (the client insists on a key, local servers ignore it)."""
    key = os.environ.get(server.api_key_env)
    if key:
        return key
    if server.base_url is None:
        raise ServerError(f"{server.api_key_env}: not set; OpenAI's API needs a key")
    return "not-needed"


class OpenAITeacher:
    """Completions from a server; ``usage`` adds up the tokens the server reports."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.server = cfg.server
        self.tokenizer = None
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "implausible": 0}
        self._counted = 0

    def completion_tokens(self, completions: Sequence[str]) -> int:
        """Output tokens the server reported since the last call (one batch's)."""
        new = self.usage["completion_tokens"] - self._counted
        self._counted = self.usage["completion_tokens"]
        return new

    def lineage(self) -> dict:
        from sublearn.core.model_source import teacher_source
        from sublearn.generators.teacher import teacher_lineage

        return teacher_lineage("openai", teacher_source(self.cfg), self.cfg)

    @property
    def batch_mode(self) -> bool:
        """``server.mode: batch``: the generation loop sends a shard's requests as one batch."""
        return self.server.mode == "batch"

    def requests_for(self, prompts: Sequence[ChatPrompt], seed: int) -> list[dict]:
        """One request per prompt, seeded ``seed + position`` (servers that honour seeds give
        the same rows again; OpenAI's seeds are best effort)."""
        s = self.cfg.sampling
        return [
            {
                "messages": p.messages(),
                "temperature": s.temperature,
                "top_p": s.top_p,
                "max_tokens": s.max_new_tokens,
                "seed": seed + i,
                **self._grammar(),
            }
            for i, p in enumerate(prompts)
        ]

    def generate(self, prompts: Sequence[ChatPrompt], seed: int) -> list[str]:
        requests = self.requests_for(prompts, seed)
        return [self._content(r.choices[0].message.content) for r in self._run(requests)]

    def generate_in_batches(
        self, requests: dict[str, dict], shard_dir: Path, name: str
    ) -> dict[str, str]:
        """Completions of these requests (by custom id) through the provider's batch API, the
        same request bodies live mode sends."""
        answers = self._batch_answers(requests, shard_dir, name)
        return {
            cid: body["choices"][0]["message"].get("content") or "" for cid, body in answers.items()
        }

    def _batch_answers(self, requests: dict[str, dict], folder: Path, name: str) -> dict[str, dict]:
        """Chat completions (as JSON bodies) through provider batches kept in ``folder``; the
        usage each answer reports is counted."""
        import openai

        from sublearn.generators.provider_batches import ProviderBatches

        client = openai.OpenAI(
            base_url=self.server.url,
            api_key=api_key(self.server),
            max_retries=self.server.max_retries,
            timeout=self.server.timeout_s,
        )
        bodies = {cid: flat_body(r) for cid, r in requests.items()}
        try:
            batches = ProviderBatches(client, self.server, self.cfg.model, folder, name)
            answers = batches.run(bodies)
        except (openai.APIConnectionError, openai.APIStatusError) as err:
            raise self._failure(err) from None
        finally:
            client.close()
        for cid, body in answers.items():
            usage = body.get("usage") or {}
            self._count(usage.get("prompt_tokens"), usage.get("completion_tokens"), bodies[cid])
        return answers

    def _count(self, prompt_tokens: object, completion_tokens: object, request: dict) -> None:
        """Add one answer's reported usage; usage that cannot be true is counted apart."""
        if not plausible_usage(prompt_tokens, completion_tokens, request):
            self.usage["implausible"] += 1
            return
        self.usage["prompt_tokens"] += prompt_tokens
        self.usage["completion_tokens"] += completion_tokens

    def _grammar(self) -> dict:
        """The answer form or numbers rule in the server's own request field: GBNF, or the
        numbers rule as a JSON-schema string pattern."""
        from sublearn.generators.output_formats import numbers_schema, server_format

        answer_form = server_format(self.cfg.decoding)
        if answer_form is None or self.server.grammar is None:
            return {}
        if self.server.grammar == "json_schema":
            d = self.cfg.decoding
            schema = numbers_schema(d.stop_after_numbers)
            return {"response_format": {"type": "json_schema", "json_schema": schema}}
        if self.server.grammar == "gbnf":
            return {"extra_body": {"grammar": answer_form.gbnf}}
        return {"extra_body": {"structured_outputs": {"grammar": answer_form.gbnf}}}

    def _content(self, text: str | None) -> str:
        """A completion's text: under a JSON-schema constraint, the string inside the JSON
        (the raw text when it is not that JSON: the filters drop it)."""
        text = text or ""
        if self.server.grammar != "json_schema" or "response_format" not in self._grammar():
            return text
        from sublearn.generators.output_formats import NUMBERS_FIELD

        try:
            value = json.loads(text)[NUMBERS_FIELD]
        except (ValueError, KeyError, TypeError):
            return text
        return value if isinstance(value, str) else text

    def first_token_top(
        self, prompts: Sequence[ChatPrompt], k: int
    ) -> list[list[tuple[str, float]]]:
        """The k most likely first tokens at temperature 0, from the server's top_logprobs."""
        requests = [
            {
                "messages": p.messages(),
                "temperature": 0.0,
                "max_tokens": 1,
                "logprobs": True,
                "top_logprobs": k,
            }
            for p in prompts
        ]
        if self.batch_mode:
            return self._first_tokens_in_batches(requests)
        out = []
        for response in self._run(requests):
            content = response.choices[0].logprobs and response.choices[0].logprobs.content
            if not content:
                raise self._no_logprobs()
            out.append([(t.token, t.logprob) for t in content[0].top_logprobs])
        return out

    def _first_tokens_in_batches(self, requests: list[dict]) -> list[list[tuple[str, float]]]:
        """The judge's requests as provider batches, kept under the cache by their content,
        so a judge killed while its batch runs resumes that batch."""
        import hashlib
        import json

        from sublearn.core.model_source import cache_root

        named = {f"row-{i}": r for i, r in enumerate(requests)}
        blob = json.dumps([self.server.url, self.cfg.model, named], sort_keys=True)
        folder = cache_root() / "provider-batches" / hashlib.sha256(blob.encode()).hexdigest()[:20]
        answers = self._batch_answers(named, folder, "judge")
        out = []
        for cid in named:
            content = (answers[cid]["choices"][0].get("logprobs") or {}).get("content")
            if not content:
                raise self._no_logprobs()
            out.append([(t["token"], t["logprob"]) for t in content[0]["top_logprobs"]])
        return out

    def _failure(self, err: Exception, tried: str = "") -> ServerError:
        """A request the server refused (HTTP status) or never answered, as one line."""
        import openai

        if isinstance(err, openai.APIStatusError):
            return ServerError(f"{self.server.url}: HTTP {err.status_code}: {short(err.message)}")
        return ServerError(f"{self.server.url}: {failure_of(err, self.server.timeout_s)}{tried}")

    def _no_logprobs(self) -> ServerError:
        return ServerError(
            f"{self.server.url}: the server returned no log-probs; the judge "
            "needs one that gives top_logprobs (vLLM, llama.cpp, OpenAI)"
        )

    def _run(self, requests: list[dict]) -> list:
        return asyncio.run(self._all(requests))

    async def _all(self, requests: list[dict]) -> list:
        import openai

        client = openai.AsyncOpenAI(
            base_url=self.server.url,
            api_key=api_key(self.server),
            max_retries=0,  # retried here, where each wait can be said
            timeout=self.server.timeout_s,
        )
        limit = asyncio.Semaphore(self.server.max_concurrency)
        retries = self.server.max_retries
        limiter = limiter_for(self.server, self.cfg.model)

        async def one(request: dict):
            async with limit:
                for attempt in range(retries + 1):
                    estimate = estimated_tokens(request)
                    if limiter is not None:
                        await asyncio.sleep(limiter.reserve(estimate))
                    try:
                        response = await client.chat.completions.create(
                            model=self.cfg.model, **request
                        )
                    except openai.APIStatusError as err:
                        if limiter is not None:
                            limiter.settle(estimate, 0)  # a refused request used no tokens
                        if err.status_code not in RETRIED or attempt == retries:
                            raise
                        problem = f"HTTP {err.status_code}"
                        delay = retry_after(err.response.headers)
                    except openai.APIConnectionError as err:
                        if attempt == retries:
                            raise
                        problem = failure_of(err, self.server.timeout_s)
                        delay = None
                    else:
                        if limiter is not None:
                            limiter.settle(estimate, reported_tokens(response, request, estimate))
                        return response
                    delay = min(MAX_WAIT_S, delay if delay is not None else 2.0**attempt)
                    log.warning(
                        "%s: %s; retry %d of %d in %g s",
                        self.server.url,
                        problem,
                        attempt + 1,
                        retries,
                        delay,
                    )
                    await asyncio.sleep(delay)

        try:
            responses = await asyncio.gather(*(one(r) for r in requests))
        except (openai.APIResponseValidationError, ValueError):
            raise ServerError(
                f"{self.server.url}: the server's answer is not a chat completion"
            ) from None
        except (openai.APIConnectionError, openai.APIStatusError) as err:
            tried = f" ({retries + 1} attempts)" if retries else ""
            raise self._failure(err, tried) from None
        finally:
            await client.close()
        for r in responses:
            if not getattr(r, "choices", None) or getattr(r.choices[0], "message", None) is None:
                raise ServerError(f"{self.server.url}: the server's answer holds no choices")
        for request, r in zip(requests, responses, strict=True):
            if r.usage is not None:
                self._count(r.usage.prompt_tokens, r.usage.completion_tokens, request)
        return responses


TEMPLATE_TOKENS = 512  # a chat template's own tokens, generously
MAX_WAIT_S = 600.0  # the longest wait between attempts, whatever Retry-After asks


def reported_tokens(response, request: dict, estimate: int) -> int:
    """The tokens a response used by the server's own count, or the estimate where the server
    reports none or a count that cannot be true."""
    usage = getattr(response, "usage", None)
    if usage is None or not plausible_usage(usage.prompt_tokens, usage.completion_tokens, request):
        return estimate
    return usage.prompt_tokens + usage.completion_tokens


def flat_body(request: dict) -> dict:
    """A live request as the JSON body a batch line carries (the client's ``extra_body``
    fields merged in)."""
    return {k: v for k, v in request.items() if k != "extra_body"} | request.get("extra_body", {})


def plausible_usage(prompt_tokens: object, completion_tokens: object, request: dict) -> bool:
    """Whether a server's token counts for one request can be true: whole numbers, no more
    output tokens than the request allowed, no more prompt tokens than the prompt has
    characters plus a chat template's. Counts that cannot be are not added up or billed."""
    if not all(type(n) is int and n >= 0 for n in (prompt_tokens, completion_tokens)):
        return False
    characters = sum(len(m["content"]) for m in request["messages"])
    return completion_tokens <= request["max_tokens"] and prompt_tokens <= (
        characters + TEMPLATE_TOKENS
    )


RETRIED = {408, 409, 429, 500, 502, 503, 504}  # what waiting can fix, as openai's client retries
log = logging.getLogger("sublearn")


def failure_of(err: Exception, timeout_s: float) -> str:
    """What went wrong with a request that got no answer, in words."""
    import openai

    if isinstance(err, openai.APITimeoutError):
        return f"no answer within {timeout_s:g} s (teacher.server.timeout_s)"
    return "cannot reach the server"


def short(message: str) -> str:
    """A server's message as one printable line (its escapes never reach a terminal)."""
    return printable(message.splitlines()[0][:200]) if message else "no message"
