"""Which words of a question say what is asked, learned from the logs, and how much of a
customer's message a past question shares in those words.

A sentence embedding weighs every word of a short question, and a product's name is often
the most striking one: "How long do I have to return a rain jacket?" lies nearest to "How
should I wash my Stormline Rain Jacket?" and gets the washing answer. The logs say which
words matter: the past questions that contain "restock" were all answered alike, those that
contain "jacket" were answered with anything (returns, washing, restocks, warranty). A
word's *agreement* is the mean similarity (TF-IDF cosine) between the replies to the past
questions containing it, shrunk towards the agreement of replies at random for a word seen
in few questions; its weight is how far that agreement exceeds twice the random one
(product names, "the", "my": 0). No list of product names: the weights come from what the
agents answered, so they follow any corpus.

Ranking adds ``intent_words_weight`` times :meth:`IntentWords.match` (the share of the
message's intent weight that a past question shares) to each hit's similarity to order the
hits and answers (retrieval.ranking, where the scores go out less the largest gain).
Measured with ``python benchmarks/intent_words_sample.py --home`` on a ``make run`` home
(the sample's logs, FAQ and Slack export; top answer's topic, first turns of
data/sample/eval.jsonl and benchmarks/data/intent_probes.jsonl) and on Banking77's full
test set (top-1, 10,003 train questions):

    weight   sample eval   probes   Banking77
    0        75 of 98      11 of 18   0.9075
    0.1      85            14         0.9130
    0.15     87            14         0.9120
    0.2      89            15         0.9091
    0.3      89            15         0.9068

0.2 is where the sample stops gaining, still a little above 0 on Banking77. Over the
sample's logs alone (the benchmark without ``--home``): 77 -> 90 of 98 and 10 -> 13 of 18.
A floor of twice the random agreement did better than once (87 of 98 at 0.3) or three
times (80).

Words are matched as written. Word forms and word pairs were tried for issue 19 (a
tester's "send back", "shipping it back", "repairs", "charged twice"), at 0.2, in the
order make-run home / sample logs alone (eval of 98 + probes of 22) / Banking77 (top-1):

    exact words (kept)                  89+16 / 90+14 / 0.9091
    suffixes stripped                   88+16 / 89+13 / 0.9114
    words and their stripped forms      89+16 / 90+14 / 0.9104 (the same answers)
    the same and adjacent pairs         89+17 / 89+14 / 0.9120 (8 of the 120 moved)

None is worth its code: the sample moves by a question either way and Banking77 by less
than 0.3 points. The wordings that still miss use other words than the logs for the same
thing ("send it back" is asked in the logs about wrong items, returns say "return"), which
no word form or pair joins; pairs of common words seen a few times ("and it", "how many")
get large weights from one templated family of questions.

Fitted from the entries' texts when an index version is served or published: a few sparse
matrix products, no model (2.6 s for Banking77's 10,003 questions on a busy core).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# A word seen in n questions counts as n questions at its own agreement and this many at
# the random agreement: one or two questions that happen to share a reply prove little.
_SHRINK_QUESTIONS = 3.0
# The agreement a word must pass, as a multiple of the random agreement (see above).
_FLOOR_FACTOR = 2.0


def words_of(text: str) -> frozenset[str]:
    """The distinct lower-cased words of ``text``."""
    return frozenset(_WORD.findall(text.casefold()))


@dataclass(frozen=True)
class IntentWords:
    """Each known word's weight (0 or more); words never seen weigh nothing."""

    weights: Mapping[str, float]

    def match(self, query: str, question: str) -> float:
        """The share (0 to 1) of ``query``'s intent weight in words ``question`` shares;
        0 when ``query`` has no word of any weight."""
        return self.matches(query, [question])[0]

    def matches(self, query: str, questions: Sequence[str]) -> list[float]:
        """:meth:`match` of ``query`` with each of ``questions``, the query's words weighed
        once: ranking asks it of every hit of a search."""
        wanted = {w: weight for w in words_of(query) if (weight := self.weights.get(w, 0.0))}
        total = sum(wanted.values())
        if total <= 0.0:
            return [0.0] * len(questions)
        return [
            sum(weight for word, weight in wanted.items() if word in shared) / total
            for shared in map(words_of, questions)
        ]


def fit_intent_words(questions: Sequence[str], replies: Sequence[str]) -> IntentWords | None:
    """Weights of the words of ``questions`` from the agreement of their ``replies`` (the
    same length, pairwise); None with fewer than two questions."""
    # sklearn only when fitting: importing the ranking stays light.
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

    if len(questions) != len(replies):
        raise ValueError(f"{len(questions)} questions but {len(replies)} replies")
    if len(questions) < 2:
        return None
    try:
        reply_vectors = TfidfVectorizer(sublinear_tf=True).fit_transform(replies)
    except ValueError:  # no reply has a word
        return None
    counter = CountVectorizer(analyzer=lambda text: sorted(words_of(text)), binary=True)
    has_word = counter.fit_transform(questions)  # (questions, words), 0/1
    if has_word.shape[1] == 0:
        return None
    n = has_word.shape[0]
    # Mean cosine between two different replies: rows are unit vectors, so the squared norm
    # of their sum is n plus twice the sum over pairs.
    total = np.asarray(reply_vectors.sum(axis=0)).ravel()
    background = (float(total @ total) - n) / (n * (n - 1))
    summed = (has_word.T @ reply_vectors).tocsr()  # (words, reply terms): per word
    squared = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    counts = np.asarray(has_word.sum(axis=0)).ravel().astype(np.float64)
    pairs = counts * (counts - 1)
    agreement = np.divide(squared - counts, pairs, out=np.zeros_like(counts), where=pairs > 0)
    shrunk = (counts * agreement + _SHRINK_QUESTIONS * background) / (counts + _SHRINK_QUESTIONS)
    weights = np.where(counts >= 2, shrunk - _FLOOR_FACTOR * background, 0.0)
    vocabulary = counter.get_feature_names_out()
    return IntentWords(
        {str(word): float(w) for word, w in zip(vocabulary, weights, strict=True) if w > 0.0}
    )
