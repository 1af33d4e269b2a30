"""A provider's batch API (``teacher.server.mode: batch``): half the price of live requests.

A shard's requests go as one batch: a JSONL file uploaded through the files endpoint, a batch
created on it, polled with backoff until it ends, its output (and error) files downloaded. The
batch's id is written beside the shards *before* polling starts, so a run killed while a batch
is in flight resumes polling that batch instead of paying for it again. Every answer is kept on
disk as soon as it is downloaded (``answers-<batch id>.json``); requests that failed, or that an
expired or cancelled batch never ran, go again in a later batch, and only they. A request that
still has no answer after ``max_retries`` more batches fails the step with one line.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path

from sublearn.core.errors import UserError
from sublearn.core.runio import write_json

log = logging.getLogger("sublearn")

STATE = "provider-batch.json"
ANSWERS_GLOB = "provider-*/answers-*.json"
ENDPOINT = "/v1/chat/completions"
FINAL = {"completed", "failed", "expired", "cancelled"}
MAX_POLL_S = 300.0


class BatchError(UserError, RuntimeError):
    """A batch that cannot give the step its rows, as one line."""


def in_flight(shard_dir: Path, name: str) -> bool:
    """Whether a shard has a batch submitted and not yet collected (a killed run's)."""
    return (Path(shard_dir) / f"provider-{name}" / STATE).is_file()


def request_lines(requests: dict[str, dict], model: str) -> bytes:
    """The batch input file: one chat-completions request a line, named by its custom id."""
    lines = [
        json.dumps(
            {
                "custom_id": cid,
                "method": "POST",
                "url": ENDPOINT,
                "body": {"model": model, **body},
            }
        )
        for cid, body in requests.items()
    ]
    return ("\n".join(lines) + "\n").encode()


def read_results(text: str) -> tuple[dict[str, dict], dict[str, str]]:
    """An output or error file: the chat completions that succeeded, by custom id, and what
    went wrong with the others."""
    answers, errors = {}, {}
    for line in text.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        cid, response = item.get("custom_id"), item.get("response") or {}
        if response.get("status_code") == 200 and response.get("body", {}).get("choices"):
            answers[cid] = response["body"]
        else:
            error = item.get("error") or response.get("body", {}).get("error") or {}
            status = response.get("status_code")
            errors[cid] = error.get("message") or (f"HTTP {status}" if status else "no answer")
    return answers, errors


class ProviderBatches:
    """One shard's provider batches: their state and answers in ``<shard_dir>/<name>``; the
    answers of every shard's batches under ``shard_dir`` count as done."""

    def __init__(self, client, server, model: str, shard_dir: Path, name: str):
        self.client = client
        self.server = server
        self.model = model
        self.shard_dir = Path(shard_dir)
        self.folder = self.shard_dir / f"provider-{name}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def answered(self) -> dict[str, dict]:
        """Every answer already downloaded, by custom id."""
        out: dict[str, dict] = {}
        for path in sorted(self.shard_dir.glob(ANSWERS_GLOB)):
            out.update(json.loads(path.read_text()))
        return out

    def run(self, requests: dict[str, dict]) -> dict[str, dict]:
        """A chat completion for every request, through as many batches as it takes."""
        answers = self.answered()
        errors: dict[str, str] = {}
        for attempt in range(self.server.max_retries + 1):
            pending = {cid: body for cid, body in requests.items() if cid not in answers}
            if not pending:
                break
            batch_id = self._resumable(pending) or self._submit(pending, attempt)
            batch = self._poll(batch_id)
            got, errors = self._collect(batch)
            answers.update(got)
            self._finish(batch_id, got)
        missing = [cid for cid in requests if cid not in answers]
        if missing:
            first = errors.get(missing[0], "never answered")
            raise BatchError(
                f"{self.server.url}: {len(missing)} of {len(requests)} batch requests have no "
                f"answer after {self.server.max_retries + 1} batches (first: {first[:200]})"
            )
        return {cid: answers[cid] for cid in requests}

    def _resumable(self, pending: dict[str, dict]) -> str | None:
        """The id of a batch a killed run left in flight for these requests."""
        state = self.folder / STATE
        if not state.is_file():
            return None
        recorded = json.loads(state.read_text())
        if not set(recorded["custom_ids"]) <= set(pending):
            state.unlink()
            return None
        log.info("resuming batch %s (%d requests)", recorded["id"], len(recorded["custom_ids"]))
        return recorded["id"]

    def _submit(self, pending: dict[str, dict], attempt: int) -> str:
        upload = self.client.files.create(
            file=("requests.jsonl", io.BytesIO(request_lines(pending, self.model))),
            purpose="batch",
        )
        batch = self.client.batches.create(
            input_file_id=upload.id,
            endpoint=ENDPOINT,
            completion_window=self.server.batch_window,
            metadata={"sublearn": f"{self.shard_dir.parent.name}/{self.folder.name}"[:512]},
        )
        write_json({"id": batch.id, "custom_ids": list(pending)}, self.folder / STATE)
        again = f" (again: attempt {attempt + 1})" if attempt else ""
        log.info("submitted batch %s: %d requests%s", batch.id, len(pending), again)
        return batch.id

    def _poll(self, batch_id: str):
        wait = self.server.batch_poll_s
        while True:
            batch = self.client.batches.retrieve(batch_id)
            if batch.status in FINAL:
                counts = batch.request_counts
                done = f"{counts.completed}/{counts.total}" if counts else "?"
                log.info("batch %s %s: %s requests completed", batch_id, batch.status, done)
                return batch
            time.sleep(wait)
            wait = min(wait * 1.5, MAX_POLL_S)

    def _collect(self, batch) -> tuple[dict[str, dict], dict[str, str]]:
        answers, errors = {}, {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                got, bad = read_results(self.client.files.content(file_id).text)
                answers.update(got)
                errors.update(bad)
        if batch.status == "failed" and not answers:
            reasons = [e.message for e in (batch.errors.data if batch.errors else []) or []]
            errors.setdefault("*", "; ".join(r for r in reasons if r) or "batch failed")
        return answers, errors

    def _finish(self, batch_id: str, answers: dict[str, dict]) -> None:
        """Keep the batch's answers, then forget it as in flight (in that order: a kill
        between the two resumes polling a finished batch, which costs nothing)."""
        write_json(answers, self.folder / f"answers-{batch_id}.json")
        (self.folder / STATE).unlink(missing_ok=True)
