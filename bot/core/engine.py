"""The conversation engine: one customer message in, one streamed reply out.

For each message it checks the input, scrubs personal data, stores the customer's turn,
retrieves past answers with the recent history, decides from their confidence whether to
answer at all, then generates a reply that is checked for grounding while it streams (or
copies the best past answer), and stores the bot's turn with its sources and flags.
Transports (web, Slack) only translate to and from the records in :mod:`bot.core.types`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

from bot.core.certainty import certainty_of
from bot.core.config import EngineConfig, HandoffPolicy
from bot.core.errors import ConversationHandedOff, InvalidMessage, QuestionTaken, TurnNotFound
from bot.core.grounding import GroundingStep, StreamingGroundingCheck, grounding_evidence
from bot.core.handoff_text import HandoffTextMatcher
from bot.core.ports import (
    AnswerCurator,
    ConversationStore,
    FlagGate,
    Generator,
    HandoffPolicySource,
    QuestionFinder,
    Retriever,
    Scrubber,
    Switchable,
    Versioned,
)
from bot.core.types import (
    CUSTOMER_DETAILS,
    CUSTOMER_REQUEST,
    AttachedQuestion,
    Conversation,
    ConversationState,
    Correction,
    FlagReason,
    FlagStatus,
    GenerationRequest,
    IncomingMessage,
    Message,
    Outcome,
    Rating,
    Reply,
    ReplyDelta,
    ReplyDone,
    ReplyEvent,
    ReplyRetracted,
    ScrubbedMessage,
    Source,
    SuggestedQuestion,
    Turn,
)
from retrieval.chat_ready import generator_ready
from retrieval.claims import ASKS_FOR_DETAILS, CopyableReply, as_copied, copyable
from retrieval.confidence import retrieval_confidence
from retrieval.details_only import gives_details_only
from retrieval.person_request import asks_for_person
from retrieval.pii import mask_references, references_in
from retrieval.small_talk import pleasantry

log = logging.getLogger(__name__)

# C0/C1 control characters except tab and newline: they are invisible in every client and
# can break logs, terminals and the prompt format. Carriage returns become newlines first.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_WORD_PIECE = re.compile(r"\s*\S+\s*")


def clean_text(text: str, max_chars: int, *, what: str = "message") -> str:
    """``text`` without control characters and surrounding whitespace.

    Raises InvalidMessage when nothing is left or it is longer than ``max_chars``.
    """
    cleaned = _cleaned(text)
    if not _visible(cleaned):
        raise InvalidMessage(f"the {what} is empty")
    if len(cleaned) > max_chars:
        raise InvalidMessage(
            f"the {what} is {len(cleaned)} characters long; the limit is {max_chars}"
        )
    return cleaned


def _cleaned(text: str) -> str:
    return _CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def _visible(text: str) -> bool:
    """True when ``text`` has a character a reader can see.

    Format characters (category Cf: zero-width spaces and joiners, direction marks, the
    BOM) print nothing, and ``str.strip`` keeps them: a message made only of them reads as
    empty to the operator it would be flagged for.
    """
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


@dataclass
class _Draft:
    """The reply decided on, before it is stored."""

    text: str
    outcome: Outcome
    sources: tuple[Source, ...] = ()
    flags: list[tuple[FlagReason, str]] = field(default_factory=list)
    streamed: bool = False  # the text already went out as deltas
    asked_for_person: bool = False  # the customer asked for the hand-off

    @property
    def hands_off(self) -> bool:
        return self.outcome is Outcome.HANDOFF


class ConversationEngine:
    """Answers customer messages through the ports; safe to share between tasks.

    ``scrubber`` removes personal data from customer text before it is stored or
    searched, and names from operators' corrections (a plain function is applied to both).
    ``curator`` (usually the retriever's adapter) makes operator corrections searchable at
    once; without one, :meth:`correct` only records them. A correction never carries the
    corrected customer's order numbers or names to the next customers.
    ``generator_handoff_reply`` is the sentence the generator was trained to answer when
    its evidence backs no answer: a generated reply that is that sentence hands off.
    ``flag_gate`` may refuse flags beyond an adapter's caps; without one every flag is kept.
    ``question_finder`` offers the past questions a correction may answer too; without
    one :meth:`suggest_questions` offers none. ``handoff_policy`` says, for each message,
    how sure the engine must be to answer; without one, ``config`` says it. It retrieves
    ``retrieval_k`` answers (retrieval.top_k) and gives the generator the best
    ``evidence_k`` (generator.retrieved_k: as many as the model was trained to read).
    With ``keep_customer_details``, the e-mails, phone numbers and names scrubbed from a
    customer's own message are stored apart from it, for that conversation's operators.
    """

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator | None,
        store: ConversationStore,
        config: EngineConfig,
        scrubber: Scrubber | Callable[[str], str],
        *,
        curator: AnswerCurator | None = None,
        generator_handoff_reply: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
        flag_gate: FlagGate | None = None,
        question_finder: QuestionFinder | None = None,
        handoff_policy: HandoffPolicySource | None = None,
        retrieval_k: int = 5,
        evidence_k: int = 3,
        keep_customer_details: bool = False,
    ) -> None:
        if retrieval_k < 2:
            raise ValueError(f"retrieval_k ({retrieval_k}) must be two at least, for the margin")
        if not 0 <= evidence_k <= retrieval_k:
            raise ValueError(f"evidence_k ({evidence_k}) must be 0 to retrieval_k ({retrieval_k})")
        self.retrieval_k = retrieval_k
        self.evidence_k = evidence_k
        self.retriever = retriever
        self.generator = generator
        self.store = store
        self.config = config
        self.scrubber: Scrubber = _PlainScrubber(scrubber) if callable(scrubber) else scrubber
        self.curator = curator
        self._handoff_matcher = (
            HandoffTextMatcher(generator_handoff_reply) if generator_handoff_reply else None
        )
        self._clock = clock
        self._flag_gate = flag_gate
        self.question_finder = question_finder
        self._handoff_policy = handoff_policy
        self.keep_customer_details = keep_customer_details

    @property
    def generating(self) -> bool:
        """Whether a reply can be generated now (else the best retrieved answer is copied)."""
        generator = self.generator
        return generator is not None and (not isinstance(generator, Switchable) or generator.loaded)

    def handoff_policy(self) -> HandoffPolicy:
        """The hand-off policy the next message is judged by."""
        if self._handoff_policy is None:
            return HandoffPolicy.of(self.config)
        return self._handoff_policy.current()

    # -- conversations -----------------------------------------------------------------------
    async def start_conversation(
        self, channel: str, external_ref: str | None = None
    ) -> Conversation:
        """A new conversation, or the existing one for ``(channel, external_ref)``."""
        if not channel.strip():
            raise InvalidMessage("the channel is empty")
        return await self.store.create_conversation(channel, external_ref)

    async def conversation(self, conversation_id: str) -> Conversation:
        """The conversation, with its state: whether the bot or a person answers it now.
        Raises ConversationNotFound."""
        return await self.store.get_conversation(conversation_id)

    async def history(self, conversation_id: str) -> list[Turn]:
        """Every turn of the conversation, oldest first. Raises ConversationNotFound."""
        await self.store.get_conversation(conversation_id)
        return await self.store.list_turns(conversation_id)

    # -- customer messages -------------------------------------------------------------------
    async def reply(self, msg: IncomingMessage) -> Reply:
        """Handle a message without streaming; raises as :meth:`handle_message` does."""
        async for event in self.handle_message(msg):
            if isinstance(event, ReplyDone):
                return event.reply
        raise RuntimeError("handle_message ended without a reply")  # pragma: no cover

    async def handle_message(self, msg: IncomingMessage) -> AsyncGenerator[ReplyEvent, None]:
        """Answer a customer message as a stream of events ending with ``ReplyDone``.

        Errors come from the first iteration, before any event, so an adapter can await
        the first event before committing to a streaming response:

        * InvalidMessage (empty, too long) before anything is stored;
        * ConversationNotFound;
        * ConversationHandedOff when the conversation is with the team: the message is
          stored as a turn for the operator, and the bot does not answer (the error says
          whether an operator has taken it over yet).

        The ``ReplyDelta`` texts after the last ``ReplyRetracted`` join to the final
        reply's text, whatever the outcome. A consumer that stops early abandons the
        reply: the customer's turn is stored, the bot's is not.
        """
        started = self._clock()
        text = clean_text(msg.text, self.config.max_message_chars)
        conversation = await self.store.get_conversation(msg.conversation_id)
        message = await self.scrubber.scrub_message(text)
        scrubbed = message.text
        details = message.details if self.keep_customer_details else ()
        if conversation.state is ConversationState.HUMAN:
            taken_over = _operator_has_written(await self.store.list_turns(conversation.id))
            await self.store.add_turn(conversation.id, "customer", scrubbed, details=details)
            raise ConversationHandedOff(
                f"conversation {conversation.id} is with an operator; the bot does not answer",
                taken_over=taken_over,
                message_kept=True,
            )
        if conversation.state is ConversationState.CLOSED:
            # A customer writing again reopens the conversation rather than losing the message.
            await self.store.set_state(conversation.id, ConversationState.BOT)
        earlier = await self.store.list_turns(conversation.id)
        history = self._recent_history(earlier)
        # The bot or an operator has written already: a copied reply does not greet again.
        mid_conversation = any(t.role != "customer" for t in earlier)
        # Only after an answer is "ok I'll check the guide, thanks" a closing remark.
        answered = any(
            t.role != "customer" and t.outcome is not Outcome.SMALL_TALK for t in earlier
        )
        await self.store.add_turn(conversation.id, "customer", scrubbed, details=details)

        policy = self.handoff_policy()  # once: an operator may move it meanwhile
        set_phrases = self.config.answer_small_talk
        # "Can I talk to a human?" is the widget's button in words: searched like a question,
        # it was handed off as one the bot was unsure of.
        asked_for_person = set_phrases and asks_for_person(scrubbed)
        small_talk = (
            pleasantry(scrubbed, after_answer=answered)
            if set_phrases and not asked_for_person
            else None
        )
        # "it's JO-771204": searched, it matched any reply sharing a word, sure of itself.
        details_only = (
            set_phrases
            and not asked_for_person
            and small_talk is None
            and gives_details_only(scrubbed)
        )
        sources: tuple[Source, ...] = ()
        if asked_for_person or (details_only and answered):
            confidence = 0.0  # nothing was retrieved, as for the button
        elif small_talk is not None or details_only:
            # Nothing to look up and nothing to be unsure of: the set reply, sure (1.0).
            confidence = 1.0
        else:
            sources = await self._retrieve(history, scrubbed)
            confidence = retrieval_confidence(sources, policy.weights)
        draft: _Draft | None = None
        if asked_for_person:
            draft = self._requested_handoff()
        elif small_talk is not None:
            draft = _Draft(self.config.small_talk_reply(small_talk), Outcome.SMALL_TALK)
        elif details_only and answered:
            # Given for the question asked before (or for the person the bot's reply asked
            # them for): only a person can look the order up.
            draft = self._handoff(
                self.config.details_handoff_message, FlagReason.HANDOFF, CUSTOMER_DETAILS
            )
        elif details_only:
            # Nothing asked yet: ask what it is about rather than guess.
            draft = _Draft(self.config.details_reply, Outcome.SMALL_TALK)
        elif not sources:
            draft = self._handoff(
                self.config.empty_retrieval_message,
                FlagReason.LOW_CONFIDENCE,
                "retrieval found no answer",
            )
        elif confidence < policy.threshold:
            draft = self._handoff(
                self.config.low_confidence_message,
                FlagReason.LOW_CONFIDENCE,
                f"confidence {confidence:.3f} < {policy.threshold:.3f}; best: {_describe(sources)}",
            )
        elif (
            not self.generating
            or self.config.answer_mode == "copy"
            or (self.config.curated_verbatim and sources[0].kind == "curated")
        ):
            draft = self._copy(sources, mid_conversation=mid_conversation)
        else:
            async for event in self._generate(
                history, scrubbed, sources, confidence, policy, mid_conversation=mid_conversation
            ):
                if isinstance(event, _Draft):
                    draft = event
                else:
                    yield event
        assert draft is not None
        latency_ms = (self._clock() - started) * 1000.0
        reply = await self._store_reply(conversation, draft, confidence, latency_ms, policy)
        if not draft.streamed:
            # A copied answer or a hand-off notice is ready whole, but goes out a word at a
            # time like a generated one: a client shows every reply the same way.
            for piece in word_pieces(reply.text):
                yield ReplyDelta(piece)
        yield ReplyDone(reply)

    def _recent_history(self, turns: Sequence[Turn]) -> tuple[Message, ...]:
        limit = self.config.max_history_messages
        if limit == 0:
            return ()
        # Hand-off notices are boilerplate: they would only dilute the search and the prompt.
        messages = [Message(t.role, t.text) for t in turns if t.outcome is not Outcome.HANDOFF]
        return tuple(messages[-limit:])

    async def _retrieve(self, history: Sequence[Message], text: str) -> tuple[Source, ...]:
        try:
            found = await self.retriever.retrieve(history, text, self.retrieval_k)
        except Exception:
            # A broken index must not leave the customer without an answer: treated as
            # "nothing found", the conversation goes to a person.
            log.exception("retrieval failed; handing the conversation off")
            return ()
        return tuple(sorted(found, key=lambda s: s.score, reverse=True))

    def _handoff(self, text: str, reason: FlagReason, detail: str) -> _Draft:
        return _Draft(text, Outcome.HANDOFF, flags=[(reason, detail)])

    def _requested_handoff(self, detail: str = CUSTOMER_REQUEST) -> _Draft:
        """The hand-off the customer asked for, by a button or in words: one notice, one
        flag, whichever way they asked."""
        draft = self._handoff(self.config.handoff_message, FlagReason.HANDOFF, detail)
        draft.asked_for_person = True
        return draft

    def _copy(self, sources: Sequence[Source], *, mid_conversation: bool) -> _Draft:
        """The best answer copied as a chat reply, unless it tells of an action only a
        person can take."""
        best = sources[0]
        reply = self._as_copied(best, mid_conversation=mid_conversation)
        if reply.claimed_action is not None:
            return self._action_handoff("the best answer", reply, sources)
        return _Draft(reply.text, Outcome.COPIED, (best,))

    def _as_copied(self, source: Source, *, mid_conversation: bool) -> CopyableReply:
        """``source``'s answer as the bot sends it copied: a past agent's reply without
        what it says its agent would send and without its e-mail forms; an operator's
        correction as written (:func:`retrieval.claims.as_copied`, which calibrate's judge
        reads too)."""
        return as_copied(
            source.agent_reply,
            source.kind,
            mid_conversation=mid_conversation,
            withhold_claims=self.config.hand_off_claimed_actions,
        )

    def _sent_as(self, source: Source) -> list[str]:
        """Every text a turn that copied ``source`` may hold: as sent first in a
        conversation and later, and as logged (turns stored before replies were made
        chat-ready, and generated replies that say it word for word)."""
        sent = [self._as_copied(source, mid_conversation=later).text for later in (False, True)]
        return list(dict.fromkeys([source.agent_reply, *sent]))

    def _action_handoff(self, lead: str, reply: CopyableReply, sources: Sequence[Source]) -> _Draft:
        """A person takes over: the reply (``lead`` says which, copied or generated) claims
        an action only a person can take, or asks for details only a person would act on
        (the operator reads which in the flag)."""
        what = (
            "asks for details a person must act on"
            if reply.claim_kind == ASKS_FOR_DETAILS
            else "claims an action a person must take"
        )
        return self._handoff(
            self.config.action_handoff_message,
            FlagReason.HANDOFF,
            f'{lead} {what} ("{reply.claimed_action}"); best: {_describe(sources)}',
        )

    # -- generation --------------------------------------------------------------------------
    async def _generate(
        self,
        history: tuple[Message, ...],
        text: str,
        sources: tuple[Source, ...],
        confidence: float,
        policy: HandoffPolicy,
        *,
        mid_conversation: bool,
    ) -> AsyncIterator[ReplyDelta | ReplyRetracted | _Draft]:
        """Stream a grounded generated reply; the last item is the decided ``_Draft``."""
        assert self.generator is not None
        evidence = sources[: self.evidence_k]
        request = GenerationRequest(
            customer_text=text,
            history=history,
            evidence=evidence,
        )
        grounds = grounding_evidence(evidence, history, text)
        check = StreamingGroundingCheck(
            grounds.business_texts,
            customer_references=grounds.customer_references,
            holdback_words=self.config.stream_holdback_words,
        )
        failure: str | None = None
        step = GroundingStep()
        matcher = self._handoff_matcher
        # Checked text is held back while it could still be the generator's hand-off
        # sentence, so the customer does not see the start of a "reply" that is none.
        holding = matcher is not None
        shown = False  # some text went out as deltas
        handed_off = False
        stream: AsyncIterator[str] | None = None
        try:
            stream = self.generator.stream(request)
        except Exception as exc:  # a generator may refuse before yielding anything
            failure = f"{type(exc).__name__}: {exc}"
        try:
            ended = stream is None
            while not ended:
                assert stream is not None
                try:
                    async with asyncio.timeout(self.config.generation_timeout_s):
                        piece = await anext(stream)
                except StopAsyncIteration:
                    ended = True
                    step = check.finish()
                except Exception as exc:  # ModelUnavailable, TimeoutError, model bugs
                    failure = f"{type(exc).__name__}: {exc}"
                    break
                else:
                    step = check.feed(piece)
                if not step.grounded:
                    break
                if not step.text:
                    continue
                if holding:
                    assert matcher is not None
                    if matcher.found_in(check.text):
                        handed_off = True  # stop the model: the rest is the same sentence
                        break
                    if matcher.could_become(check.text):
                        continue
                    holding = False
                    yield ReplyDelta(check.text)  # everything held so far
                else:
                    yield ReplyDelta(step.text)
                shown = True
        finally:
            # Stops the model at once when the reply is abandoned or failed the check.
            await _close(stream)

        if failure is None and step.grounded and not check.text:
            failure = "the generator returned an empty reply"
        if failure is not None:
            log.warning("generation failed (%s); copying the best retrieved answer", failure)
            if shown:
                yield ReplyRetracted(reason=None)
            yield self._copy(sources, mid_conversation=mid_conversation)
            return
        if not step.grounded:
            facts = ", ".join(sorted(step.unsupported))
            log.info("generated reply not grounded (unsupported: %s); falling back", facts)
            if shown:
                yield ReplyRetracted(FlagReason.GROUNDING_FALLBACK)
            if confidence >= policy.copy_threshold:
                draft = self._copy(sources, mid_conversation=mid_conversation)
            else:
                draft = _Draft(self.config.low_confidence_message, Outcome.HANDOFF)
            draft.flags.append((FlagReason.GROUNDING_FALLBACK, f"unsupported facts: {facts}"))
            yield draft
            return
        if matcher is not None and not handed_off:
            # Ended while still possibly the sentence (cut short), or said it after a preamble.
            handed_off = (holding and matcher.mostly_matches(check.text)) or matcher.found_in(
                check.text
            )
        if handed_off:
            log.info("the generator handed off; the conversation goes to a person")
            if shown:
                yield ReplyRetracted(FlagReason.LOW_CONFIDENCE)
            yield self._handoff(
                self.config.low_confidence_message,
                FlagReason.LOW_CONFIDENCE,
                f"the generator handed off (its evidence backs no answer); best: "
                f"{_describe(sources)}",
            )
            return
        text = check.text
        if self.config.hand_off_claimed_actions:
            # A model trained on agents' replies writes their "I've cancelled it for you" too.
            reply = copyable(text)
            if reply.claimed_action is not None:
                log.info("the generated reply claims an action; the conversation goes to a person")
                if shown:
                    yield ReplyRetracted(FlagReason.HANDOFF)
                yield self._action_handoff("the generated reply", reply, sources)
                return
            text = reply.text
        # The form the generator is trained to write (finetune.examples.reply_target): what
        # it still writes of the logs' letter forms, an adapter trained before they were
        # left out of its targets above all, is not sent ("Hi [NAME],", "All the best,").
        text = generator_ready(text, mid_conversation=mid_conversation)
        if text != check.text.strip():
            if shown:
                yield ReplyRetracted(reason=None)
            yield _Draft(text, Outcome.GENERATED, evidence)
            return
        if holding and check.text:  # a short reply that only began like the sentence
            yield ReplyDelta(check.text)
        yield _Draft(check.text, Outcome.GENERATED, evidence, streamed=True)

    # -- storing replies ---------------------------------------------------------------------
    async def _store_reply(
        self,
        conversation: Conversation,
        draft: _Draft,
        confidence: float,
        latency_ms: float,
        policy: HandoffPolicy,
    ) -> Reply:
        turn = await self.store.add_turn(
            conversation.id,
            "bot",
            draft.text,
            outcome=draft.outcome,
            confidence=confidence,
            sources=draft.sources,
            latency_ms=latency_ms,
            index_version=(
                None if draft.outcome is Outcome.SMALL_TALK else _version_of(self.retriever)
            ),
            model_version=(
                _version_of(self.generator) if draft.outcome is Outcome.GENERATED else None
            ),
        )
        certainty = (
            None
            if draft.hands_off or draft.outcome is Outcome.SMALL_TALK
            else certainty_of(confidence, policy.threshold)
        )
        if certainty == "low" and self.config.review_unsure_replies and not draft.flags:
            # The customer was told a person can check: without a flag no operator would
            # see the reply unless the customer thumbed it down. A curated answer sent at
            # low certainty is flagged too: it may not answer this question. A grounding
            # fallback is in the queue already, under its own reason.
            draft.flags.append(
                (
                    FlagReason.UNSURE,
                    f"confidence {confidence:.3f}, hand-off threshold {policy.threshold:.3f};"
                    f" best: {_describe(draft.sources)}",
                )
            )
        for reason, detail in draft.flags:
            await self._flag(turn.id, reason, detail)
        if draft.hands_off:
            await self.store.set_state(conversation.id, ConversationState.HUMAN)
        return Reply(
            turn_id=turn.id,
            conversation_id=conversation.id,
            text=draft.text,
            outcome=draft.outcome,
            confidence=confidence,
            sources=draft.sources,
            flags=tuple(reason for reason, _ in draft.flags),
            certainty=certainty,
            asked_for_person=draft.asked_for_person,
        )

    # -- ratings, hand-offs, operators ---------------------------------------------------------
    async def rate(self, rating: Rating) -> None:
        """Store a customer's rating of a bot reply (a second one replaces the first).

        A "down" rating puts the turn in the review queue: NOT_HELPFUL from Slack (its
        button says so), THUMBS_DOWN from elsewhere. Raises TurnNotFound, and
        InvalidMessage for an unknown value, a turn that is not the bot's or an oversized
        comment.
        """
        if rating.value not in ("up", "down"):
            raise InvalidMessage(f"a rating is 'up' or 'down', not {rating.value!r}")
        turn = await self.store.get_turn(rating.turn_id)
        if turn.role != "bot":
            raise InvalidMessage("only the bot's replies can be rated")
        comment = None
        # A comment with nothing to read (spaces, control characters) is no comment: the
        # rating stands. Only .strip() was asked, so "\x8c" was refused with the rating.
        if rating.comment is not None and _visible(_cleaned(rating.comment)):
            comment = await self.scrubber.scrub(
                clean_text(rating.comment, self.config.max_message_chars, what="comment")
            )
        await self.store.add_rating(replace(rating, comment=comment))
        if rating.value == "down":
            reason = FlagReason.NOT_HELPFUL if rating.channel == "slack" else FlagReason.THUMBS_DOWN
            await self._flag(turn.id, reason, comment or "")

    async def _flag(self, turn_id: str, reason: FlagReason, detail: str) -> None:
        """Put the turn in the review queue unless the flag gate refuses one more flag."""
        if self._flag_gate is None or await self._flag_gate.admit(reason):
            await self.store.add_flag(turn_id, reason, detail)

    async def request_handoff(self, conversation_id: str, reason: str = CUSTOMER_REQUEST) -> Reply:
        """Hand the conversation to a person at the customer's request (a button; asked in
        words, :meth:`handle_message` does the same).

        Stores the polite hand-off message as a bot turn (confidence 0: nothing was
        retrieved) and flags it HANDOFF with ``reason`` as its detail. Raises
        ConversationNotFound, and ConversationHandedOff when an operator already has it.
        """
        conversation = await self.store.get_conversation(conversation_id)
        if conversation.state is ConversationState.HUMAN:
            raise ConversationHandedOff(
                f"conversation {conversation_id} is already with an operator",
                taken_over=_operator_has_written(await self.store.list_turns(conversation_id)),
                message_kept=False,
            )
        draft = self._requested_handoff(reason)
        return await self._store_reply(conversation, draft, 0.0, 0.0, self.handoff_policy())

    async def hand_back(self, conversation_id: str) -> None:
        """An operator gives the conversation back to the bot. Raises ConversationNotFound."""
        await self.store.get_conversation(conversation_id)
        await self.store.set_state(conversation_id, ConversationState.BOT)

    async def add_agent_turn(self, conversation_id: str, text: str) -> Turn:
        """Store an operator's message; an operator writing takes the conversation over, so
        the bot stays quiet until :meth:`hand_back`.

        Operator text is not scrubbed: it may rightly hold the shop's own phone number or
        address. Raises ConversationNotFound, InvalidMessage.
        """
        cleaned = clean_text(text, self.config.max_message_chars)
        conversation = await self.store.get_conversation(conversation_id)
        turn = await self.store.add_turn(conversation_id, "agent", cleaned)
        if conversation.state is not ConversationState.HUMAN:
            await self.store.set_state(conversation_id, ConversationState.HUMAN)
        return turn

    async def correct(
        self,
        turn_id: str,
        answer: str,
        *,
        created_by: str,
        question: str | None = None,
        also_questions: Sequence[str] = (),
    ) -> Correction:
        """Record an operator's better answer to a bot turn and serve it from now on.

        ``question`` defaults to the customer message the turn answered. The correction is
        handed to the curator (retrieval prefers curated answers over the logs) and the
        turn's open flags are resolved as CORRECTED, except a hand-off's: they stand for a
        customer waiting for a person, whom the correction does not reach (it answers the
        next customers), so they stay open until the hand-off is resolved. ``also_questions``
        are attached to it at once (see :meth:`attach_questions`). Raises TurnNotFound,
        InvalidMessage (QuestionTaken included, before anything is stored).
        """
        turn = await self.store.get_turn(turn_id)
        if turn.role != "bot":
            raise InvalidMessage("only the bot's replies can be corrected")
        answer = clean_text(answer, self.config.max_message_chars, what="answer")
        context: tuple[Message, ...] = ()
        if question is None:
            question, context = await self._question_answered_by(turn)
        question = await self.scrubber.scrub(
            clean_text(question, self.config.max_message_chars, what="question")
        )
        # The correction answers the next customers: nothing of this customer may go with it.
        references = await self._customer_references(turn.conversation_id)
        answer = mask_references(await self.scrubber.scrub_names(answer), references)
        question = mask_references(question, references)
        context = tuple(Message(m.role, mask_references(m.text, references)) for m in context)
        also = await self._attachable(also_questions, answer, exclude_id=None)
        correction = await self.store.add_correction(
            question, answer, created_by=created_by, turn_id=turn_id
        )
        if self.curator is None:
            log.warning(
                "no curator configured: correction %s is stored but not served", correction.id
            )
        else:
            await self.curator.add_curated(correction.source_id, question, answer, context)
        if also:
            await self._attach(correction, also, created_by)
        if turn.outcome is not Outcome.HANDOFF:
            await self.store.resolve_turn_flags(turn_id, FlagStatus.CORRECTED, created_by)
        return correction

    async def edit_correction(
        self,
        correction_id: int,
        answer: str,
        *,
        edited_by: str,
        question: str | None = None,
    ) -> Correction:
        """Replace a correction's answer (and its question, when given) and serve the new
        text from now on, in place of the old: still one curated answer.

        Raises CorrectionNotFound, InvalidMessage (also when it was withdrawn).
        """
        current = await self.store.get_correction(correction_id)
        if current.withdrawn:
            raise InvalidMessage("the correction was withdrawn; make a new one instead")
        answer = await self.scrubber.scrub_names(
            clean_text(answer, self.config.max_message_chars, what="answer")
        )
        if question is not None:
            question = await self.scrubber.scrub(
                clean_text(question, self.config.max_message_chars, what="question")
            )
        question = question or current.question
        context = await self._context_of(current, question)
        if current.turn_id is not None:
            try:
                turn = await self.store.get_turn(current.turn_id)
                references = await self._customer_references(turn.conversation_id)
            except TurnNotFound:
                references = set()
            answer = mask_references(answer, references)
            question = mask_references(question, references)
        correction = await self.store.edit_correction(
            correction_id, question, answer, edited_by=edited_by
        )
        if self.curator is not None:  # the same source ids: the old entries are replaced
            await self.curator.add_curated(correction.source_id, question, answer, context)
            attached = await self.store.attached_questions(correction_id)
            for item in attached:
                await self.curator.add_curated(item.source_id, item.question, answer)
            # A withdrawal that ran between the store's edit and this must still win.
            if (await self.store.get_correction(correction_id)).withdrawn:
                for source_id in [correction.source_id, *(a.source_id for a in attached)]:
                    await self.curator.remove_curated(source_id)
        return correction

    async def withdraw_correction(self, correction_id: int, *, withdrawn_by: str) -> Correction:
        """Stop serving a correction and stop learning from it: retrieval drops its curated
        answer at once, and the retraining jobs no longer read it. The record stays, marked
        withdrawn, for the review log. Withdrawing again changes nothing.

        Raises CorrectionNotFound.
        """
        correction = await self.store.get_correction(correction_id)
        # Retrieval first: if that fails the operator sees an error and tries again, and
        # meanwhile nothing claims the answer is gone while customers still get it.
        if self.curator is not None:
            await self.curator.remove_curated(correction.source_id)
            for item in await self.store.attached_questions(correction_id):
                await self.curator.remove_curated(item.source_id)
        return await self.store.withdraw_correction(correction_id, withdrawn_by=withdrawn_by)

    # -- one correction for a topic ----------------------------------------------------------
    async def suggest_questions(
        self, correction_id: int, limit: int = 20
    ) -> list[SuggestedQuestion]:
        """Past customer messages that may ask what the correction answers, best first:
        logged questions near its question or near the questions the corrected reply was
        retrieved for, and customers' messages the bot answered with that reply or with
        another answer the corrected question retrieved. Those already attached are left
        out. Texts are as stored (scrubbed); they are for operators, never for customers.
        Raises CorrectionNotFound."""
        correction = await self.store.get_correction(correction_id)
        if self.question_finder is None or correction.withdrawn:
            return []
        queries = [correction.question]
        wrong_answer: str | None = None
        live: list[str] = []
        otherwise: list[str] = []
        if correction.turn_id is not None:
            try:
                turn = await self.store.get_turn(correction.turn_id)
            except TurnNotFound:
                turn = None
            if turn is not None and turn.outcome is not Outcome.HANDOFF:
                wrong_answer, sent = turn.text, [turn.text]
                if turn.outcome is Outcome.COPIED and turn.sources:
                    # Sent chat-ready (first in a conversation or later), held as logged.
                    wrong_answer = turn.sources[0].agent_reply
                    sent = self._sent_as(turn.sources[0])
                # The questions the wrong answer was given for in the logs: their
                # neighbours are the customers who get it too.
                gave = [s for s in turn.sources if s.agent_reply == wrong_answer] or [
                    *turn.sources[:1]
                ]
                queries += [s.customer_text for s in gave if s.customer_text]
                for text in sent:
                    live += await self.store.questions_answered_with(text, 4 * limit)
            elif turn is not None:
                # A hand-off corrected: a topic the logs lack, whose other customers were
                # handed off too, with the same words. Offered for how close they ask, never
                # as having got the corrected reply (an outside tester found them missing).
                otherwise += await self.store.questions_answered_with(turn.text, 4 * limit)
        # Customers of the same topic got whichever of the answers it is confused with came
        # first for their wording, not always the one corrected (on Banking77 most of a
        # missing topic's customers got other answers): the answers the corrected question
        # retrieves now, the correction's own aside.
        for found_now in await self._retrieve((), correction.question):
            other = found_now.agent_reply
            if other not in (wrong_answer, correction.answer):
                for text in self._sent_as(found_now):
                    otherwise += await self.store.questions_answered_with(text, 2 * limit)
        attached = {a.question for a in await self.store.attached_questions(correction_id)}
        found = await self.question_finder.similar_questions(
            list(dict.fromkeys(queries)),
            wrong_answer,
            list(dict.fromkeys(live)),
            limit * 2,
            corrected_answer=correction.answer,
            answered_otherwise=list(dict.fromkeys(otherwise)),
        )
        return [q for q in found if q.text not in attached][:limit]

    async def attach_questions(
        self, correction_id: int, questions: Sequence[str], *, attached_by: str
    ) -> list[AttachedQuestion]:
        """Serve the correction's answer for ``questions`` too, each as one more curated
        entry (``correction:<id>:<n>``), edited and withdrawn with the correction; return
        the newly attached (one already attached is skipped).

        A question answers one thing: one that another correction not withdrawn already
        asks with a different answer is refused, all of them with it (QuestionTaken names
        which and where; withdraw or edit that one first). Raises CorrectionNotFound,
        InvalidMessage (the correction is withdrawn, a question is empty or too long).
        """
        correction = await self.store.get_correction(correction_id)
        if correction.withdrawn:
            raise InvalidMessage("the correction was withdrawn; make a new one instead")
        cleaned = await self._attachable(questions, correction.answer, exclude_id=correction_id)
        return await self._attach(correction, cleaned, attached_by)

    async def _attachable(
        self, questions: Sequence[str], answer: str, *, exclude_id: int | None
    ) -> list[str]:
        """``questions`` cleaned and scrubbed as stored; raises QuestionTaken for one that
        a correction other than ``exclude_id`` answers differently."""
        cleaned: list[str] = []
        for text in questions:
            question = await self.scrubber.scrub(
                clean_text(text, self.config.max_message_chars, what="question")
            )
            for other in await self.store.corrections_asking(question):
                if other.id != exclude_id and other.answer != answer:
                    raise QuestionTaken(question, other.id, other.source_id)
            cleaned.append(question)
        return list(dict.fromkeys(cleaned))

    async def _attach(
        self, correction: Correction, questions: Sequence[str], attached_by: str
    ) -> list[AttachedQuestion]:
        added = await self.store.attach_questions(correction.id, questions, attached_by=attached_by)
        if self.curator is not None:
            for item in added:
                await self.curator.add_curated(item.source_id, item.question, correction.answer)
        return added

    async def list_corrections(self, limit: int = 100, offset: int = 0) -> list[Correction]:
        """Corrections newest first, withdrawn ones included."""
        return await self.store.list_corrections(limit, offset)

    async def _context_of(self, correction: Correction, question: str) -> tuple[Message, ...]:
        """The conversation before the question, as :meth:`correct` searched it: only
        when the question is still the customer's own message of the corrected turn."""
        if correction.turn_id is None:
            return ()
        try:
            turn = await self.store.get_turn(correction.turn_id)
            asked, context = await self._question_answered_by(turn)
        except (TurnNotFound, InvalidMessage):
            return ()
        # correct() stored the turn's text cleaned and scrubbed: compare it the same way.
        references = await self._customer_references(turn.conversation_id)
        if mask_references(await self.scrubber.scrub(asked.strip()), references) != question:
            return ()
        return tuple(Message(m.role, mask_references(m.text, references)) for m in context)

    async def _customer_references(self, conversation_id: str) -> set[str]:
        """The order, ticket and account numbers the customer wrote in the conversation."""
        turns = await self.store.list_turns(conversation_id)
        return references_in(t.text for t in turns if t.role == "customer")

    async def _question_answered_by(self, turn: Turn) -> tuple[str, tuple[Message, ...]]:
        """The customer message a bot turn answered, and the history before that message."""
        turns = await self.store.list_turns(turn.conversation_id)
        earlier = [
            t for t in turns[: _index_of(turns, turn.id)] if t.outcome is not Outcome.HANDOFF
        ]
        asked = [i for i, t in enumerate(earlier) if t.role == "customer"]
        if not asked:
            raise InvalidMessage("the turn answers no customer message; give the question")
        limit = self.config.max_history_messages
        context = [Message(t.role, t.text) for t in earlier[: asked[-1]]]
        return earlier[asked[-1]].text, tuple(context[-limit:] if limit else ())


class _PlainScrubber:
    """A plain function as the :class:`Scrubber` port (tests, scrubbing turned off)."""

    def __init__(self, scrub: Callable[[str], str]) -> None:
        self._scrub = scrub

    async def scrub(self, text: str) -> str:
        return self._scrub(text)

    async def scrub_names(self, text: str) -> str:
        return self._scrub(text)

    async def scrub_message(self, text: str) -> ScrubbedMessage:
        return ScrubbedMessage(self._scrub(text))  # what it took out is not known


def word_pieces(text: str) -> list[str]:
    """``text`` cut after each word's trailing whitespace; the pieces join to ``text``."""
    return _WORD_PIECE.findall(text) or [text]


def _describe(sources: Sequence[Source]) -> str:
    return ", ".join(f"{s.source_id} ({s.score:.3f})" for s in sources[:3])


def _index_of(turns: Sequence[Turn], turn_id: str) -> int:
    return next(i for i, t in enumerate(turns) if t.id == turn_id)


def _operator_has_written(turns: Sequence[Turn]) -> bool:
    """Whether an operator has written since the bot last spoke: the hand-off (or the last
    answer before an operator stepped in) is the bot's last turn, so an operator's turn
    after it means a person has taken the conversation over, not only been asked to."""
    for turn in reversed(turns):
        if turn.role == "agent":
            return True
        if turn.role == "bot":
            return False
    return False


def _version_of(component: object) -> str | None:
    return component.version if isinstance(component, Versioned) else None


async def _close(stream: AsyncIterator[str] | None) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        log.exception("closing the generator stream failed")
