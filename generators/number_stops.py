"""Stop conditions of number-constrained decoding, as per-token tables and a running state, so
every backend that decodes step by step applies the same rule: once an answer has started its
n-th number no more separators may follow (it ends after that number instead of being cut
mid-list by the token limit), and a blank line ends the answer (what follows a blank line is a
second answer, never part of the first)."""

from __future__ import annotations

import torch


class NumberStops:
    """What each allowed token does to the rule's state, looked up by token id."""

    def __init__(self, tokenizer, allowed_ids: list[int], vocab_size: int, n: int, eos: int):
        self.n = n
        self.ends_digit = torch.zeros(vocab_size, dtype=torch.bool)
        self.runs_after_digit = torch.zeros(vocab_size, dtype=torch.long)
        self.runs_after_other = torch.zeros(vocab_size, dtype=torch.long)
        self.no_separators = torch.full((vocab_size,), float("-inf"))
        self.only_eos = torch.full((vocab_size,), float("-inf"))
        self.only_eos[eos] = 0.0
        self.starts_newline = torch.zeros(vocab_size, dtype=torch.bool)
        self.ends_newline = torch.zeros(vocab_size, dtype=torch.bool)
        self.blank_line = torch.zeros(vocab_size, dtype=torch.bool)
        for t in allowed_ids:
            text = tokenizer.decode([t])
            self.starts_newline[t] = text.startswith("\n")
            self.ends_newline[t] = text.endswith("\n")
            self.blank_line[t] = "\n\n" in text
            starts = sum(
                c.isdigit() and (i == 0 or not text[i - 1].isdigit()) for i, c in enumerate(text)
            )
            self.runs_after_other[t] = starts
            self.runs_after_digit[t] = starts - int(text[:1].isdigit())
            self.ends_digit[t] = text[-1:].isdigit()
            if text.isdigit() or t == eos:
                self.no_separators[t] = 0.0

    def start(self, rows: int) -> StopState:
        return StopState(rows)

    def update(self, state: StopState, tokens: torch.Tensor) -> None:
        """Advance each row's state by the token it just produced (``tokens``: one per row)."""
        tokens = tokens.cpu()
        state.runs += torch.where(
            state.in_digit, self.runs_after_digit[tokens], self.runs_after_other[tokens]
        )
        state.in_digit = self.ends_digit[tokens]
        state.blank |= self.blank_line[tokens] | (state.newline & self.starts_newline[tokens])
        state.newline = self.ends_newline[tokens]

    def apply(
        self, state: StopState, scores: torch.Tensor, columns: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``scores`` (rows x vocab, or rows x the token ids ``columns`` lists) with the rule's
        masks added where a row's state asks."""
        width = scores.shape[-1]
        for rows, mask in (
            ((state.runs >= self.n) & state.in_digit, self.no_separators),
            (state.blank, self.only_eos),
        ):
            if rows.any():
                mask = mask[columns.cpu()] if columns is not None else mask[:width]
                mask = mask.to(scores.device, scores.dtype)
                scores = torch.where(rows.to(scores.device)[:, None], scores + mask, scores)
        return scores


class StopState:
    """Per row: numbers started, whether the last token ended in a digit or a newline, and
    whether a blank line has been written."""

    def __init__(self, rows: int):
        self.runs = torch.zeros(rows, dtype=torch.long)
        self.in_digit = torch.zeros(rows, dtype=torch.bool)
        self.blank = torch.zeros(rows, dtype=torch.bool)
        self.newline = torch.zeros(rows, dtype=torch.bool)

    def select(self, keep: torch.Tensor) -> StopState:
        """The state of the rows ``keep`` indexes (after finished rows are dropped)."""
        out = StopState(0)
        out.runs, out.in_digit = self.runs[keep], self.in_digit[keep]
        out.blank, out.newline = self.blank[keep], self.newline[keep]
        return out


def stop_after_numbers_regex(n: int) -> str:
    """The stop rule as a regular expression over the number characters, for engines that
    constrain decoding by grammar (vLLM's structured outputs): separators, then at most n
    numbers, nothing after the n-th. A blank line is an ordinary separator here; the numbers
    filter drops an answer that runs on after one."""
    sep = r"[ ,;\n\[\]\(\)]"
    return rf"{sep}*(?:[0-9]+{sep}+){{0,{n - 1}}}(?:[0-9]+)?"
