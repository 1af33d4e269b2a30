"""Chat prompts: a system and a user message, and their token ids up to the assistant's turn.

Shared by teachers (generation), students (training) and evaluation, so all three see the same
conversation the same way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatPrompt:
    system: str | None
    user: str

    def messages(self) -> list[dict[str, str]]:
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, {"role": "user", "content": self.user}]


def prompt_ids(tokenizer, conversation: list[dict]) -> list[int]:
    """Token ids of a chat prompt up to the assistant's turn (the template adds the specials)."""
    text = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]
