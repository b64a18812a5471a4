"""Where people's names stand in support text: the patterns of the rules that find them
(each with a group ``name``), which of them need more evidence than their place, and the
words that fill a name's place without being anyone's name. :mod:`retrieval.names` runs
them.
"""

from __future__ import annotations

from typing import Literal

import regex

from retrieval.lazy_regex import lazy_compile

SpanKind = Literal["greeting", "signoff", "mention"]

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
# The end of a name: punctuation, a line break, the end, or "I" ("Hi Karen I still ...").
# (A closing quote too: "it shows 'Welcome back, Dave' but ..."; and "again": "Hi,
# Marguerite again.")
_END = (
    r"(?=[ \t]*(?:[,!.:;?…—–)\n\p{So}]|['’\"”](?![\p{L}\p{M}])|-\s|$|x{1,3}(?:\s|$)|I(?=[ \t'’])"
    r"|again\b))"
)
# After a name someone is addressed by: an end, or the words that talk to them ("thanks
# Yaw you've been great", "ok Victoria I'll try", "hey Dakota quick q", "thank you Anna for
# your patience").
_ADDRESSED_END = (
    r"(?=[ \t]*+(?:[,!.:;?…—–)\n\p{So}]|$|x{1,3}(?:\s|$)|(?i:you|you['’](?:re|ve|ll|d)|u|ur|"
    r"your|i['’]ll|i['’]m|i|quick|for)\b))"
)
# Greeting words, stretched in chat ("heyyy", "hiii", "helloo").
_HELLO = r"(?:h+i+|he+y+|hel+o+|hiya|heya|howdy|hallo|hola|yo)"

# (At a line's start, or quoted: "the email says 'Dear Mr Holly'", "it shows 'Welcome back,
# Dave'", "the card should say 'Happy birthday Daisy, love from ...'".)
_GREETING = lazy_compile(
    rf"(?m)(?:^|['‘\"“])[ \t]*+(?P<lead>(?i:{_HELLO}(?:[ \t]+there)?|dear|greetings|good[ \t]+"
    rf"(?:morning|afternoon|evening|day)|morning|afternoon|evening|thanks|thank[ \t]+you|thx|"
    rf"welcome(?:[ \t]+back)?|happy[ \t]+birthday|kia[ \t]+ora)\b)(?P<sep>[ \t]*+,?[ \t]*+)"
    rf"(?P<name>{_WITH_TITLE}){_END}"
)
# Someone addressed in the middle of a line, after a sentence or an interjection: "lol
# thanks Sunny you're the best", "ok Victoria I'll try", "omg Wren you're a lifesaver".
_THANKS = (
    rf"(?:thanks|thank[ \t]+(?:you|u)|thanku|thx|ty|tysm|cheers|{_HELLO}|ok|okay|omg|"
    r"no[ \t]+worries|sorry|bye|lol|lmao|haha|wow|aw+|nice[ \t]+one|g['’]day|ta-ra)"
)
_INTERJECTION = r"(?:lol|lmao|omg|ok|okay|oh|ah|aw+|wow|haha|yes|yeah|yay|great|perfect|cool)"
# The word first, then what stands before it (a pattern that starts with a lookbehind
# is slow to scan: 100 KB of digits took 0.1 s).
_ADDRESS_LEAD = (
    rf"\b(?i:{_THANKS})(?<=(?:(?m:^)|[.!?…,;:)\p{{So}}][ \t]*+|\b(?i:{_INTERJECTION})[ \t,]*+)"
    rf"(?i:{_THANKS}))(?:[ \t]+(?i:so[ \t]+much|a[ \t]+lot|again|for[ \t]+(?:nothing|"
    r"everything|that|this|(?:all[ \t]+)?(?:the|your)[ \t]+help)))?[ \t]*+,?[ \t]*+"
)
_ADDRESSED = lazy_compile(rf"{_ADDRESS_LEAD}(?P<name>{_NAME}){_ADDRESSED_END}")
# ... and after what is said to them: "Good news, River!", "Thanks so much, Hoang!".
_ADDRESSED_LAST = lazy_compile(
    r",(?<=\b(?i:news|well|much|again|thanks|thank[ \t]+you|back|morning|afternoon|evening|"
    r"luck|congrats|congratulations|sorry|day|weekend|course|problem|thing|aboard|to[ \t]+you)"
    r"[ \t]*+,)"
    rf"[ \t]*+(?P<name>{_NAME})(?=[ \t]*+(?:[!.?…]|\p{{So}}|$))"
    # ... and after any words, when an exclamation or a question follows: "See you soon,
    # Marta!", "Can you help me, Will?".
    # (After a word in lower case: "Phoenix, Arizona?" is a place.)
    rf"|,(?<=(?<![\p{{L}}\p{{M}}])\p{{Ll}}[\p{{L}}\p{{M}}'’]*[ \t]*,)[ \t]*+(?P<name>{_NAME})"
    r"(?=[ \t]*+(?:!|\?|\p{So}))"
)
# ... or first: "Sky, your hoodie is back", "Grace, hi".
_ADDRESSED_FIRST = lazy_compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+,[ \t]*+(?=(?i:you|your|you['’]\p{{Ll}}+|u|ur|hi|hey|"
    r"hello|thanks|thank[ \t]+you|good[ \t]+news|welcome|quick[ \t]+q|just[ \t]+(?:a|to|"
    r"checking|wanted))\b)"
    # ... one word before news or an apology: "Sunny, it's not so sunny news", "Grace, sorry
    # for the wait" (not a shouted line's "Hope You're Happy, I'm ...").
    rf"|(?m:^)[ \t]*+(?P<name>{_WORD})[ \t]*+,[ \t]*+(?=(?i:it['’]s|i['’]m|i['’]ve|we['’](?:re|ve)|"
    r"sorry|unfortunately|apologies)\b)"
)
# "Grace, hi —": the name first.
_GREETING_AFTER = lazy_compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+,[ \t]*+(?i:hi|hello|hey|good[ \t]+(?:morning|"
    rf"afternoon|evening))\b"
)
# What may follow a signing name: its team or company ("— Freya, Customer Relations",
# "– Rosa at PetNest", "Naledi (Deliveries)").
_TEAM_TAIL = r"(?:[ \t]*+(?:,|\bat\b|\||[—–@])[ \t]*+[^\n]{1,60}+|[ \t]*+\([^)\n]{1,40}+\))?"
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
    r"--|[—–]|ng[aā][ \t]+mihi(?:[ \t]+nui)?|saludos|cordialement|groetjes|gr[uü](?:ss|ß)e|mvh|"
    r"atenciosamente|"
    r"abrazos|un[ \t]+abrazo|ciao|namaste|peace|ttyl)"
)
_SIGNOFF_LINE = lazy_compile(
    rf"(?m)(?:^|(?<=[.!?][ \t]))[ \t]*+{_CLOSING}[ \t]*+[,.!]*+[ \t]*+\n"
    # The name may go on with the business: "Keiko — Juniper Outfitters", "Sam | Acme".
    rf"(?P<name>[ \t]*+[-–—~]?[ \t]*+{_NAMES})[ \t]*+(?:[—–|][^\n]*+|-[ \t][^\n]*+|"
    r"\([^)\n]{1,60}+\))?$"
)
# "Thanks, Carlos" / "Cheers Anna" closing a message on one line.
_SIGNOFF_INLINE = lazy_compile(
    rf"(?m)(?:^|(?<=[.!?][ \t]))[ \t]*+{_CLOSING}[ \t]*+[,.!]*+[ \t]*+(?P<name>{_NAMES})"
    rf"{_TEAM_TAIL}[ \t]*+[.!]*+[ \t]*+$"
)
# "Tomás | Juniper Outfitters" or "Keiko — Acme Support" on one of the last lines.
_SIGNATURE_LINE = lazy_compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+(?:[—–|]|-[ \t])[^\n]*+$(?=(?:\n[^\n]*+){{0,2}}\Z)"
)
# A name alone on the last line of a message of several lines: a signature.
_LAST_LINE = lazy_compile(
    rf"(?<=\n)[ \t]*+(?P<name>{_NAMES})[ \t]*+(?:\n[ \t]*+(?i:sent[ \t]+from[ \t]+my)[^\n]*+)?\Z"
)
# "- Marcus" or "— Anna-Lena" alone on the last line, or after the last sentence ("...
# Take care! – Olu"), maybe with the team: "— Freya, Customer Relations", "– Rosa at PetNest",
# "Naledi (Deliveries)".
_DASH_SIGNATURE = lazy_compile(
    rf"(?:(?m:^)|(?<=[.!?…)\p{{So}}][ \t]*+))[ \t]*+[-–—~^/][ \t]*+(?P<name>{_NAME}){_TEAM_TAIL}"
    r"[ \t]*+\Z"
    # ... or a quoted message's end: 'Quoting your colleague: "... sorted — Clive."'.
    rf"|(?<=[\p{{L}}.!?…][ \t]*+)[—–][ \t]*+(?P<name>{_NAME})[.!]?[\"”](?![\p{{L}}\p{{M}}])"
)
# The last words of a message, after its last sentence: "Safe travels! Ines", "... Chase |
# Support Team".
# ... or after kisses: "thank you so much for sorting it x Gemma".
_TRAILING_NAME = lazy_compile(
    rf"(?<=(?:[.!?…\p{{So}}]|(?<![\p{{L}}\p{{M}}])x{{1,3}})[ \t]++)(?P<name>{_NAME})[ \t]*+\Z"
)
# ... with its team, a signature: "... Chase | Support Team".
_TRAILING_SIGNATURE = lazy_compile(
    rf"(?<=[.!?…\p{{So}}][ \t]++)(?P<name>{_NAME})[ \t]*+(?:\||[—–])[ \t]*+[^\n]{{1,60}}+[ \t]*+\Z"
)
_INTRODUCTION = lazy_compile(
    rf"(?:(?i:\bname[ \t]+is|\bmy[ \t]+name['’]s|\bname['’]s|\bthis[ \t]+is|"
    rf"\b(?:sur|maiden[ \t]+|last[ \t]+|family[ \t]+)name[ \t]+(?:is|was|to)|"
    rf"\bi[ \t]+am|\bi['’]m|\bit['’]s|\bits|\bcall[ \t]+me|\bcalls[ \t]+me|\bsigned[ \t]*+,?|"
    rf"\bsigned[ \t]+for[ \t]+by|\bsigned[ \t]+by|\baddressed[ \t]+to|"
    rf"\bit['’]?s[ \t]+me[ \t]*+,|"
    rf"\b(?:my|our|his|her|their|['’]s)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:wife|husband|partner|son|"
    rf"daughter|colleague|friend|mother|father|mom|mum|dad|brother|sister|boss|manager|"
    rf"boy|girl|lad|lass|baby|"
    rf"kids|children|sons|daughters|twins|grandkids|"
    rf"neighbou?r|assistant|girlfriend|boyfriend|fianc[eé]e?|roommate|flatmate|housemate|"
    rf"team[ \t]+lead|supervisor|kid|child|aunt|uncle|grandma|grandpa|grandmother|grandfather|"
    # ... "the booking is under my nickname Wale".
    rf"nickname|"
    rf"grandson|granddaughter|cousin|niece|nephew|nanny|carer|cleaner|accountant|lawyer|"
    rf"landlord|landlady|tenant|coworker|co-worker|stepson|stepdaughter|in-laws?)|"
    rf"\byour[ \t]+(?:colleague|agent|rep|representative|driver|courier|technician|"
    rf"team[ \t]+member|manager|supervisor|coworker|co-worker)|"
    # "... is in my partner's name - Rhys ap Gwilym"
    rf"(?:\b(?:my|his|her|their)|['’]s)[ \t]+name[ \t]*+[-–—:])"
    # "my husband is Yerlan"
    rf"(?:[ \t]+(?i:is|was)(?=[ \t]+\p{{Lu}}))?[ \t]*+,?[ \t]*+[\"“']?)(?P<name>{_WITH_TITLE})"
)
# The people a customer names by how they are related to them.
_RELATIONS = (
    r"wife|husband|partner|son|daughter|colleague|friend|mother|father|mom|mum|dad|brother|"
    r"sister|boss|manager|kid|child|boy|girl|lad|lass|baby|aunt|aunty|auntie|uncle|grandma|"
    r"grandpa|grandson|"
    r"granddaughter|cousin|niece|nephew|girlfriend|boyfriend|fianc[eé]e?|roommate|flatmate|"
    r"housemate|neighbou?r|assistant|coworker|co-worker|stepson|stepdaughter|"
    # ... by marriage: "my mother-in-law Pilar", "my stepdad Clive".
    r"(?:mother|father|sister|brother|son|daughter)-in-law|"
    r"step(?:dad|mum|mom|father|mother|brother|sister)"
)
# A person's role before the name: "our engineer Priyanka", "the courier, Baraka,", "a man
# named Vusi", "her name was Destiny", "Previous agent (Moana)", "The flight attendant,
# Precious,", "Ticket owner was Grace".
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
    r"bartender|stylist|hairdresser|barber|physio|pharmacist|paramedic|midwife|babysitter|staff|"
    r"nanny|carer|examiner|invigilator|auditor|caseworker|case[ \t]+worker|social[ \t]+worker|"
    r"accountant|lawyer|solicitor|"
    r"attendant|caretaker|lifeguard|warden|janitor|reader|owner"
)
# A relation's name: "my stepdad Clive is", "my mother-in-law Pilar in Valencia", "our
# nephew, Ollie," (in lower case, name_cues' _LOWER_RELATION).
_RELATION_NAMED = lazy_compile(
    rf"\b(?i:my|our|his|her|their)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_RELATIONS})(?![\p{{L}}-])"
    rf"[ \t]*+,?[ \t]*+(?P<name>{_NAME})"
)
_ROLE_NAMED = lazy_compile(
    # Lower case only: "Customer Relations" is a team, "the customer, Ann" a person.
    rf"(?:\b(?:{_ROLES})(?:[ \t]+(?:who[^,\n]{{1,30}}|is|was|will[ \t]+be|named|called))?"
    rf"|\bnamed|\bcalled|\bname[ \t]+(?:was|is))"
    rf"[ \t]*+[,(]?[ \t]*+[\"“'‘]?(?P<name>{_WITH_TITLE})"
)
# At a sentence's start a role has its capital: "Engineer Sipho will call". (The sentence's
# end is matched, not looked behind for: a pattern that starts with it is fast to scan.)
_ROLE_FIRST = lazy_compile(
    # (A capitalised word is looked for before the roles: "a.a@a.a@" is scanned fast.)
    r"(?:(?m:^)|[.!?:;])[ \t]*+(?=\p{Lu}\p{Ll}+[ \t,(])"
    # ... but "Customer Success", "Client Services" are teams.
    r"(?!(?i:customer|client|guest|member|caller|buyer|seller|someone|somebody)\b)"
    rf"(?i:{_ROLES})[ \t]*+[,(]?[ \t]*+[\"“'‘]?(?P<name>{_WITH_TITLE})"
)
# Weaker places, where a company or a place stands as often as a person ("a text from
# Royal Mail", "delivered to Birmingham", "a request from Ridgeway Homes", "reassigned from
# Billing"): a run there needs more evidence (see _WEAK).
_MENTION = lazy_compile(
    rf"(?:(?i:\bask(?:ed)?|\bcalled|\bemailed|\bcontact|"
    rf"\bdeal(?:ing|t)?[ \t]+with|\bexperience[ \t]+with|"
    rf"\b(?:e-?mail|message|call|letter|note|text|reply|request|complaint|enquiry|inquiry|"
    rf"query|feedback|referral)[ \t]+from|\b(?:re)?assign(?:ed|ing)?[ \t]+(?:it[ \t]+)?from|"
    rf"\b(?:gave|given|handed)[ \t]+(?:it|them|the[ \t]+\p{{Ll}}+)[ \t]+to|\bcc|"
    rf"\bwith[ \t]+the[ \t]+help[ \t]+of|\bdelivered[ \t]+to|"
    rf"\b(?:re)?assign(?:ed|ing)?[ \t]+(?:it[ \t]+)?to|\btransferr?(?:ed|ing)?[ \t]+to|"
    rf"\bpass(?:ed|ing)?[ \t]+(?:it[ \t]+|this[ \t]+)?(?:on[ \t]+)?to|"
    rf"\bescalat(?:e|ed|ing)[ \t]+(?:it[ \t]+)?to)"
    rf"[ \t]*+,?[ \t]*+[\"“'‘]?)(?P<name>{_WITH_TITLE})"
)
# Places only a person fills: "I spoke to Summer and Autumn", "told by Yevgenia on the phone",
# "Tell Hope I said thanks". A word there is a name when it is a given name or surname, even
# an English word, or no English word at all (see _PERSON).
_PERSON_MENTION = lazy_compile(
    rf"(?:(?i:\bspoke[ \t]+(?:to|with)|\bspeaking[ \t]+(?:to|with)|"
    rf"\btalk(?:ed|ing)?[ \t]+(?:to|with)|\bchatt(?:ed|ing)[ \t]+(?:to|with)|"
    rf"\bask(?:ed|ing)?[ \t]+for|\bhanded[ \t]+(?:it[ \t]+)?to|"
    rf"\btold[ \t]+by|\btell|\bspeak[ \t]+(?:to|with)|\bsay[ \t]+(?:hi|hello|thanks)[ \t]+to|"
    rf"\bshout[ \t-]?out[ \t]+to|\b(?:approved|authori[sz]ed|helped|served|seen|visited|"
    rf"sorted|signed[ \t]+off|escalated|raised|logged|reviewed|requested|created|opened|"
    rf"closed|resolved|reported|submitted|refunded|cancell?ed|updated|assigned|"
    # "handled by Melody", "set up by Christian", "promised by Dean", "I never go by Bob".
    rf"handled|mentioned|promised|set[ \t]+up|arranged|recommended|referred|quoted|"
    rf"looked[ \t]+after|lodged|filed|go(?:es)?)[ \t]+by|\bagreed[ \t]+with|\bregistered[ \t]+to|"
    rf"\bsign(?:ing|ed|s)?[ \t]+as|"
    rf"\bcheck(?:ed)?[ \t]+with|\bconfirm(?:ed)?[ \t]+with|\bre-?booked[ \t]+(?:w/|with)|"
    # "I'll forward this to Nkechi", "put him through to Beth".
    rf"\bforward(?:ed|ing)?[ \t]+(?:it|this|that|these|them)[ \t]+to|"
    rf"\bput[ \t]+(?:him|her|them|me|it)[ \t]+through[ \t]+to|"
    rf"\bexplained[ \t]+(?:\p{{Ll}}+[ \t]+)?to|\bthan|\bon[ \t]+behalf[ \t]+of|\bthanks[ \t]+to|"
    # "messaged Rose on here", "taking over from Jack", "leave it with Kalani at no. 9",
    # "Forwarded from Lucy:", "Order placed by Ibrahim Sow".
    rf"\bmessag(?:ed|ing)|\bping(?:ed)?|\b(?:tak(?:e|ing)|took|hand(?:ed|ing)?)[ \t]+over[ \t]+"
    rf"(?:from|to)|\b(?:leave|left|leaving)[ \t]+(?:it[ \t]+|them[ \t]+|the[ \t]+\p{{Ll}}+[ \t]+)?"
    rf"with|\b(?:forward(?:ed|ing)?|fwd)[ \t]+from|\bconnected[ \t]+(?:you[ \t]+)?(?:to|with)|"
    # "You are now connected to Rosa", "Fwd from Joy:"
    rf"\b(?:placed|ordered|bought|purchased|booked|collected|issued)[ \t]+by"
    # (Not a date: "booked by June".)
    rf"(?![ \t]+(?:April|May|June|August)\b))"
    rf"[ \t]*+,?[ \t]*+[\"“'‘]?)(?P<name>{_WITH_TITLE})"
)
# "Kindly ask Olamide to resend it", "let Hannelore know", "Can Oluwaseun call me back?",
# "Can Ivy confirm ...?"
_ASKED = lazy_compile(
    rf"(?:\b(?i:ask|asked|tell|told|get|have|let)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:to|know)\b)"
    # ... "Sorry, who is Victor?", "I'd like to thank Destiny for sorting it".
    rf"|\b(?i:who['’]s|who[ \t]+is|who[ \t]+was)[ \t]+(?P<name>{_NAME})(?=[ \t]*+\?)"
    rf"|\b(?i:thank|thanked|thanking)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:for)\b)"
    # ... "switch my appointment from Penny to another vet".
    rf"|\b(?i:from)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:to[ \t]+(?:another|a[ \t]+different|"
    rf"a[ \t]+new)[ \t]+(?:{_ROLES}))\b)"
    # ... "Is it possible for Miles to use his air miles?", "ok for Ezra to attend".
    rf"|\b(?i:for)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:to[ \t]+(?:use|attend|collect|access|sign|"
    r"join|log[ \t]+in|pick[ \t]+up|see|speak|call|have|be[ \t]+added))\b)"
    rf"|\b(?i:can|could|will|would|did|does|has|should|if)[ \t]+(?P<name>{_NAME})"
    # ... "Can Dawn or Drew call me back?", "can Oisín be added as a named driver?"
    rf"(?=(?:[ \t]+(?:or|and|&)[ \t]+{_NAME})?[ \t]+(?i:please[ \t]+|ever[ \t]+)?"
    r"(?i:call|ring|phone|e-?mail|text|message|get[ \t]+back|reply|respond|send|pick|collect|"
    r"sign|be[ \t]+added|be[ \t]+named|confirm|check|explain|advise|approve|"
    # ... "Can Summer get the same discount as me?"
    r"get[ \t]+(?:the|a|an|my|her|his|their)|have[ \t]+(?:the|a|an|my|her|his|their)|"
    r"use[ \t]+(?:my|our|the|her|his|their))\b))"
)
# "Booked under Nakamura", "a table under the name of Okafor".
_BOOKED_UNDER = lazy_compile(
    r"(?:\b(?i:book(?:ed|ing)?|reserv(?:ed|ation)|register(?:ed)?|account|order|table|room)"
    r"(?:[ \t]+(?i:is|was)|['’]s)?[ \t]+(?i:under|for)[ \t]+"
    r"(?i:the[ \t]+name[ \t]+(?:of[ \t]+)?)?"
    # "the account is in the name of Olusegun Adeyinka-Cole", "The booking for the restaurant
    # is under Sterling"
    r"|\b(?i:in[ \t]+(?:the[ \t]+|my[ \t]+|his[ \t]+|her[ \t]+)?name[ \t]+of)[ \t]+"
    r"|\b(?i:is|was|it['’]s)[ \t]+(?i:under)[ \t]+(?i:the[ \t]+name[ \t]+(?:of[ \t]+)?)?)"
    rf"['‘\"“]?(?P<name>{_WITH_TITLE})"
)
# "@sarah can you check?": a chat handle names its person. (Not an e-mail's "@": a letter
# or a dot stands before that one.)
_HANDLE = lazy_compile(r"(?<![\p{L}\p{N}._%+-])@(?P<name>\p{L}[\p{L}\p{N}_.-]{1,30}+)(?<![.-])")
# "is Chase working today?", "is Jade there?", "Is Ivy still on shift?"
_PRESENCE = lazy_compile(
    rf"\b(?i:is|was)[ \t]+(?P<name>{_NAME})[ \t]+(?=(?i:working|there|in[ \t]+today|"
    r"on[ \t]+(?:shift|today|duty)|around|back|off[ \t]+today|still[ \t]+(?:handling|dealing|"
    r"looking[ \t]+after|working|on[ \t]+(?:shift|duty|leave|holiday)|there|around|in[ \t]+charge|"
    # ... "Is Mark still on the team?", "is Pat still off sick?"
    r"with[ \t]+(?:you|the[ \t]+company)|on[ \t]+the[ \t]+team|off[ \t]+sick))\b)"
)
# "Sky was super helpful", "Ji-hoon was the best agent".
_PRAISED = lazy_compile(
    # (The capital first: a pattern that opens with lookbehinds is slow to scan.)
    rf"(?=\p{{Lu}})(?:(?<=^|[.!?:;,—–(\"“][ \t]*+|\n[ \t]*+)"
    rf"|(?<=(?<![\p{{L}}\p{{M}}])\p{{Ll}}++[ \t]+))(?P<name>{_NAMES})[ \t]++"
    r"(?=(?:was|has[ \t]+been)[ \t]+(?:(?:so|really|super|very|extremely|incredibly|"
    r"absolutely)[ \t]+)?(?:helpful|great|amazing|lovely|kind|brilliant|fantastic|patient|rude|"
    r"unhelpful|wonderful|awesome|excellent|a[ \t]+star|a[ \t]+lifesaver|the[ \t]+best)\b"
    # ... "Mark did a fantastic job", "Iris is off today", "Ray is my husband", "Rose and I
    # both have accounts", "Kirra Anderson is authorised on our account".
    r"|did[ \t]+(?:a|an|such[ \t]+a)[ \t]+(?:\p{Ll}+[ \t]+)?job\b"
    r"|is[ \t]+(?:off|away|out|on[ \t]+(?:leave|holiday|annual[ \t]+leave))[ \t]+"
    r"(?:today|sick|this[ \t]+week|until|till|for)\b"
    rf"|is[ \t]+my[ \t]+(?:{_RELATIONS})\b|and[ \t]+I(?=[ \t'’])"
    r"|is[ \t]+(?:now[ \t]+)?(?:authori[sz]ed|allowed|permitted|the[ \t]+account[ \t]+holder)\b)"
)
# "Will said he'd call", "Grace said it was with the warehouse": a name that speaks, even one
# that is an English word. (Companies say things too, "Evri says": their names are no
# given names or surnames, which _PERSON asks for.)
_SAID = lazy_compile(
    rf"(?=\p{{Lu}})(?:(?<=^|[.!?:;,—–(\"“][ \t]*+|\n[ \t]*+)|(?<=\p{{Ll}}[ \t]+))"
    rf"(?P<name>{_NAMES})[ \t]++"
    r"(?=(?:said|told|promised|mentioned|assured|insisted|explained|reckons|reckoned|swore)\b)"
)
# Pronouns after a name: "Xiaoming Li (she/her)", "River (they/them)".
_PRONOUNED = lazy_compile(
    rf"(?P<name>{_NAME})[ \t]*+\((?i:she|he|they|ze|xe)[ \t]*+/[ \t]*+(?i:her|hers|him|his|them|"
    r"theirs|zir|xem)\)"
)
# A message's header or a ticket's field that only a person fills: "From: Eun-ji Choi <...>",
# "CC: Marguerite, Theo", "Customer: Haruto Sato", "Signed: Patrick O'Sullivan-Reyes", "-
# Previous agents: Amos, Priya S.".
_PERSON_FIELD = lazy_compile(
    r"(?m)^[ \t]*+(?:[-*•][ \t]*+)?(?i:(?:previous|current|new|original|other|assigned|lead)"
    r"[ \t]+)?(?i:from|to|cc|bcc|signed|customers?|clients?|callers?|agents?|assignee|"
    r"assigned[ \t]+to|(?:requested|reported|raised|submitted|approved)[ \t]+by|"
    rf"preferred[ \t]+name|nickname)[ \t]*+:[ \t]*+(?P<name>{_NAME})(?![\p{{L}}\p{{M}}])"
)
# A chat transcript's speaker with a team: "Rich (Support): Sorry for the wait!".
_SPEAKER = lazy_compile(
    rf"(?m)^[ \t]*+(?P<name>{_NAME})[ \t]*+\([^)\n]{{1,30}}+\)[ \t]*+:(?=[ \t])"
)
# "Olumide said ...", "Nkechi confirmed ...": a name reporting or doing what people do.
_REPORTED = lazy_compile(
    rf"(?=\p{{Lu}})(?:(?<=^|[.!?:;,—–(\"“][ \t]*+|\n[ \t]*+)|(?<=\p{{Ll}}[ \t]+))"
    rf"(?P<name>{_NAMES})[ \t]++"
    r"(?=(?:said|says|confirmed|told|promised|mentioned|e-?mailed|called|rang|wrote|explained|"
    r"agreed|answered|replied|thinks|thought|signed|approved|sent|messaged|texted|dealt|helped|"
    r"offered|assured|insisted|advised|suggested|arranged|booked|processed|handled|joined|"
    r"reports|reported|requests|requested|asks|wants|needs|complained|noticed)\b)"
)
# "Victor has the original receipt", "Rose signed for the parcel", "Mele will call you",
# "Mikey who did my measurements": a name doing what people do, even one that is an English
# word. (Shops and brands do some of it too, "Evri will call": their names are in no list
# of names, which _PERSON asks for.)
_ACTS = lazy_compile(
    rf"(?=\p{{Lu}})(?:(?<=^|[.!?:;,—–(\"“][ \t]*+|\n[ \t]*+)|(?<=\p{{Ll}}[ \t]+))"
    rf"(?P<name>{_NAME})[ \t]*+"
    # ... or the person a clause tells of: "from Stephen, who has left the company".
    r"(?=,?[ \t]*+who\b"
    r"|(?:will|would|can|could|should)[ \t]+(?:please[ \t]+)?(?:call|ring|phone|collect|pick|"
    r"drop|follow[ \t]+up|sign|come|meet|bring|e-?mail|text|get[ \t]+back|take[ \t]+(?:the|"
    r"over|it|them|care)|handle|cover|be[ \t]+(?:home|in|at|there|around|back|added))\b"
    # ... "so Rose is covering", "Wade can take the refunds".
    r"|(?:is|was|will[ \t]+be)[ \t]+covering\b"
    r"|(?:picked[ \t]+up|hung[ \t]+up|signed[ \t]+for|came[ \t]+(?:to|out|round|over|by)|"
    r"took[ \t]+(?:my|our|the)|gave[ \t]+(?:me|us|my|our)|tells[ \t]+me|told[ \t]+me|"
    r"says[ \t]+(?:he|she|they)|has[ \t]+the[ \t]+(?:original|receipt|keys?|parcel)|"
    r"had[ \t]+already|was[ \t]+(?:supposed|meant)[ \t]+to|was[ \t]+the[ \t]+one|"
    r"(?:is|was|wasn['’]t|isn['’]t)[ \t]+(?:not[ \t]+)?home|"
    # ... away from work: "If Pat is still off sick", "as Sue is on leave".
    r"(?:is|was)[ \t]+(?:still[ \t]+)?"
    r"(?:off[ \t]+sick|on[ \t]+(?:sick[ \t]+|annual[ \t]+)?leave))\b"
    # ... or a pronoun picks it up: "I gave the key to Hope, she's home all day".
    r"|,[ \t]*+(?:she|he)(?:['’](?:s|ll|d)|[ \t]+(?:is|was|will|has|had|said|says))\b)"
)
# A name beside what the person is to someone: "Frank, the installer, left a mess", "Sunny,
# our nanny, will be home", "Chase (my husband) will call", "Grandad (Walter Hughes)", "I
# (Sana)".
_APPOSED = lazy_compile(
    rf"(?<![\p{{L}}\p{{M}}'’-])(?P<name>{_NAME})[ \t]*+(?=,[ \t]*+(?:my|our|your|his|her|"
    rf"their|the)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_RELATIONS}|{_ROLES})[ \t]*+,|\([ \t]*+(?:my|"
    rf"our|your|his|her|their|the)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_RELATIONS}|{_ROLES})[ \t]*+\))"
    rf"|(?:\b(?i:{_RELATIONS}|grand(?:ad|dad|ma|pa|mother|father)|granny|nan|nana)|\bI)"
    rf"[ \t]*+\([ \t]*+(?P<name>{_NAME})[ \t]*+\)"
    # ... "I'm Oyelaran's wife — Bisola — calling about ..."
    rf"|\b(?i:{_RELATIONS})[ \t]*+[—–][ \t]*+(?P<name>{_NAME})[ \t]*+(?=[—–,])"
    # ... or its role after "the", without commas: "Jordan the agent booked me".
    # (Not "Will the courier need ID?", "Hope the plumber can come": the role does something.)
    rf"|(?<![\p{{L}}\p{{M}}'’-])(?P<name>{_NAME})[ \t]++(?=the[ \t]++(?:{_ROLES})[ \t]++"
    r"(?:\p{Ll}{3,}(?<!e)ed|is|was|has|had|said|told|took|gave|sent|left|came|did|kept|put)\b)"
)
# "Bex (Rebecca) said she'd sort it": a short name and the full one, both names (not a
# relation's: "Mum (Bridget)", _APPOSED). Scanned only in a text with a bracket.
_BRACKETED = lazy_compile(
    rf"(?=\p{{Lu}}[\p{{L}}\p{{M}}'’-]*+[ \t]*+\()(?<![\p{{L}}\p{{M}}'’-])"
    rf"(?!(?i:{_RELATIONS}|{_ROLES}|grand\p{{Ll}}+|granny|nan|nana)\b)"
    rf"(?P<name>{_WORD})(?=[ \t]*+\([ \t]*+{_WORD}[ \t]*+\))"
    rf"|(?=\p{{Lu}})(?<=\p{{Lu}}[\p{{Ll}}\p{{M}}'’-]*[ \t]*\([ \t]*)(?P<name>{_WORD})(?=[ \t]*+\))"
)
# Names together that only people are: "Grace and Will both", "Ruby Chen and Victor Ramos
# were both on the call", "Victor and Victoria are twins", "Rose, Lily and Daisy — my three
# girls"; the first is taken here, the others beside it (name_cues.listed_with).
_TOGETHER = lazy_compile(
    rf"(?<![\p{{L}}\p{{M}}'’-])(?P<name>{_NAME})(?=(?:[ \t]*+,[ \t]*+{_NAME})*+[ \t]++"
    rf"(?:and|&|or)[ \t]++{_NAME}[ \t]*+(?:(?:(?:are|were|will|to|can|could)[ \t]+)?"
    # (Not "Sage and Slate are both out of stock": colours.)
    r"(?:both|all|twins)\b(?![ \t]+(?:out|in[ \t]+stock|sold|available|back|discontinued))"
    rf"|[—–(,][ \t]*+(?:my|our)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_RELATIONS}|"
    r"girls|boys|kids|children|sons|daughters|twins)\b)"
    # ... or with their own relation: "Maia and her friend Ruby", "Tom and his wife".
    rf"|[ \t]++(?:and|&)[ \t]++(?:her|his|their)[ \t]+(?:\p{{Ll}}+[ \t]+)?(?:{_RELATIONS})\b"
    # ... or with the writer or the writer's people: "the flights for Will and me",
    # "Lorraine and the kids sat on the hard shoulder".
    r"|[ \t]++(?:and|&)[ \t]++(?:me|myself|(?:the|my|our)[ \t]+(?:kids|children|boys|girls|"
    r"twins|baby|family))\b)"
)
# "Maria in your returns department", "Dawn from your team", "Zhou Min at the front desk".
_TEAM_MEMBER = lazy_compile(
    rf"(?P<name>{_NAMES})[ \t]++(?:from|in|at|on|of)[ \t]++(?:(?:the|your|our)[ \t]++)?"
    r"(?:[\p{L}-]++[ \t]++){0,2}?(?i:team|department|dept|desk|billing|accounts|dispatch|"
    r"returns|support|service|warehouse|store|shop|office|chat|live[ \t]+chat|phone|sales|"
    r"repairs|reception|shift|branch|counter|helpdesk|care|pop-up[ \t]+store|front[ \t]+desk|"
    r"payments|escalations|collections|claims|complaints|renewals|bookings|reservations|finance|"
    r"onboarding|call[ \t]+cent(?:re|er)|phones?|e-?mails?|depot|next[ \t]+door|"
    # ... "Ashok from the vendor side" (not "Jack on the side of the speaker").
    r"(?<=\bfrom[ \t]+(?:the|your|our|their)[ \t]+\p{Ll}+[ \t]+)side)\b"
    # ... where a neighbour or a tenant lives: "Lakshmi in flat 3", "Dawn from number 9".
    rf"|(?P<name>{_NAMES})[ \t]++(?:from|in|at)[ \t]++(?i:flat|apartment|apt|number|room|unit|"
    r"house)[ \t]+(?=\d)"
)
# "Tomás speaking" / "Sam here" / "Ahmed from the warehouse team".
_SELF_NAMED = lazy_compile(
    rf"(?:(?<=[,.!?:;—–-][ \t]*+)|(?m:^)[ \t]*+)(?P<name>{_NAME})[ \t]++"
    rf"(?=(?i:speaking|here\b)|(?i:from[ \t]+)(?:(?i:the|our|support|customer)\b|\p{{Lu}}))"
)
# A lower-case word joined to digits is part of a code, not a name: "my order jo-212655",
# "parcel sam/4471" (an order number's prefix was stored as "[NAME]-212655").
_NO_CODE_AFTER = r"(?![-–/_.#]?\p{N})"
# A lower-case name given on purpose in chat: "my name is sam", "name's priya".
_LOWER_INTRODUCTION = lazy_compile(
    # (... "her names violet harper", "name on it is ryan o'connor".)
    r"(?i:\bname[ \t]+is|\b(?:my|his|her|their)[ \t]+name['’]?s|\bname['’]s|"
    r"\bname[ \t]+on[ \t]+(?:it|the[ \t]+\p{Ll}+)[ \t]+is)[ \t]++"
    rf"(?P<name>\p{{Ll}}[\p{{L}}\p{{M}}]{{1,20}}+)(?![\p{{L}}\p{{M}}]){_NO_CODE_AFTER}"
)
# A name typed in lower case in chat ("hi im sam", "hey priya"): taken only when the word is
# a given name and no English word, which only the lexicon can tell.
_LOWER_NAMED = lazy_compile(
    r"(?i:\b(?:hi|hey|hello|hiya|yo|thanks|thx|ty|cheers|dear|im|i['’]m|i[ \t]+am|this[ \t]+is|"
    r"its|it['’]s|call[ \t]+me|calls[ \t]+me|name[ \t]+is|name['’]?s|(?:my|our)[ \t]+\p{Ll}+|"
    # "pls tell tyler", "ask dustin to check", "other than kevin", "it's me, rosa".
    r"tell|ask|speak[ \t]+(?:to|with)|spoke[ \t]+(?:to|with)|talk(?:ed|ing)?[ \t]+(?:to|with)|"
    r"than|me(?=,)|(?:your|ur|the)[ \t]+(?:agent|engineer|tech|driver|courier|rep))\b"
    r"|(?:thanks|thx|ty|cheers|thank[ \t]+you)[^\n\p{L}]*+(?:a[ \t]+lot|so[ \t]+much)?[!.,]*+\n)"
    r"[ \t]*+[,!.]*+[ \t]*+"
    r"(?P<name>\p{Ll}[\p{L}\p{M}]{1,20}+)"
    rf"(?![\p{{L}}\p{{M}}]){_NO_CODE_AFTER}"
)
# "is brianna there?"
_LOWER_PRESENCE = lazy_compile(
    r"\b(?i:is|was)[ \t]+(?P<name>\p{Ll}[\p{L}\p{M}]{1,20}+)[ \t]+(?=(?i:working|there|"
    r"in[ \t]+today|on[ \t]+(?:shift|today|duty)|around|back|available|free)\b)"
)
# A colleague spoken to at the start of a chat line: "jenny is it ok to", "sky pls check".
_LOWER_OPENING = lazy_compile(
    r"(?m:^)[ \t]*+(?P<name>\p{Ll}[\p{L}\p{M}]{1,20}+)(?:,[ \t]*+|[ \t]++)"
    r"(?=(?i:is[ \t]+it[ \t]+ok|pls|plz|please|r[ \t]+u|im|i['’]m|"
    r"(?:can|could|are|did|have)[ \t]+(?:you|u))\b)"
)
# "lol thanks mark you're a legend", "no worries jess", "thank u dolores ❤️".
_LOWER_ADDRESSED = lazy_compile(
    rf"{_ADDRESS_LEAD}(?P<name>\p{{Ll}}[\p{{L}}\p{{M}}]{{1,20}}+)(?![\p{{L}}\p{{M}}]){_NO_CODE_AFTER}"
    rf"(?=[ \t]*+(?P<you>(?i:you|you['’](?:re|ve|ll|d)|u|ur|your)\b)?){_ADDRESSED_END}"
)
_TITLED = lazy_compile(
    rf"\b(?:(?i:mr|mrs|ms|miss|mx|dr)|Prof|Professor|Major|Captain|Capt|Colonel|Col|Sergeant|"
    rf"Sgt|Lieutenant|Lt|Rev|Revd|Reverend|Father|Fr|Sister|Dame|Sir|Judge|Councillor|Cllr|"
    # ... and a relation's, written as a title: "a present for Auntie Folake".
    rf"Auntie|Aunty|Aunt|Uncle|Grandma|Grandpa|Granny|Nana)"
    rf"\.?[ \t]+(?P<name>{_TITLED_NAME})"
)

# Words that fill a name's slot in those places without being anybody's name; festivals
# and voice assistants too, that lists of given names hold ("Diwali", "Siri", "Alexa"):
# in running text they are the festival or the product, and a greeting still takes a given
# name among them ("Hi Alexa,"); thanks in other languages that the broad list holds
# ("Merci, but ..."), and "Kia" of the Māori greeting "Kia ora" (and a car maker).
NOT_NAMES = frozenset(
    """
    there all everyone everybody team folks guys gals people support sir madam sirs madams
    friend friends customer customers again both you y'all yall colleagues members care
    service services staff crew department desk help helpdesk center centre admin admins
    agent agents representative rep folks world guest guests member partner partners it this
    that he she they we us i me my your our their his her its them him the a an and or but so am is
    are was were be been being do does did have has had will would can could shall should
    may might must not no yes ok okay sure great good fine well thanks thank please just
    also still only very really now then here today tomorrow yesterday soon later morning
    afternoon evening night day week weekend monday tuesday wednesday thursday friday
    saturday sunday january february march july september october november december sorry
    happy glad excited afraid unable able going trying writing calling following looking
    wondering hoping waiting checking contacting reaching asking back home out in on at from
    with about for by over up down off away order orders account refund return returns shipping
    delivery package parcel item items product products regards best cheers sincerely warmly
    hiya heya howdy hallo hola yo hey hi hello welcome ok okay lol omg thx pls plz ty mate buddy man
    dude bro babe hun honey love dear darling sweetie boss pal lads ladies gents someone
    somebody anyone anybody nobody noone anything anytime anywhere anyhow everything
    everywhere something somewhere somehow nothing nowhere whatever whenever wherever whoever
    devs peeps fam bruv bruh homie cuz fella fellas ppl legend legends champ chief tho btw
    alot heaps mine yours hers ours theirs where when what which who whose why how ive im id
    youre theyre dont cant wont isnt didnt doesnt wasnt thats whats these those other others
    among else even ever hence less many nor per since thru via see seem made
    if unless because although though whether
    christmas xmas easter diwali deepavali eid hanukkah chanukah ramadan thanksgiving
    halloween passover hogmanay navratri
    alexa siri cortana bixby
    merci gracias danke grazie obrigado obrigada kia
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
    (_SAID, "mention"),
    (_PRONOUNED, "mention"),
    (_PERSON_FIELD, "mention"),
    (_SPEAKER, "mention"),
    (_ACTS, "mention"),
    (_APPOSED, "mention"),
    (_BRACKETED, "mention"),
    (_TOGETHER, "mention"),
    (_RELATION_NAMED, "mention"),
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
        _SAID,
        _PERSON_FIELD,
        _SPEAKER,
        _ACTS,
        _APPOSED,
        _BRACKETED,
        _TOGETHER,
        _RELATION_NAMED,
    }
)
