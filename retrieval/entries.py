"""Turning a conversation into retrievable exchanges."""

from __future__ import annotations

from retrieval.records import Conversation, ExchangeEntry


def entries_of(conversation: Conversation) -> list[ExchangeEntry]:
    """One entry per customer turn that an agent answered, with everything before it as
    context. Turn numbers count customer turns from 1, so ``source_id`` is stable."""
    entries: list[ExchangeEntry] = []
    messages = conversation.messages
    turn = 0
    for position, message in enumerate(messages):
        if message.role != "customer":
            continue
        turn += 1
        reply = next((m for m in messages[position + 1 :] if m.role == "agent"), None)
        # Only the agent message right after the customer turn answers it; a customer
        # turn followed by another customer turn (unmerged logs) takes the next reply.
        if reply is None:
            continue
        entries.append(
            ExchangeEntry(
                source_id=f"{conversation.id}#{turn}",
                conversation_id=conversation.id,
                turn_index=turn,
                context=messages[:position],
                customer_text=message.text,
                agent_reply=reply.text,
            )
        )
    return entries
