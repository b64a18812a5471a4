"""Prompt assembly: what the model sees at answer time, identical in training and serving.

A prompt holds the instructions, the retrieved past exchanges (each past customer message
beside the agent reply that answered it, so the model can judge which one fits), the
conversation so far and the customer's message. Tokenizers with a chat template get it
rendered through the template; others get a plain ``Customer:``/``Agent:`` transcript.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrieval.records import LogMessage, RetrievedExchange

if TYPE_CHECKING:
    from finetune.config import GeneratorConfig

IGNORE_INDEX = -100  # label value the loss skips
PLAIN_STOP_STRINGS = ("\nCustomer:", "\n### ")
_ROLE_LABEL = {"customer": "Customer", "agent": "Agent"}
_CHAT_ROLE = {"customer": "user", "agent": "assistant"}


@dataclass(frozen=True)
class PromptRequest:
    """One reply to produce: the customer's message, what came before, and the evidence."""

    customer_text: str
    history: tuple[LogMessage, ...] = ()
    evidence: tuple[RetrievedExchange, ...] = ()


@dataclass(frozen=True)
class EncodedPrompt:
    input_ids: list[int]
    evidence_used: int  # evidence blocks that survived the token budget, best first
    history_used: int  # most recent history messages that survived


@dataclass(frozen=True)
class EncodedExample:
    """A training example: the prompt followed by the target; labels mask the prompt."""

    input_ids: list[int]
    labels: list[int] = field(repr=False)

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


class PromptFormat:
    """Renders and tokenizes prompts for one tokenizer under a token budget.

    ``max_prompt_tokens`` bounds the prompt; when it does not fit, the oldest history
    goes first (the last message before the current one is kept longest), then the
    lowest-ranked evidence, then the rest; the current message is never dropped, only
    cut from its start as a last resort. ``max_target_tokens`` bounds training targets.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        instructions: str,
        max_prompt_tokens: int,
        max_target_tokens: int,
        use_chat_template: bool | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.instructions = instructions.strip()
        self.max_prompt_tokens = max_prompt_tokens
        self.max_target_tokens = max_target_tokens
        has_template = bool(getattr(tokenizer, "chat_template", None))
        self.uses_chat_template = has_template if use_chat_template is None else use_chat_template
        if self.uses_chat_template and not has_template:
            raise ValueError("use_chat_template=True but the tokenizer has no chat template")
        self.stop_strings: tuple[str, ...] = () if self.uses_chat_template else PLAIN_STOP_STRINGS
        self.stop_token_ids: frozenset[int] = self._find_stop_token_ids()

    @classmethod
    def for_config(
        cls, tokenizer: Any, config: GeneratorConfig, *, max_prompt_tokens: int | None = None
    ) -> PromptFormat:
        """The prompt format ``config`` trains and serves with (``max_prompt_tokens`` when
        the model's context leaves less room than the configured budget)."""
        return cls(
            tokenizer,
            instructions=config.instructions,
            max_prompt_tokens=max_prompt_tokens or config.max_prompt_tokens,
            max_target_tokens=config.max_new_tokens,
        )

    # -- public -------------------------------------------------------------------------

    def encode(self, request: PromptRequest) -> EncodedPrompt:
        """Token ids of the prompt, ending where the model starts writing the reply."""
        history = list(request.history)
        evidence = list(request.evidence)
        message = request.customer_text
        while True:
            ids = self._tokenize(self._render(history, evidence, message))
            if len(ids) <= self.max_prompt_tokens:
                return EncodedPrompt(ids, len(evidence), len(history))
            if len(history) > 1:
                history.pop(0)
            elif len(evidence) > 1:
                evidence.pop()
            elif history:
                history.pop(0)
            elif evidence:
                evidence.pop()
            else:
                shorter = self._cut_message(message, len(ids) - self.max_prompt_tokens)
                if shorter == message:  # down to its last token: the instructions alone overrun
                    raise ValueError(
                        f"the instructions alone take more than max_prompt_tokens"
                        f" ({self.max_prompt_tokens}) tokens: raise the budget or shorten them"
                    )
                message = shorter

    def encode_example(self, request: PromptRequest, target: str) -> EncodedExample:
        """Prompt plus target reply; only the reply (and its end marker) carries labels."""
        prompt = self.encode(request).input_ids
        target_ids = self.target_ids(request, target)[: self.max_target_tokens]
        return EncodedExample(
            input_ids=prompt + target_ids,
            labels=[IGNORE_INDEX] * len(prompt) + target_ids,
        )

    def target_ids(self, request: PromptRequest, target: str) -> list[int]:
        """Token ids of a reply as the model should write it, end-of-reply marker included."""
        reply = target.strip()
        if self.uses_chat_template:
            messages = self._chat_messages(list(request.history), [], request.customer_text)
            prompt_text = self._apply_template(messages, add_generation_prompt=True)
            full_text = self._apply_template(
                [*messages, {"role": "assistant", "content": reply}], add_generation_prompt=False
            )
            if full_text.startswith(prompt_text):
                ids = self._tokenize(full_text[len(prompt_text) :], bos=False)
                special = self._special_ids()
                # The turn ends at the template's end-of-turn token; what follows is layout.
                ends = [i for i, t in enumerate(ids) if t in special]
                return ids[: ends[0] + 1] if ends else ids
        ids = self._tokenize(" " + _one_line(reply), bos=False)
        eos = self.tokenizer.eos_token_id
        return [*ids, eos] if eos is not None else ids

    # -- rendering ----------------------------------------------------------------------

    def _render(
        self, history: Sequence[LogMessage], evidence: Sequence[RetrievedExchange], message: str
    ) -> str:
        if self.uses_chat_template:
            return self._apply_template(
                self._chat_messages(history, evidence, message), add_generation_prompt=True
            )
        return plain_prompt(self.instructions, history, evidence, message)

    def _chat_messages(
        self, history: Sequence[LogMessage], evidence: Sequence[RetrievedExchange], message: str
    ) -> list[dict[str, str]]:
        return chat_messages(self.instructions, history, evidence, message)

    def _apply_template(
        self, messages: list[dict[str, str]], *, add_generation_prompt: bool
    ) -> str:
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
        except Exception:  # some templates reject a system role: fold it into the first turn
            if not messages or messages[0]["role"] != "system":
                raise
            system, first, *rest = messages
            merged = {
                "role": first["role"],
                "content": system["content"] + "\n\n" + first["content"],
            }
            text = self.tokenizer.apply_chat_template(
                [merged, *rest], tokenize=False, add_generation_prompt=add_generation_prompt
            )
        return str(text)

    # -- tokens -------------------------------------------------------------------------

    def _tokenize(self, text: str, *, bos: bool = True) -> list[int]:
        ids: list[int] = self.tokenizer.encode(text, add_special_tokens=False)
        # Plain prompts start at a document boundary, as bootstrap pretraining documents do;
        # chat templates write their own begin-of-text marker.
        bos_id = self.tokenizer.bos_token_id
        if bos and not self.uses_chat_template and bos_id is not None:
            return [bos_id, *ids]
        return ids

    def _cut_message(self, message: str, excess: int) -> str:
        ids = self.tokenizer.encode(message, add_special_tokens=False)
        keep = max(1, len(ids) - excess - 1)
        return str(self.tokenizer.decode(ids[-keep:]))

    def _find_stop_token_ids(self) -> frozenset[int]:
        stops = set()
        if self.tokenizer.eos_token_id is not None:
            stops.add(int(self.tokenizer.eos_token_id))
        if self.uses_chat_template:
            # Whatever special token closes an assistant turn in this template.
            tail = self.target_ids(PromptRequest("hi"), "ok")
            special = self._special_ids()
            stops.update(int(t) for t in tail if t in special)
        return frozenset(stops)

    def _special_ids(self) -> set[int]:
        special = {int(i) for i in getattr(self.tokenizer, "all_special_ids", ())}
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        special.update(int(i) for i, token in added.items() if getattr(token, "special", False))
        return special


# The two renderings are also what an external inference server is sent (bot.adapters),
# so a model served there sees the prompt it was trained on.
def plain_prompt(
    instructions: str,
    history: Sequence[LogMessage],
    evidence: Sequence[RetrievedExchange],
    message: str,
) -> str:
    """The plain ``Customer:``/``Agent:`` transcript, ending where the reply starts."""
    instructions = instructions.strip()
    parts = [instructions] if instructions else []
    parts.extend(_evidence_block(i, hit) for i, hit in enumerate(evidence, start=1))
    lines = [f"{_ROLE_LABEL[m.role]}: {_one_line(m.text)}" for m in history]
    lines.append(f"Customer: {_one_line(message)}")
    parts.append("### Conversation\n" + "\n".join(lines) + "\nAgent:")
    return "\n\n".join(parts)


def chat_messages(
    instructions: str,
    history: Sequence[LogMessage],
    evidence: Sequence[RetrievedExchange],
    message: str,
) -> list[dict[str, str]]:
    """Chat messages: a system message with the instructions and the evidence, then the
    conversation with alternating roles (consecutive messages of one role are merged)."""
    system = "\n\n".join(
        [instructions.strip(), *(_evidence_block(i, h) for i, h in enumerate(evidence, 1))]
    ).strip()
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for turn in [*history, LogMessage("customer", message)]:
        role = _CHAT_ROLE[turn.role]
        if messages and messages[-1]["role"] == role:  # templates expect alternation
            messages[-1] = {"role": role, "content": messages[-1]["content"] + "\n" + turn.text}
        else:
            messages.append({"role": role, "content": turn.text})
    return messages


def _evidence_block(number: int, hit: RetrievedExchange) -> str:
    return (
        f"### Past exchange {number}\n"
        f"Customer: {_one_line(hit.customer_text)}\n"
        f"Agent: {_one_line(hit.agent_reply)}"
    )


def _one_line(text: str) -> str:
    # Line breaks inside a message would read as a new speaker in the plain transcript.
    return " ".join(text.split())
