"""Settings of the conversation engine (``Settings.engine``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from retrieval.confidence import ConfidenceWeights
from retrieval.config import recipe
from retrieval.small_talk import Pleasantry

# Engine settings that had a twin in another section, and where they live now: the
# generator reads as many past exchanges, and writes as many tokens, as it was trained
# with; the engine retrieves as many answers as retrieval's own searches do.
_MERGED = {
    "retrieval_k": "retrieval.top_k (answers retrieved; two at least, for the margin)",
    "evidence_k": "generator.retrieved_k (past exchanges in the model's prompt)",
    "max_new_tokens": "generator.max_new_tokens",
}


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Confidence = sigmoid(bias + score_weight*top score + margin_weight*margin
    #                      + support_weight*ln(support) + vote_share_weight*vote share
    #                      + answer_probability_weight*answer probability
    #                      + question_typicality_weight*question typicality
    #                      + verifier_probability_weight*verifier probability);
    # see retrieval.confidence.
    # Defaults from `calibrate()` on data/sample with all-MiniLM-L6-v2 (203 in-scope turns
    # of eval.jsonl, 42 questions of out_of_scope.jsonl). The fitted threshold is 0.215 for
    # 95% hand-off recall and 0.322 for 100%; 0.25 sits between (97.6% there). Recalibrate
    # for another embedder or corpus: the scores move with both.
    confidence_threshold: float = Field(
        0.25, ge=0.0, le=1.0, description="Below this confidence the bot hands off."
    )
    confidence_bias: float = recipe(
        -8.58,
        description="Confidence: the constant term of the weighted sum.",
    )
    score_weight: float = recipe(
        12.17,
        ge=0.0,
        description="Confidence: weight of the best answer's similarity score.",
    )
    margin_weight: float = recipe(
        8.27,
        ge=0.0,
        description="Confidence: weight of the margin to the next different answer.",
    )
    support_weight: float = recipe(
        0.19,
        ge=0.0,
        description="Confidence: weight of ln(past exchanges that gave the top answer).",
    )
    # 0 until `supportbot calibrate` or `train` fits it: the defaults above were fitted
    # without the vote share.
    vote_share_weight: float = recipe(
        0.0,
        ge=0.0,
        description="Confidence: weight of the top answer's share of the nearest hits' vote.",
    )
    # 0 until calibration fits it, like the vote share's.
    answer_probability_weight: float = recipe(
        0.0,
        ge=0.0,
        description="Confidence: weight of the answer classifier's probability for the top answer.",
    )
    question_typicality_weight: float = recipe(
        0.0,
        ge=0.0,
        description="Confidence: weight of how typical the question is of the known answers'"
        " questions.",
    )
    verifier_probability_weight: float = recipe(
        0.0,
        ge=0.0,
        description="Confidence: weight of the reply verifier's probability that the top"
        " answer answers the message.",
    )
    copy_threshold: float | None = recipe(
        None,
        ge=0.0,
        le=1.0,
        description=(
            "Minimum confidence to copy the best answer when a generated reply fails the"
            " grounding check (below it the bot hands off); unset: confidence_threshold."
        ),
    )

    answer_mode: Literal["auto", "generate", "copy"] = Field(
        "auto",
        description=(
            "'auto' generates with an adapter only when its recorded evaluation is not worse"
            " than copying the best retrieved answer (within auto_tolerance), and copies"
            " otherwise; 'generate' always generates with the live model; 'copy' always"
            " sends the best retrieved answer as it is."
        ),
    )
    auto_tolerance: float = recipe(
        0.05,
        ge=0.0,
        le=1.0,
        description="How far below the copy baseline an adapter may evaluate and still be"
        " served in 'auto' mode (ROUGE-L and facts share).",
    )
    hand_off_claimed_actions: bool = recipe(
        True,
        description=(
            "A copied past reply that says its agent acted on the order or account (\"I've"
            ' cancelled it for you") or asks the customer for details for them to act on'
            ' ("Could you send me the order number?") goes to a person instead, who can do'
            " it; a promise to send a link or an article becomes the references it names"
            " (retrieval.claims)."
        ),
        # A safeguard few will switch off: the one-page reference keeps the everyday ones.
    )
    curated_verbatim: bool = Field(
        True,
        description="When the best answer is an operator's correction, send it as it is"
        " instead of generating: the operator already wrote the right reply.",
    )
    review_unsure_replies: bool = recipe(
        True,
        description="Put a reply the bot sent with 'low' certainty (shown to the customer as"
        " not completely sure) in the operators' review queue as 'Sent, not sure', after"
        " the hand-offs, so an operator can approve or correct it.",
        # On by default and rarely switched off: the one-page reference keeps the everyday ones.
    )
    max_history_messages: int = recipe(
        6,
        ge=0,
        le=50,
        description="Earlier messages passed to retrieval and generation.",
    )
    max_message_chars: int = Field(
        2000,
        ge=1,
        le=100_000,
        description="Longest customer message accepted, in characters; a longer one is refused.",
    )
    generation_timeout_s: float = recipe(
        30.0,
        gt=0.0,
        description="Longest wait for the next generated piece before copying.",
    )
    stream_holdback_words: int = recipe(
        0,
        ge=0,
        le=20,
        description=(
            "Complete words held back (besides the incomplete one) before streaming, for"
            " facts that span several words."
        ),
    )

    handoff_message: str = Field(
        "Of course. I've asked a member of our support team to take over; they'll reply"
        " here as soon as they can.",
        min_length=1,
        description="Sent when the customer asks for a person (the button, or in words).",
    )
    low_confidence_message: str = Field(
        "I'm not sure I have the right answer to that, so I've passed your question to a"
        " member of our support team. They'll reply here as soon as they can.",
        min_length=1,
        description="Sent when the bot is not sure enough of an answer and hands off.",
    )
    action_handoff_message: str = Field(
        "That needs a member of our support team to do it for you, so I've passed your"
        " conversation to them. They'll reply here as soon as they can.",
        min_length=1,
        description=(
            "Sent when the best answer is an action only a person can take (see"
            " engine.hand_off_claimed_actions)."
        ),
    )
    empty_retrieval_message: str = Field(
        "I don't have an answer to that yet, so I've passed your question to a member of"
        " our support team. They'll reply here as soon as they can.",
        min_length=1,
        description="Sent when nothing in the knowledge base comes near the question and the"
        " bot hands off.",
    )

    answer_small_talk: bool = Field(
        True,
        description="Answer a message that is only a greeting, thanks, an acknowledgement or a"
        ' goodbye ("thanks!", "hi", "ok, bye"), or after an answer a closing remark ("ok I'
        ' will check the guide, thanks") with the reply below instead of searching the logs'
        " for it and handing it to a person; and hand a message that asks for a person"
        ' ("can I talk to a human?", "agent") to one as the "Talk to a human" button does,'
        " with handoff_message; and answer a message that only gives an order number, e-mail"
        ' or phone number ("it\'s JO-771204") with details_reply, or after a question hand it'
        " off with details_handoff_message.",
    )
    greeting_reply: str = Field(
        "Hi! How can I help you today?",
        min_length=1,
        description='The answer to a message that only greets ("hi", "good morning").',
    )
    wellbeing_reply: str = Field(
        "I'm doing well, thanks for asking! How can I help you today?",
        min_length=1,
        description='The answer to a message that only asks how the bot is ("how are you'
        ' today?", "hi, how\'s it going?").',
    )
    thanks_reply: str = Field(
        "You're welcome! Is there anything else I can help you with?",
        min_length=1,
        description='The answer to a message that only thanks ("thanks!", "thank you so much").',
    )
    acknowledgement_reply: str = Field(
        "Is there anything else I can help you with?",
        min_length=1,
        description='The answer to a message that only acknowledges ("ok", "got it").',
    )
    goodbye_reply: str = Field(
        "Thanks for getting in touch. Have a great day!",
        min_length=1,
        description='The answer to a message that only says goodbye ("bye", "that\'s all").',
    )
    identity_reply: str = Field(
        "I'm a virtual assistant: I answer from our support team's past answers, and when I'm"
        " not sure I pass your question to a person on the team. Ask for one any time. How can"
        " I help?",
        min_length=1,
        description='The answer to a message that only asks what it is talking to ("are you a'
        ' bot?", "am I talking to a human?").',
    )

    # Recipes, not for want of use: the everyday settings page is full, and these two are
    # rarely changed once the small-talk replies read right.
    details_reply: str = recipe(
        "Thanks! What would you like help with about that?",
        min_length=1,
        description="The answer to a message that only gives an order number, an e-mail"
        ' or a phone number ("it\'s JO-771204", "my email is ..."), when nothing was asked'
        " before (with answer_small_talk).",
    )
    details_handoff_message: str = recipe(
        "Thanks. A member of our support team needs those details to help you, so I've"
        " passed your conversation to them. They'll reply here as soon as they can.",
        min_length=1,
        description="Sent when, after asking something, the customer writes only an order"
        " number, an e-mail or a phone number: the bot hands off, as it cannot use them"
        " (with answer_small_talk).",
    )

    @model_validator(mode="before")
    @classmethod
    def _merged_twins(cls, data: Any) -> Any:
        """Settings that had a twin elsewhere now live only there: say where."""
        if isinstance(data, dict):
            for old, new in _MERGED.items():
                if old in data:
                    raise ValueError(f"engine.{old} was merged into {new}; set that instead")
        return data

    @property
    def confidence_weights(self) -> ConfidenceWeights:
        return ConfidenceWeights(
            bias=self.confidence_bias,
            score=self.score_weight,
            margin=self.margin_weight,
            support=self.support_weight,
            vote_share=self.vote_share_weight,
            answer_probability=self.answer_probability_weight,
            question_typicality=self.question_typicality_weight,
            verifier_probability=self.verifier_probability_weight,
        )

    def small_talk_reply(self, kind: Pleasantry) -> str:
        return {
            Pleasantry.GREETING: self.greeting_reply,
            Pleasantry.WELLBEING: self.wellbeing_reply,
            Pleasantry.THANKS: self.thanks_reply,
            Pleasantry.ACKNOWLEDGEMENT: self.acknowledgement_reply,
            Pleasantry.GOODBYE: self.goodbye_reply,
            Pleasantry.IDENTITY: self.identity_reply,
        }[kind]

    @property
    def effective_copy_threshold(self) -> float:
        if self.copy_threshold is None:
            return self.confidence_threshold
        return self.copy_threshold


@dataclass(frozen=True)
class HandoffPolicy:
    """How the engine decides whether to answer a message at all.

    ``weights`` turn the retrieval signals into a confidence; below ``threshold`` the
    conversation goes to a person; a generated reply that fails the grounding check is
    replaced by the best retrieved answer only from ``copy_threshold`` up.
    """

    threshold: float
    weights: ConfidenceWeights
    copy_threshold: float

    @classmethod
    def of(cls, config: EngineConfig) -> HandoffPolicy:
        """The policy ``config`` sets; its copy threshold follows the hand-off threshold
        unless ``copy_threshold`` is set."""
        return cls(
            config.confidence_threshold,
            config.confidence_weights,
            config.effective_copy_threshold,
        )
