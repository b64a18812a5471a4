"""Prompt assembly and training examples: what the model sees, and that it never sees the answer."""

from __future__ import annotations

import pytest

from finetune.examples import (
    build_examples,
    correction_examples,
    iter_turns,
    retrieve_for_turns,
    split_held_out,
    split_validation,
)
from finetune.prompting import IGNORE_INDEX, PromptFormat, PromptRequest
from retrieval.records import Conversation, LogMessage, RetrievedExchange
from tests.support.finetune_fakes import (
    InMemoryRetriever,
    tiny_tokenizer,
    toy_conversations,
    toy_corpus_lines,
)

HANDOFF = "Let me pass you to a colleague."


def _hit(question: str, reply: str, conversation: str = "other") -> RetrievedExchange:
    return RetrievedExchange(0.9, f"{conversation}#0", question, reply, "log", conversation)


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "chat-template"])
def fmt(request: pytest.FixtureRequest) -> PromptFormat:
    tokenizer = tiny_tokenizer(toy_corpus_lines(), chat_template=request.param)
    return PromptFormat(
        tokenizer,
        instructions="Answer from the past exchanges.",
        max_prompt_tokens=400,
        max_target_tokens=64,
    )


def test_prompt_shows_each_past_question_beside_its_reply(fmt: PromptFormat) -> None:
    request = PromptRequest(
        "where is my tent order?",
        (LogMessage("customer", "hello"), LogMessage("agent", "Hi, how can I help?")),
        (_hit("my parcel has not arrived", "Orders ship in 2 days. KB-SHP-02."),),
    )
    text = fmt.tokenizer.decode(fmt.encode(request).input_ids)
    assert "Customer: my parcel has not arrived\nAgent: Orders ship in 2 days. KB-SHP-02." in text
    assert text.index("KB-SHP-02") < text.index("Hi, how can I help?") < text.index("tent order")
    assert fmt.uses_chat_template == ("<|im_start|>" in text)


def test_labels_cover_only_the_reply(fmt: PromptFormat) -> None:
    request = PromptRequest("how do I return boots?", (), (_hit("return tent", "Within 30 days."),))
    example = fmt.encode_example(request, "Returns take 30 days, see KB-RET-01.")
    prompt = fmt.encode(request).input_ids
    assert example.input_ids[: len(prompt)] == prompt
    assert all(label == IGNORE_INDEX for label in example.labels[: len(prompt)])
    target = [t for t in example.labels if t != IGNORE_INDEX]
    assert fmt.tokenizer.decode(target, skip_special_tokens=True).strip() == (
        "Returns take 30 days, see KB-RET-01."
    )
    assert target[-1] in fmt.stop_token_ids  # the model learns where a reply ends


def test_budget_drops_oldest_history_then_lowest_evidence_never_the_message(
    fmt: PromptFormat,
) -> None:
    history = tuple(
        LogMessage("customer" if i % 2 == 0 else "agent", f"old message number {i} " * 3)
        for i in range(8)
    )
    evidence = tuple(_hit(f"question {i}", f"answer {i} " * 6, f"c{i}") for i in range(4))
    request = PromptRequest("my stove is broken", history, evidence)
    full = len(fmt.encode(request).input_ids)
    small = PromptFormat(
        fmt.tokenizer,
        instructions=fmt.instructions,
        max_prompt_tokens=full * 2 // 3,
        max_target_tokens=64,
    )
    encoded = small.encode(request)
    text = small.tokenizer.decode(encoded.input_ids)
    assert len(encoded.input_ids) <= small.max_prompt_tokens
    assert "my stove is broken" in text
    assert encoded.history_used < len(history)
    kept_history = [m for m in history if m.text.strip() in text]
    assert kept_history == list(history[len(history) - len(kept_history) :])  # newest kept
    kept_evidence = [h for h in evidence if h.agent_reply.strip() in text]
    assert kept_evidence == list(evidence[: len(kept_evidence)])  # best-ranked kept
    tiny = PromptFormat(fmt.tokenizer, instructions="", max_prompt_tokens=40, max_target_tokens=8)
    squeezed = tiny.encode(PromptRequest("my stove is broken " * 30, history, evidence))
    assert len(squeezed.input_ids) <= 40 and squeezed.evidence_used == 0
    assert "stove is broken" in tiny.tokenizer.decode(squeezed.input_ids)


def test_instructions_longer_than_the_budget_are_an_error_not_a_hang(fmt: PromptFormat) -> None:
    wordy = PromptFormat(
        fmt.tokenizer,
        instructions="Answer from the past exchanges. " * 20,
        max_prompt_tokens=30,
        max_target_tokens=8,
    )
    with pytest.raises(ValueError, match="instructions alone"):
        wordy.encode(PromptRequest("where is my order?"))


class _LeakyRetriever(InMemoryRetriever):
    """Ignores the exclusion it is asked for, as a buggy knowledge base might."""

    def search(self, context, customer_text, k, *, exclude_conversation_ids=()):  # type: ignore[no-untyped-def]
        return super().search(context, customer_text, k)


@pytest.mark.parametrize("retriever_cls", [InMemoryRetriever, _LeakyRetriever])
def test_training_prompts_never_contain_their_own_conversation(retriever_cls: type) -> None:
    conversations = toy_conversations()
    retriever = retriever_cls(conversations)
    turns = [t for c in conversations for t in iter_turns(c)]
    retrieved = retrieve_for_turns(turns, retriever, 6)
    examples = build_examples(
        turns, retrieved, k=3, reference_rate=0.8, handoff_reply=HANDOFF, seed=0
    )
    tokenizer = tiny_tokenizer(toy_corpus_lines())
    fmt = PromptFormat(tokenizer, instructions="x", max_prompt_tokens=400, max_target_tokens=64)
    assert len(examples) == len(turns)
    for turn, example in zip(turns, examples, strict=True):
        assert all(h.conversation_id != turn.conversation_id for h in example.request.evidence)
        assert example.request.customer_text == turn.customer_text
        prompt = tokenizer.decode(fmt.encode(example.request).input_ids)
        if example.target != HANDOFF and not example.has_reference:
            assert turn.reply not in prompt  # no copy of the answer from its own log
    assert any(text for text, excluded in retriever.calls if excluded)


@pytest.mark.parametrize("shuffle", [False, True], ids=["retrieved-order", "shuffled"])
def test_raft_mix_of_reference_and_distractor_prompts(shuffle: bool) -> None:
    conversations = toy_conversations(repeats=8)
    retriever = InMemoryRetriever(conversations)
    turns = [t for c in conversations for t in iter_turns(c) if "KB-" in t.reply]
    retrieved = retrieve_for_turns(turns, retriever, 8)
    examples = build_examples(
        turns, retrieved, k=3, reference_rate=0.8, handoff_reply=HANDOFF, seed=3,
        shuffle_evidence=shuffle,
    )  # fmt: skip
    with_reference = [e for e in examples if e.has_reference]
    assert 0.6 <= len(with_reference) / len(examples) <= 0.95
    positions = set()
    for example, hits in zip(examples, retrieved, strict=True):
        replies = [h.agent_reply for h in example.request.evidence]
        if example.has_reference:
            assert example.target in replies
            positions.add(replies.index(example.target))
        else:
            assert example.target == HANDOFF  # never taught to state facts it was not shown
        ranks = [[h.agent_reply for h in hits].index(r) for r in replies]
        if not shuffle:
            assert ranks == sorted(ranks)  # the retriever's order, as when serving
    if shuffle:
        assert len(positions) > 1  # the backing reply is not always in the same slot


# A logged e-mail reply, scrubbed: the customer's name in the greeting and the agent's in
# the signature became the placeholder.
_EMAIL_REPLY = (
    "Hi [NAME],\n\nReturns are free within 30 days: print the label from KB-RET-01."
    "\n\nIf you have any other questions, just reply to this email.\n\nAll the best,\n[NAME]"
)
_ANSWER = "Returns are free within 30 days: print the label from KB-RET-01."


@pytest.mark.parametrize(
    ("history", "target"),
    [
        ((), f"Hi,\n\n{_ANSWER}"),  # the first reply greets, neutrally
        ((LogMessage("customer", "hello"), LogMessage("agent", "Hi! How can I help?")), _ANSWER),
    ],
    ids=["first-reply", "mid-conversation"],
)
def test_training_targets_are_chat_replies_that_name_no_one(
    history: tuple[LogMessage, ...], target: str
) -> None:
    conversation = Conversation(
        "c-return",
        (
            *history,
            LogMessage("customer", "how do I return boots?"),
            LogMessage("agent", _EMAIL_REPLY),
        ),
    )
    (turn,) = [t for t in iter_turns(conversation) if t.reply == _EMAIL_REPLY]
    backing = _hit("can I send boots back?", _EMAIL_REPLY)
    distractor = _hit("where is my parcel?", "Orders ship in 2 days. KB-SHP-02.")
    (with_reference,) = build_examples(
        [turn], [[backing, distractor]], k=2, reference_rate=1.0, handoff_reply=HANDOFF, seed=0
    )
    (corrected,) = correction_examples([turn], [[distractor]], k=2)
    for example in (with_reference, corrected):
        assert example.target == target
    # The evidence is shown as logged: only the reply to learn is made a chat reply.
    assert _EMAIL_REPLY in [h.agent_reply for h in with_reference.request.evidence]
    assert corrected.request.evidence[0].agent_reply == _EMAIL_REPLY


def test_turns_and_held_out_split_are_deterministic() -> None:
    conversation = Conversation(
        "c1",
        (
            LogMessage("agent", "Welcome!"),
            LogMessage("customer", "hi"),
            LogMessage("customer", "my order?"),
            LogMessage("agent", "Shipped."),
            LogMessage("agent", "KB-SHP-02"),
            LogMessage("customer", "thanks"),
        ),
    )
    turns = list(iter_turns(conversation))
    assert len(turns) == 1
    assert turns[0].customer_text == "hi\nmy order?"
    assert turns[0].reply == "Shipped.\nKB-SHP-02"
    assert turns[0].history == (LogMessage("agent", "Welcome!"),)
    conversations = toy_conversations(repeats=20)
    kept, held = split_held_out(conversations, 20.0)
    assert split_held_out(list(reversed(conversations)), 20.0)[1] == list(reversed(held))
    assert 5 <= len(held) <= 40 and not {c.id for c in kept} & {c.id for c in held}


@pytest.mark.parametrize("repeats", [4, 8, 40])
def test_validation_split_is_a_real_share_beside_the_held_out_set(repeats: int) -> None:
    # The held-out split and the validation split taken from what it kept both hash the
    # conversation id; unsalted, every id that would validate is already held out.
    conversations = toy_conversations(repeats=repeats)
    kept, held = split_held_out(conversations, 10.0)
    fit, validation = split_validation(kept)
    fit_ids, val_ids, held_ids = ({c.id for c in s} for s in (fit, validation, held))
    assert val_ids and fit_ids
    assert not val_ids & held_ids and not val_ids & fit_ids and not fit_ids & held_ids
    assert fit_ids | val_ids == {c.id for c in kept}
    if len(kept) >= 100:
        assert 0.02 <= len(validation) / len(kept) <= 0.1  # about VALIDATION_PERCENT
    # Stable across runs and input orders.
    again_fit, again_val = split_validation(list(reversed(kept)))
    assert {c.id for c in again_val} == val_ids and {c.id for c in again_fit} == fit_ids


def test_too_few_conversations_all_train() -> None:
    few = toy_conversations(repeats=1)[:4]
    assert split_validation(few) == (few, [])


def test_retrieval_for_examples_starts_no_batch_after_its_deadline() -> None:
    conversations = toy_conversations()
    retriever = InMemoryRetriever(conversations)
    turns = [t for c in conversations for t in iter_turns(c)]
    ticks = iter(range(100))  # a clock that moves 1 s each time it is read

    hits = retrieve_for_turns(
        turns, retriever, 4, batch_size=4, deadline=2.0, clock=lambda: float(next(ticks))
    )
    # Read before the 2nd (0 s), 3rd (1 s) and 4th batch (2 s: the deadline): three batches.
    assert hits == retrieve_for_turns(turns, retriever, 4)[:12]
    # Past its deadline, the first batch still runs: there is nothing to train on without it.
    assert len(retrieve_for_turns(turns, retriever, 4, batch_size=4, deadline=-1.0)) == 4
