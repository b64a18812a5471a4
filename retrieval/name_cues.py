"""Names that only their place in a sentence gives away: a word that is also an English word
("Mark", "Summer") spoken to at the start of a line, names typed in lower case after a cue
("my son jack", "the tech guy sanjay", "mr henderson", a lower-case name signing), names
listed beside a name already found ("Habib and Nasrin"), and names written in capitals in
an ordinary line ("ATTN: HELEN MCCARTHY"). :mod:`retrieval.names` runs them with the
lexicon; each takes a word only where the lexicon knows it as a given name or surname.
"""

from __future__ import annotations

from collections.abc import Sequence

import regex

from retrieval.lazy_regex import lazy_compile
from retrieval.name_lexicon import NameLexicon
from retrieval.name_patterns import (
    _NAME,
    _NEVER_NAMES,
    _NO_CODE_AFTER,
    _ORGANISATION_WORDS,
    _RELATIONS,
    _ROLES,
    _TITLES,
    _WORD,
    NOT_NAMES,
    SpanKind,
)

Span = tuple[int, int, SpanKind]

_ROLE_WORD = lazy_compile(rf"(?:{_ROLES}|{_RELATIONS})")

# (Not a code's prefix: "order jo/212655", "ref ab12".)
_LOWER = r"(?<![\p{L}\p{M}'’-])\p{Ll}[\p{L}\p{M}]{1,20}+(?![\p{L}\p{M}'’-])" + _NO_CODE_AFTER

# "Mark, can you mark this as urgent?": a given name opening a line before a comma and a
# clause is spoken to, even one that is an English word. (Not before a capitalised word:
# "Austin, Texas", "Victoria, BC" are places.)
# ... or a sentence: "We'll be in touch. Bill, please check the quote."; or between commas
# before what is said to them: "I'll be honest, Frank, this is the worst service".
_VOCATIVE = lazy_compile(
    rf"(?:(?m:^)|(?<=[.!?][ \t]{{1,3}}))[ \t]*+(?P<name>{_WORD})[ \t]*+,"
    r"(?=[ \t]*+(?:\p{Ll}|I[ \t'’]))"
    rf"|(?<=\p{{Ll}}[ \t]*,[ \t]*)(?P<name>{_WORD})[ \t]*+[,—–:][ \t]*+"
    # ... "Just to confirm, Hunter: your excess is", "now, Dieter, and I've marked it".
    r"(?=(?:this|that|you|your|please|pls|(?i:i|i['’](?:m|ve|ll|d))|we|we['’](?:ve|ll|re)|it|"
    r"and[ \t]+(?:(?i:i)|we)|the[ \t]+refund)\b)"
)
# "my son jack broke it", "ask my boss, mark", "aunty bisi", "my dad (frank) is 82", "ask
# for gran (edna)".
_LOWER_RELATION = lazy_compile(
    rf"\b(?i:(?:my|our|his|her|their)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_RELATIONS})|aunty|auntie|"
    rf"uncle|gran|granny|grandad|granddad|nan|nana)(?![\p{{L}}-])[ \t]*+"
    rf"(?:,[ \t]*+|(?P<bracket>\()[ \t]*+(?={_LOWER}[ \t]*+\)))?"
    rf"(?P<name>{_LOWER})(?P<next>[ \t]+\p{{Ll}}+)?"
)
# "the tech guy sanjay was great", "your engineer tamsin", "my accountant chidi okonkwo".
_LOWER_ROLE = lazy_compile(
    rf"\b(?:the|your|ur|our|a|an|my|his|her|their)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_ROLES})"
    rf"(?![\p{{L}}-])[ \t]*+,?"
    rf"[ \t]*+(?P<name>{_LOWER})"
)
# "mr henderson", "dear mr. obi".
_LOWER_TITLED = lazy_compile(rf"\b(?i:mr|mrs|ms|miss|dr)\.?[ \t]+(?P<name>{_LOWER})")
# "amber from your team", "raj said you'd know", "joão in billing".
_LOWER_MEMBER = lazy_compile(
    # (Not "the app said": a determiner makes it a thing.)
    r"(?<!\b(?i:the|a|an|your|ur|my|our|this|that|their|his|her|its)[ \t]+)"
    rf"(?P<name>{_LOWER})[ \t]+(?=(?:from|in|at|on)[ \t]+(?:the|your|ur|"
    r"our)[ \t]+(?:\p{Ll}+[ \t]+)?(?:team|department|dept|desk|billing|support|office|store|"
    r"shop|warehouse|chat|phone|sales|returns|accounts)\b|(?:said|told|confirmed|promised|"
    r"mentioned)\b)"
)
# ... "cheryl tells me to restart it", "francesco says it was delivered": a name first, no
# English word ("dhl says" is a courier's, "the app says" a thing's).
_LOWER_DOES = lazy_compile(
    r"(?<!\b(?i:the|a|an|your|ur|my|our|this|that|their|his|her|its)[ \t]+)"
    rf"(?P<name>{_LOWER})[ \t]+(?=(?:says|tells[ \t]+me|took[ \t]+my|gave[ \t]+me)\b)"
)
# Places only a person fills, in lower case: "a lady called carol", "handed over to hope on
# nights", "taking over from jack", "messaged rose on here", "carol can u check".
_LOWER_PERSON = lazy_compile(
    rf"(?:\b(?:lady|guy|man|woman|girl|bloke|chap|gentleman|fella|someone|somebody|agent|person|"
    rf"(?:he|she|they)[ \t]+(?:was|is|were))[ \t]+(?:called|named)|\bmessag(?:ed|ing)|"
    rf"\b(?:tak(?:e|ing)|took|hand(?:ed|ing)?)[ \t]+over"
    rf"[ \t]+(?:from|to)|\bthanks[ \t]+to)[ \t]+(?P<name>{_LOWER})"
    # ... "reza — can you take the ticket".
    rf"|(?m:^)[ \t]*+(?P<name>{_LOWER})(?:[ \t]*+[,—–])?[ \t]++"
    r"(?=(?:can|could|would|did|are|have)[ \t]+(?:u|you)\b)"
)
# "hi im grace, the app keeps crashing", "this is chidera btw", "im jack's mum": a
# lower-case name given as one's own, before a stop or a relation.
_LOWER_SELF = lazy_compile(
    rf"\b(?i:i['’]?m|i[ \t]+am|this[ \t]+is|it['’]?s[ \t]+me)[ \t,]++(?i:not[ \t]+)?"
    rf"(?:(?P<name>{_LOWER})(?=[ \t]*+(?:[,.!]|btw\b|here\b|$))"
    rf"|(?P<name>\p{{Ll}}[\p{{L}}\p{{M}}]{{1,20}}+)(?=['’]s[ \t]+(?:{_RELATIONS}|mum|mom|dad)\b))"
)
# ... "sorry to bother you again, it's amaka, did the refund go through?"
_LOWER_ITS = lazy_compile(rf"\b(?i:it['’]s|its)[ \t]++(?P<name>{_LOWER})(?=[ \t]*+,)")
# "ask grace she knows", "tell dawn at the depot", "please pass to gemma she knows", "loop in
# mikhail he set it up": a lower-case name told, asked or passed to, that a pronoun or a
# workplace follows.
_LOWER_TOLD = lazy_compile(
    rf"\b(?i:ask|tell|talked[ \t]+to|spoke[ \t]+to|speak[ \t]+to|pass(?:ed)?[ \t]+(?:it[ \t]+|"
    rf"this[ \t]+)?(?:on[ \t]+)?to|loop[ \t]+in|ring|call|cc|transfer(?:red)?[ \t]+to|"
    rf"sen[dt][ \t]+(?:it[ \t]+|money[ \t]+)?to)[ \t]+(?P<name>{_LOWER})"
    r"(?P<then>[ \t]+(?:he|she)\b|[ \t]+(?:at|from|in)[ \t]+the[ \t]+(?:depot|shop|store|office|"
    r"desk|warehouse|branch)\b)?"
)
# ... "switch my sessions from storm to another trainer": someone left for another of them.
_LOWER_SWITCHED = lazy_compile(
    rf"\bfrom[ \t]+(?P<name>{_LOWER})[ \t]+to[ \t]+(?:another|a[ \t]+different|a[ \t]+new)"
    rf"[ \t]+(?:{_ROLES})\b"
)
# ... "the guy from ur depot, warren, said to email here": a name between commas, reporting.
_LOWER_APPOSED = lazy_compile(
    rf"\b(?:{_ROLES})\b[^,.!?\n]{{0,30}},[ \t]*+(?P<name>{_LOWER})[ \t]*+,[ \t]*+"
    r"(?=(?:said|told|says|promised|confirmed|reckons|was|is)\b)"
)
# After a greeting, a lower-case name given as one's own: "hey its sky, locked out again",
# "hi sunny here", "hi its ash from accounts", "hey it's rich in flat 1".
_LOWER_GREETED_SELF = lazy_compile(
    r"(?m)^[ \t]*+(?i:hi+|he+y+|hel+o+|hiya|heya|yo)[ \t,!]++"
    r"(?:(?P<intro>(?i:it['’]?s|this[ \t]+is|i['’]?m|i[ \t]+am))[ \t,]++)?"
    rf"(?P<name>{_LOWER})(?=[ \t]+(?:here|from|again|btw|in[ \t]+(?:flat|room|apartment|unit|"
    r"number|no)\b)\b|(?(intro)[ \t]*+(?:[,.!]|$)|(?!)))"
)
# "hi grace, any update?", "hello dawn thank you for the call".
_LOWER_GREETING = lazy_compile(
    rf"(?m)^[ \t]*+(?i:hi+|he+y+|hel+o+|hiya|dear|morning|good[ \t]+(?:morning|afternoon|"
    rf"evening))[ \t]++(?P<name>{_LOWER})(?=[ \t]*+(?:[,!.?]|$|(?:thank|thanks|thx|ty|i|i['’]m|"
    r"im|just|quick|sorry|hope|can|could|please|pls|any)\b))"
)
# A lower-case name signing alone on the last line, or after a dash: "...\nbruno", "-matt".
_LOWER_LAST_LINE = lazy_compile(rf"\n[ \t]*+(?P<name>{_LOWER})[ \t]*+\Z")
_LOWER_DASHED = lazy_compile(rf"(?:^|(?<=[\s.!?]))[-–—~][ \t]*+(?P<name>{_LOWER})[ \t]*+\Z")
# A form's name field at the start of a line: "Name: Bongani Dlamini", "Account holder:
# Eilidh MacLeod", "Cardholder name - T. Okafor". The label says a person follows ("Product
# name:" and "Company name:" do not start with a person's label).
_NAME_FIELD = lazy_compile(
    r"(?m)^[ \t]*+(?i:(?:full|first|last|given|customer|contact|billing|account|recipient|"
    r"your|my)[ \t]+)?(?i:name|account[ \t]*+holder(?:[ \t]+name)?|card[ \t]*+holder"
    r"(?:[ \t]+name)?|recipient|contact[ \t]+person|attn|attention)"
    rf"[ \t]*+[:–—-][ \t]*+(?P<name>{_NAME})(?![\p{{L}}\p{{M}}])"
)
# A surname before its given name, as lists and forms write them, at a line's start or
# after a field's label: "Account holder: Sørensen, Mette.", "Patel, Hemant (acct 1193):",
# "Haugland, Kari reported damage". (Not a list that goes on: "Leeds, Derby, York".)
_SURNAME_FIRST = lazy_compile(
    r"(?=\p{Lu})(?<=^[ \t]*|\n[ \t]*|:[ \t]{0,3})"
    rf"(?P<name>(?P<surname>{_WORD})[ \t]*+,[ \t]*+(?P<given>{_WORD}))(?![\p{{L}}\p{{M}}])"
    r"(?=[ \t]*+(?:[.(:;\n—–]|-[ \t]|$|\p{Ll}))"
)
# Someone thanked or praised at the end of a sentence, after a comma: "Thanks for the help,
# Temitope.", "Great work on this, Olu!", "Cheers for sorting it, Yaw".
_THANKED = lazy_compile(
    r"(?:(?m:^)|(?<=[.!?][ \t]))[ \t]*+(?i:thanks|thank[ \t]+you|thx|cheers|"
    r"(?:great|nice|good|brilliant|amazing)[ \t]+(?:work|job|one|stuff)|well[ \t]+done|"
    r"much[ \t]+appreciated|appreciate[ \t]+(?:it|that|this|the[ \t]+help))"
    rf"[^.!?\n,]{{0,60}}+,[ \t]*+(?P<name>{_WORD}(?:[ \t]+{_WORD})?)[ \t]*+(?=[.!?]|$)"
)
# Names listed together: "Habib and Nasrin", "Ayo & Tolu". (Not after a comma alone: "-Kat,
# Field Ops" signs with a team.)
# ("After speaking with Nnamdi and then Carol".)
_AND = r"[ \t]++(?:and|&|or)(?:[ \t]++then)?[ \t]++|[ \t]*+&[ \t]*+"
_CAPITALS_RUN = lazy_compile(
    r"(?<![\p{L}\p{M}.])(?:\p{Lu}\.[ \t]+)?\p{Lu}{2,}+(?:['’-]\p{Lu}+)?"
    r"(?:[ \t]+\p{Lu}{2,}+(?:['’-]\p{Lu}+)?){0,3}(?![\p{L}\p{M}])"
)


# A lower-case surname after a lower-case given name: "ryan o'connor", "chidi okonkwo".
_LOWER_SURNAME = lazy_compile(
    r"[ \t]++(?P<surname>\p{Ll}(?:['’]\p{Ll})?[\p{L}\p{M}]{1,20}+(?:-\p{Ll}[\p{L}\p{M}]++)?)"
    r"(?![\p{L}\p{M}'’-])"
)


def lower_surname_end(text: str, end: int, lexicon: NameLexicon, keep: frozenset[str]) -> int:
    """Where a lower-case name found on purpose ends: after the next word when that is a
    surname that is no verb or adjective ("violet harper", "mark jones"), or a word of four
    letters or more that is no English word ("chidi okonkwo", "ryan o'connor")."""
    after = _LOWER_SURNAME.match(text, end)
    if after is None:
        return end
    word = after.group("surname")
    folded = word.casefold()
    if not _usable(word, keep):
        return end
    # (WordNet holds lemmas: "deleted", "booking" are verbs too, though no word of it.)
    if (folded in lexicon.surnames and folded not in lexicon.common) or (
        len(folded) >= 4
        and not lexicon.is_english(folded)
        and folded not in lexicon.broad
        and not _PAST.fullmatch(folded)
        and not folded.endswith("ing")
    ):
        return int(after.end())
    return end


def _verb_s(word: str, lexicon: NameLexicon) -> bool:
    """Whether a word is a verb's present in "s": "my nan joy keeps getting texts"."""
    return len(word) > 3 and word.endswith("s") and word[:-1] in lexicon.common


def _usable(word: str, keep: frozenset[str]) -> bool:
    folded = word.casefold()
    return (
        folded not in NOT_NAMES
        and folded not in keep
        and folded not in _ORGANISATION_WORDS
        and folded not in _NEVER_NAMES
        and folded not in _TITLES
    )


def _given(word: str, lexicon: NameLexicon) -> bool:
    """A given name of the curated lists, or of the broad one when no English word."""
    return word.casefold() in lexicon.given or lexicon.is_broad_given(word)


def _first(word: str, lexicon: NameLexicon) -> bool:
    """A given name more likely than the word it also is ("sanjay", not "grace")."""
    return lexicon.is_name_first(word) or lexicon.is_broad_given(word)


def cue_spans(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[Span]:
    """The names these places give in ``text``, as (start, end, kind)."""
    found: list[Span] = []

    def add(match: regex.Match[str], kind: SpanKind = "mention", *, surname: bool = False) -> None:
        start, end = match.span("name")
        # A name given on purpose may go on with its surname: "my accountant chidi okonkwo".
        found.append((start, lower_surname_end(text, end, lexicon, keep) if surname else end, kind))

    for match in _VOCATIVE.finditer(text):
        name = match.group("name")
        folded = name.casefold()
        # ("Frankly, ..." opens a sentence; mid-sentence, "honest, Frank, this" has its
        # capital for the name.)
        opens = _line_start(text, match.start("name"))
        if (
            _usable(name, keep)
            and _given(name, lexicon)
            and (folded not in lexicon.describers or not opens)
        ):
            add(match)
    for match in _LOWER_RELATION.finditer(text, overlapped=True):
        name = match.group("name")
        after = (match.group("next") or "").strip().casefold()
        # A given name that is also a verb ("jack", "hope") when a verb follows it, or
        # alone in brackets ("my dad (frank)").
        if _usable(name, keep) and (
            _first(name, lexicon)
            or (
                name.casefold() in lexicon.given
                and (
                    bool(match.group("bracket"))
                    # ... or a verb in the past: "my flatmate grace took the parcel in", or
                    # what is said of a person: "my son jack is flying alone".
                    or after in _SAID_OF_A_PERSON
                    or (
                        (
                            after in lexicon.common
                            or _PAST.fullmatch(after)
                            or _verb_s(after, lexicon)
                        )
                        and after not in NOT_NAMES
                    )
                )
            )
        ):
            add(match, surname=True)
    for pattern in (_LOWER_ROLE, _LOWER_MEMBER):
        for match in pattern.finditer(text, overlapped=True):
            name = match.group("name")
            # (Not "some lady in your shop said": a role is nobody's name.)
            if (
                _usable(name, keep)
                and _first(name, lexicon)
                and not _ROLE_WORD.fullmatch(name.casefold())
            ):
                add(match, surname=pattern is _LOWER_ROLE)
    for match in _LOWER_DOES.finditer(text):
        name = match.group("name")
        if _usable(name, keep) and lexicon.is_name_first(name) and not lexicon.is_english(name):
            add(match)
    for match in _LOWER_SELF.finditer(text):
        name = match.group("name")
        folded = name.casefold()
        if _usable(name, keep) and (
            _first(name, lexicon) or (folded in lexicon.given and folded not in lexicon.describers)
        ):
            add(match, surname=True)
    for match in _LOWER_ITS.finditer(text):
        # (A name more likely than a word: not "it's fine," nor "it's grace,".)
        name = match.group("name")
        if _usable(name, keep) and _first(name, lexicon):
            add(match, surname=True)
    for match in _LOWER_TOLD.finditer(text):
        name = match.group("name")
        # A pronoun or a workplace after it, or a name more likely than a word: "ring kristof
        # on arrival", "my transfer to andrzej didnt go through".
        if _usable(name, keep) and (
            (match.group("then") and name in lexicon.given)
            or (len(name) > 2 and _first(name, lexicon))
        ):
            add(match)
    for pattern in (_LOWER_SWITCHED, _LOWER_APPOSED):
        for match in pattern.finditer(text):
            name = match.group("name")
            if _usable(name, keep) and name in lexicon.given:
                add(match)
    for match in _LOWER_TITLED.finditer(text):
        name = match.group("name")
        if _usable(name, keep) and (lexicon.is_name_word(name) or name.casefold() in lexicon.broad):
            add(match)
    for match in _LOWER_PERSON.finditer(text):
        if _usable(match.group("name"), keep) and match.group("name") in lexicon.given:
            add(match)
    for match in _LOWER_GREETED_SELF.finditer(text):
        name = match.group("name")
        if _usable(name, keep) and _given(name, lexicon):
            add(match)
    for match in _LOWER_GREETING.finditer(text):
        name = match.group("name")
        if _usable(name, keep) and name.casefold() in lexicon.given:
            add(match)
    for match in _NAME_FIELD.finditer(text):
        words = match.group("name").split()
        # Some word of it a name word, or no English word ("Dlamini"); none a keep-word.
        if all(_usable(w, keep) for w in words) and any(
            lexicon.is_name_word(w) or not lexicon.is_english(w) for w in words
        ):
            add(match)
    for match in _THANKED.finditer(text):
        words = match.group("name").split()
        # A given name first; a second word a surname or no English word ("Juniper
        # Outfitters" signs for a shop).
        if (
            all(_usable(w, keep) for w in words)
            and _given(words[0], lexicon)
            and all(lexicon.is_surname(w) or not lexicon.is_english(w) for w in words[1:])
        ):
            add(match)
    for match in _SURNAME_FIRST.finditer(text):
        surname, given = match.group("surname"), match.group("given")
        folded = surname.casefold()
        if (
            _usable(surname, keep)
            and _usable(given, keep)
            # (A given name that is no English word: not "Austin, Texas".)
            and (lexicon.is_given_name(given) or lexicon.is_broad_given(given))
            and (
                lexicon.is_surname(surname)
                or (folded in lexicon.surnames and folded not in lexicon.common)
                or not lexicon.is_english(surname)
            )
        ):
            add(match)
    for pattern in (_LOWER_LAST_LINE, _LOWER_DASHED):
        for match in pattern.finditer(text):
            name = match.group("name")
            if _usable(name, keep) and (
                _first(name, lexicon)
                or (pattern is _LOWER_DASHED and name.casefold() in lexicon.given)
            ):
                add(match, "signoff")
    return found


# A capitalised word alone in running text: "a surprise for Ananya so please ...".
_LONE = lazy_compile(rf"(?<![\p{{L}}\p{{M}}'’-])(?P<name>{_WORD})(?![\p{{L}}\p{{M}}'’-])")
# What stands before a place, a product or a brand ("in Busan", "my Samsung", "a Dyson").
_BEFORE_A_THING = frozenset(
    """
    in at from to the a an my your our their his her its via near on of st into onto towards
    around outside inside across through this that these those new old
    """.split()  # noqa: SIM905
)
# What follows a place: "the Eton store".
_PLACE_WORDS = frozenset(
    "store shop branch office depot station road street hotel park centre center".split()  # noqa: SIM905
)
# Short words that WordNet also holds as nouns ("at", "as"): no noun after a name.
_FUNCTION = frozenset("at as so is it or be by if on up to do go no we us".split())  # noqa: SIM905
_WORD_BEFORE = lazy_compile(r"([\p{L}\p{M}.]+)[ \t,]*+(?:(?:and|&|or)[ \t]++)?\Z")
_PAST = lazy_compile(
    r"\p{Ll}{2,}ed|took|bought|gave|said|came|got|sent|left|told|made|brought|rang|paid|"
    r"put|set|sold|found|kept|lost|broke|forgot|thought|went"
)
_AFTER_A_NUMBER = lazy_compile(r"\d[ \t]*+\Z")
_VERSION_AFTER = lazy_compile(r"[ \t]++v?\d++\.\d")
# What follows a relation's name and not the word it also is: "my son jack is flying".
_SAID_OF_A_PERSON = frozenset("is was has had".split())  # noqa: SIM905
_WORD_AFTER = lazy_compile(r"[ \t]+([\p{L}\p{M}'’-]+)")


def alone_in_text(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[tuple[int, int]]:
    """Given names that only the broad list knows, and no English word, standing alone in
    running text: "a surprise for Ananya so", "Can I add Tamsin as an authorised user",
    "please call Efua at 2pm". Not at a sentence's start, nor where a place, a product or a
    brand stands: after "in/at/to/my/the ...", beside another capitalised word ("Slack, Jira",
    "Windsor and Eton", "Google Drive"), or before a noun ("Uber driver", "Jira ticket") or
    a place's word ("Eton store"). Festivals stay a risk ("Closed for Diwali?")."""
    found = []
    for match in _LONE.finditer(text):
        name = match.group("name")
        folded = name.casefold()
        if (
            not lexicon.is_broad_given(name)
            or not _usable(name, keep)
            # The curated lists' names have their own rules.
            or folded in lexicon.given
            or folded in lexicon.surnames
            or _line_start(text, match.start())
        ):
            continue
        # (After a number, a model's name: "the Emberline 2.1 Sove", a typo for "Stove".)
        if _AFTER_A_NUMBER.search(text, 0, match.start()):
            continue
        # (Before a version, a product's: "macOS Sonoma 14.4".)
        if _VERSION_AFTER.match(text, match.end()):
            continue
        before = _WORD_BEFORE.search(text, 0, match.start())
        if (
            before
            and (
                before.group(1).casefold().rstrip(".") in _BEFORE_A_THING
                # (A verb opening the sentence is no capitalised word of a brand's or a
                # place's: "Adding Hyun-woo to cc".)
                or (before.group(1)[:1].isupper() and not _opening_verb(text, before.start(1)))
            )
        ):
            continue
        after = _WORD_AFTER.match(text, match.end())
        if after:
            word = after.group(1)
            folded_after = word.casefold()
            if word[:1].isupper() or folded_after in _PLACE_WORDS:
                continue
            if (
                lexicon.is_english(folded_after)
                and folded_after not in lexicon.common
                and folded_after not in _FUNCTION
            ):
                continue
        found.append(match.span("name"))
    return found


def listed_with(
    text: str, spans: Sequence[tuple[int, int]], lexicon: NameLexicon, keep: frozenset[str]
) -> list[tuple[int, int]]:
    """Capitalised words listed beside a name found ("Habib and Nasrin", "Ayo & Tolu",
    "Dawn or Drew", "Magnus, then Freya, then ...", "Cormac, Síle and a bot") that are given
    names or surnames, or no English word; a list is followed along from each name found."""
    found: list[tuple[int, int]] = []
    seen = set(spans)
    todo = list(spans)

    def fits(word: str) -> bool:
        return _usable(word, keep) and (
            lexicon.is_name_word(word)
            or word.casefold() in lexicon.broad
            or not lexicon.is_english(word)
        )

    def take(span: tuple[int, int]) -> None:
        if span not in seen:
            seen.add(span)
            found.append(span)
            todo.append(span)

    while todo:
        start, end = todo.pop()
        after = _LISTED_AFTER.match(text, end)
        # After a comma alone, only an item of a list: not "-Kat, Field Ops" (a team) nor
        # "Hi Sarah, Hope you're well".
        if (
            after
            and fits(after.group("name"))
            and (after.group("and") or _LIST_GOES_ON.match(text, after.end("name")))
        ):
            take(after.span("name"))
        before = _LISTED_BEFORE.search(text, 0, start)
        if (
            before
            and fits(before.group("name"))
            and (
                # (At a line's start, only before a full name: "Jack and Jill Morton".)
                (not _line_start(text, before.start("name")) or len(text[start:end].split()) > 1)
                if before.group("and")
                # Before a comma, a list's first item when the list goes on after the name
                # found: "Li, Mateo and I".
                else _LIST_GOES_ON_WITH_AND.match(text, end) is not None
            )
        ):
            take(before.span("name"))
    return found


_LISTED_AFTER = lazy_compile(
    rf"(?:(?P<and>{_AND})|[ \t]*+,[ \t]*+(?:then[ \t]+)?)(?P<name>{_WORD})(?![\p{{L}}\p{{M}}])"
)
_LISTED_BEFORE = lazy_compile(
    rf"(?<![\p{{L}}\p{{M}}])(?P<name>{_WORD})(?:(?P<and>{_AND})|[ \t]*+,[ \t]*+)\Z"
)
_LIST_GOES_ON = lazy_compile(r"[ \t]*+(?:,|(?:and|&|or|then)\b|[.!?;)]|$)")
_LIST_GOES_ON_WITH_AND = lazy_compile(r"[ \t]*+(?:and|&|or)\b")


def _line_start(text: str, at: int) -> bool:
    head = text[:at].rstrip(" \t")
    return not head or head[-1] in "\n.!?:;"


def titled_capitals(text: str, lexicon: NameLexicon) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with names written in capitals in an ordinary line ("ATTN: HELEN MCCARTHY,
    ACCOUNTS PAYABLE", "signed for by PATEL") in title case, character for character the
    same length, and the spans of those of two words or more (or after an initial), which
    are names wherever they stand. A run of capitals is a name when all of its words (two
    or more, or after an initial) are given names or surnames, or its one word of four
    letters or more is one that is no English word; acronyms ("UPS", "DHL") are in no list
    of names. A passenger's name as tickets write it ("PATEL/RAJESH MR") is a name too."""
    spans: list[tuple[int, int]] = []

    def title(match: regex.Match[str]) -> str:
        run = str(match.group(0))
        words = regex.findall(r"\p{Lu}{2,}+(?:['’-]\p{Lu}+)?", run)
        several = len(words) > 1 or run[1:2] == "."
        if several:
            named = all(lexicon.is_name_word(w) for w in words)
        else:  # (three capitals alone are an acronym as often: "SIM", "ISA")
            named = len(words[0]) > 3 and (
                lexicon.is_given_name(words[0]) or lexicon.is_surname(words[0])
            )
        if not named:
            return run
        titled = str(regex.sub(r"(?<=\p{Lu})\p{Lu}++", _lower, run))
        if len(titled) != len(run):
            return run
        if several:
            spans.append(match.span())
        return titled

    # A passenger's name as tickets write it, surname first: "PATEL/RAJESH MR".
    for match in _PASSENGER.finditer(text):
        if all(
            lexicon.is_name_word(w) or lexicon.is_broad_given(w)
            for w in match.group("name").split("/")
        ):
            spans.append(match.span("name"))
    return str(_CAPITALS_RUN.sub(title, text)), spans


_PASSENGER = lazy_compile(
    r"(?<![\p{L}\p{M}/])(?P<name>\p{Lu}{3,}+/\p{Lu}{3,}+)(?![\p{L}\p{M}/])"
    r"(?=[ \t]+(?:MRS|MR|MS|MISS|MSTR|DR)\b)"
)


def _lower(match: regex.Match[str]) -> str:
    return str(match.group(0)).lower()


# A name doing something, first in its clause: "Amir asked if ...", "Rebecca already
# offered", "Tendai is the account owner", "Kalani prefers email", "Jae-min left the box".
_ACTING = lazy_compile(
    r"(?<![\p{L}\p{M}'’-])(?P<name>\p{Lu}[\p{Ll}\p{M}]++(?:-\p{L}[\p{Ll}\p{M}]++)?)"
    r"[ \t]++(?:(?:just|already|also|never|still|then|actually|apparently|originally|"
    r"kindly|recently|only)[ \t]++)?(?P<verb>\p{Ll}{2,}+)(?![\p{L}\p{M}'’-])"
)
# What a person does that a place or a thing rarely does, after the name: being, having,
# being able; what it did ("asked", "phoned", "put"), or does ("prefers", "keeps").
_AUXILIARIES = frozenset(
    """
    is was has had will would can could should did does didn't doesn't wasn't isn't hasn't
    hadn't won't can't couldn't wouldn't shouldn't keeps kept wants wanted needs needed
    prefers says said knows knew thinks thought handles deals asks
    """.split()  # noqa: SIM905
)
_CONJUNCTION_BEFORE = lazy_compile(
    r"(?<![\p{L}\p{M}'’])(?:so|and|but|because|cos|until|till|while|when|then)[ \t]++\Z"
)
_HAD = frozenset({"had", "has"})
_MONTHS = frozenset({"april", "may", "june", "august"})
# What stands before a place or a thing that then "is" or "has" ("in Jordan is", "the Iris
# has", "Lake Louise"): not "that", a conjunction too ("noted that Kalani prefers").
_BEFORE_A_PLACE = _BEFORE_A_THING - {"that", "this", "these", "those"}


def acting(
    text: str,
    lexicon: NameLexicon,
    keep: frozenset[str],
    persons: Sequence[tuple[int, int]] = (),
) -> list[tuple[int, int]]:
    """Given names doing what people do, the subject of a verb in the past or of a person's
    auxiliary: "Tendai is the account owner", "Jae-min left the box" (names only the broad
    list knows), "Amir asked if", "I see Rebecca already offered" (given names that WordNet
    holds too, where the recogniser calls them persons: "Patience is wearing thin", "Art
    prints", "Ivy has grown" are not). Not after another capitalised word ("Notting Hill
    is"), unless a relation's ("Aunty Bisi is coming"), nor where places and things stand
    ("in Jordan is")."""
    found = []
    for match in _ACTING.finditer(text):
        name = match.group("name")
        verb = match.group("verb")
        start, end = match.span("name")
        # A given name that is also a word, capitalised after a conjunction, did something:
        # "so Blessing dropped off the groceries", "and Amber pulled over", "so Bill paid".
        conjoined = (
            name.casefold() in lexicon.given
            and name.casefold() not in _MONTHS
            and (_PAST.fullmatch(verb) is not None or verb in _HAD)
            and _CONJUNCTION_BEFORE.search(text, 0, start) is not None
        )
        if not _usable(name, keep) or not (
            lexicon.is_broad_given(name)
            or conjoined
            or (
                lexicon.is_name_first(name)
                and name.casefold() not in lexicon.describers
                and any(s <= start and end <= e for s, e in persons)
            )
        ):
            continue
        # (No verb in "s": "Promo codes", "Hunter boots" are plurals.)
        if verb not in _AUXILIARIES and not _PAST.fullmatch(verb):
            continue
        # (The word before another sentence's is none: "Noted. Yusra will be".)
        # (A conjunction opens a clause: "came on and Amber pulled over".)
        before = (
            None if _line_start(text, start) or conjoined else _WORD_BEFORE.search(text, 0, start)
        )
        if before:
            word = before.group(1).rstrip(".")
            if word.casefold() in _BEFORE_A_PLACE or (
                word[:1].isupper() and not _ROLE_WORD.fullmatch(word.casefold())
            ):
                continue
        found.append((start, end))
    return found


# What only a customer does, after a name opening its sentence: "Heather bought the
# fleece", "Ivy has asked for", "Faith used her points". (Not "is", "was", a plural:
# "Patience is wearing thin", "Art prints arrived".)
_CUSTOMER_DOES = lazy_compile(
    # (The capital first: a pattern that opens with lookbehinds is slow to scan.)
    r"(?=\p{Lu})(?<=^[ \t]*|\n[ \t]*|[.!?:;][ \t]{1,3})(?P<name>\p{Lu}[\p{Ll}\p{M}]++)[ \t]++"
    r"(?:(?:has|had|just|already|also)[ \t]++)?"
    r"(?:asked|ordered|bought|booked|phoned|rang|e-?mailed|texted|messaged|"
    r"used[ \t]+(?:her|his|their))\b"
)


def customers_acting(
    text: str, lexicon: NameLexicon, keep: frozenset[str]
) -> list[tuple[int, int]]:
    """Given names, even English words, opening a sentence before what a customer does:
    "Heather bought the purple fleece", "Rich has asked for the bill to be split"."""
    found = []
    for match in _CUSTOMER_DOES.finditer(text):
        name = match.group("name")
        folded = name.casefold()
        if _usable(name, keep) and folded in lexicon.given and folded not in _MONTHS:
            found.append(match.span("name"))
    return found


def _opening_verb(text: str, at: int) -> bool:
    """Whether the word at ``at`` opens its sentence as a verb in "-ing": "Adding", "Cc'ing"."""
    word = regex.match(r"[\p{L}\p{M}]+", text[at:])
    return _line_start(text, at) and word is not None and word.group().endswith("ing")
