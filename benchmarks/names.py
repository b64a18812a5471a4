"""Name detection on a labelled set of support messages (issue 18): recall and false scrubs.

    python benchmarks/names.py            # prints a table, writes benchmarks/results/names.json
    python benchmarks/names.py fourth     # only the named set(s)
    python benchmarks/names.py fourth --data /elsewhere   # its files in another folder

Each labelled set is a pair of files under ``benchmarks/data/``: support messages with the
people's names they contain (greetings, sign-offs, introductions, running text), every one
of which must be scrubbed, and messages with capitalised words that are no one's name
(products, places, months, "Will it ...", team sign-offs), where nothing may be scrubbed.
Each set was written by someone who had read neither the detector nor the other sets:

* ``first``: the rules were developed while reading its misses;
* ``second``: measured once untouched (recall 0.825, 3.3% of non-name messages scrubbed),
  then its misses were read too;
* ``third``: measured once untouched (recall 0.865, 1.1% scrubbed), then its misses were
  read too, when the lexicon grew and the rules for names spoken to and mentioned came;
* ``fourth``: written (375 + 415 messages) by someone who had seen none of the code or
  the other sets, and never read while the detector was changed: the honest figure
  (recall 0.848, 1.7% of non-name messages scrubbed, after the third set's rules; its
  summary was seen once midway, at 0.827). Its misses were read afterwards: ALL-CAPS
  and lower-case names, and names that are also words (Will, Summer, Amber, Chase); then
  shouted lines came to be read in title case (0.865), and general cues came (a given name
  spoken to before a comma, lower-case names after a relation, role, title or greeting or
  signing alone, names listed beside a name found, names in capitals in ordinary lines):
  0.930, still 1.7% scrubbed; first, second and third then 0.990, 0.984, 0.982 (0.8%,
  1.1%, 1.1%).
* ``fifth``: written (391 + 414 messages) by someone who had seen none of the code or the
  other sets, stressing the fourth set's kinds of misses; only its summary rows were read:
  recall 0.844 (1.7% of non-name messages scrubbed) before the general cues, 0.869 (1.9%)
  after them. A cue tried next, treating words WordNet knows only as proper nouns
  ("Ibrahim", "Helen") as no English word, gave 0.884 but 2.7% scrubbed, over the 2% the
  product allows, and was not taken. Its misses were read afterwards (names that speak or
  act, "Will said", "Rose and I", "Ray is my husband"; header fields, "From: Eun-ji Choi";
  lower-case names after "thanks" or "a lady called"): 0.942, still 1.9% scrubbed.
* ``sixth``: written (540 + 477 messages) by someone who had seen none of the code or the
  other sets, two thirds of its names in running text, many of them English words ("Hope",
  "June", "Wade"). Measured once after the fifth set's cues: recall 0.839, 3.4% of
  non-name messages scrubbed (0.829 and 3.4% before them). Where a labelled name also
  stands as a word in the same message ("Rose gold one was for my daughter Rose"), every
  occurrence counts, so a few words are counted as missed names. Its misses and false
  scrubs were read afterwards. First the false scrubs, places, companies, colours and chat
  words ("Phoenix, Arizona?", "Ridgeway Homes said", "in Sage from your ... store", "Thu
  16", "Noooo"): 0.839, 0.8% scrubbed (and 0.5%, 0.7%, 0.7%, 1.0%, 1.2% on the first five,
  recall unchanged). Then the places where the sentence says a person stands, for names
  that are also words: doing what people do ("Victor has the original receipt", "Rose
  signed for", "Mele will call you", "Mikey who did ..."), beside a relation or a role
  ("Frank, the installer,", "Chase (my husband)"), together ("Grace and Summer both",
  lists followed from a name found: "Cormac, Síle and a bot"), spoken to mid-sentence, the
  broad list's names owning something ("Taini's signature") or in full names ("Summer
  Nakamura"), and a pronoun after the name ("to Hope, she's home"): 0.953, 0.8%. Last, a
  name only the broad list knows alone in running text ("a surprise for Ananya so"): 0.959,
  1.0% (2 more name-free messages scrubbed over all six sets, "says Busan.", "Closed for
  Diwali?", for 11 more names). First to fifth then 0.990, 0.989, 0.987, 0.953, 0.949
  (0.8%, 0.7%, 0.7%, 1.0%, 1.2%); three cues from the fifth set's misses then gave the
  fifth 0.957 ("my cousin amber bought", "Jack and Jill Morton", "Summer on email"), the
  others unchanged. Festivals spaCy took for persons ("Closed for Diwali?", "before Eid")
  are no names since: the sixth 0.6% scrubbed, the others unchanged. Tried and left:
  spaCy's person of a given name and a surname that are English words took colours
  ("Pearl White", "Hazel Brown", "Matt Black": 1.8% on the first set) until adjectives
  were left out.
* ``seventh``: written (540 + 518 messages, 643 names, about four in five in running text,
  38% of the named messages holding a name that is also a word) by someone who had seen
  none of the code or the other sets; titles are left out of its labels ("Dr Okeke" is
  "Okeke") and places named after people (Austin, St Helier, Madison Square Garden) are in
  its name-free half. Measured once before the sixth set's cues were merged: recall 0.813,
  2.7% of non-name messages scrubbed; once after them: **0.839, 2.7%**, the honest figure.
  Its misses and false scrubs were read afterwards. First the false scrubs (14 of 518):
  what a customer owns ("My Arlo security camera"), where a journey goes ("the flight to
  Kuala Lumpur"), a saint's town ("St Helier"), companies signing under their team
  ("Kind regards,\nDispatch\nMillbrook Depot") and voice assistants ("Siri", "Alexa"):
  0.839, 0.8% (the fourth 1.0% -> 0.7%, the others unchanged). Then the places of its
  missed names: done by someone ("handled by", "set up by", "go by"), doing what people do
  ("X would call", "Is X still on shift?", "who is X?", "thank X for"), greetings quoted in
  a message ("it shows 'Welcome back, Dave'"), roles and ranks ("The flight attendant,
  Precious,", "Major Fairclough"), a signature with its role in brackets: 0.895, 0.8%;
  names widened to their initials, double-barrelled surnames and particles ("J. Smith",
  "Faith Nwosu-Harris", "Eveline de Vries") and the recogniser's spans cut at line breaks:
  0.903; lower-case names given on purpose, with their surnames ("hey its sky,", "my dad
  (frank)", "her names violet harper", "my accountant chidi okonkwo"): 0.938; names rung,
  paid or left for another ("ring kristof on arrival", "from Penny to another vet"): 0.948;
  a passenger's name as tickets write it ("PATEL/RAJESH MR"): **0.951, 0.8%**. First to
  sixth then 0.990, 0.989, 0.987, 0.960, 0.959, 0.962 (0.8%, 0.7%, 0.7%, 0.7%, 1.2%,
  0.6%), none losing a name or scrubbing another message. Left: names that are also words
  with no cue in the sentence ("Heather should be removed", "I saw Heather on Monday",
  "Drew drew up the contract"), given names WordNet holds as proper nouns ("Ivy Chen",
  "Chen Wei"), one word in capitals ("signed for by JACKSON"), a surname before its given
  name ("Sørensen, Mette"). Tried and left: a name after "by" at a sentence's end
  ("approval by Grant.") scrubbed "covered by Denplan?"; the recogniser's person of one word
  that is a given name and an English noun ("Heather") gave 0.956 but 2.5% scrubbed.
* ``eighth``: written (540 + 520 messages, 648 names, about four in five in running text,
  18% of them also English words, 22 in lower case, 11 in capitals) by someone who had read
  none of the code or the other sets. Its name-free half holds brands named after people
  ("Ted Baker", "John Lewis", "Sue Ryder"), places named after them ("Victoria Station",
  "John Lennon Airport") and festivals. Measured once before the seventh set's misses were
  read: recall 0.876, 4.0% of non-name messages scrubbed; once after: **0.885, 3.3%**, the
  honest figure. Its false scrubs and misses were read afterwards, so it is no longer
  blind. First the false scrubs (17 of 520; 3 of them the writer's brands named after
  people, "Ted Baker", "John Lewis", "Ben & Jerry's"): companies reporting things that the
  recogniser calls persons ("Klarna says", "Ryanair says"), a lake's town ("near Lake
  Louise says"), a town's word ("Alice Springs"), a run between a determiner and a noun
  ("All Preston deliveries", "The Notting Hill carnival", "the Ted Baker wallet"), a place
  after "del" ("Puerto del Carmen"), thanks and greetings the lists hold ("Merci,", "Kia
  ora"): 0.885, 1.2% (the fifth 1.2% -> 0.7%). Then names at the head of their clause before
  what a person does, a broad-list name ("Tendai is the account owner", "Nasrin just told
  me") or a given name WordNet holds where the recogniser calls it a person ("Amir asked
  if", "I see Rebecca already offered"): 0.903 (fourth 0.964, seventh 0.953); tried first
  without the recogniser's word and with verbs in "s", it scrubbed 21 name-free messages
  over the sets ("Patience is wearing thin", "Art prints", "Hunter boots", "June is
  when"). Then relations by marriage and as titles, surnames after Mr/Ms/Dr, roles after
  "the" ("my stepdad Clive", "Auntie Folake", "Mr MacLeod asked", "Jordan the agent
  booked", "issued by Fatima"): 0.914; a name after another sentence's last word, a surname
  after an initial, a name before ", who" ("Noted. Yusra will", "'J. Okafor'", "from
  Stephen, who has left"): 0.919 (fourth 0.966, sixth 0.963); a name with its own relation
  and "forwarding from" ("Maia and her friend Ruby"): 0.922; a name away from work or still
  on a team ("If Pat is still off sick", "Is Mark still on the team?"), a broad-list name
  after a verb opening the sentence ("Adding Hyun-woo to cc"): **0.926, 1.2%**. First to
  seventh then 0.990, 0.989, 0.987, 0.966, 0.959, 0.963, 0.953 (0.8%, 0.7%, 0.7%, 0.7%,
  0.7%, 0.6%, 0.8%), none losing a name or scrubbing another message; cost per message
  unchanged (2.0 to 2.9 ms a message, as before, on a shared machine). Left scrubbed: "Ben &
  Jerry's" (a judgement call), "Levi's", "Bill's in the post", "Freddie the Frog", "booking
  for Corfu", "to Hong Kong". Left missed: names that are also words, or WordNet's, with no
  cue or no recogniser's word ("Harvey put", "rang Oscar twice", "Ali and Zara are the two
  travellers", "Grace and Hope round"), lines in capitals ("KAREN SAID"), lower-case names
  in running text ("if nadia got", "talked to hope"), names no list knows ("Roimata is
  picking up"), Vietnamese and Chinese full names ("Do Van Hai", "Xu Ming") and respellings
  ("Mohammad Alrashid").
* ``ninth``: written (540 + 520 messages, 589 names, 17% of them also English words, 27 in
  lower case, 14 in capitals, surname-first forms such as "Sørensen, Mette" and
  "KOWALSKI Jan") by someone who had read none of the code or the other sets; brands and
  places named after a full person were kept out of its name-free half, surnames that
  name brands (Hilton, Sainsbury's) and places named after people (Charlotte, Darwin) are
  in it. Measured once before the eighth set's misses were read: recall 0.862, 4.2% of
  non-name messages scrubbed; once after: **0.887, 3.8%**, the honest figure. Its misses
  and false scrubs were read afterwards, so it is no longer blind. First the false scrubs
  (20 of 520): a first line asking about what it names after a dash, read as a signature
  ("Paddington — is the Heathrow Express included?", "Easter Monday — are the pharmacies
  open?"; a note's heading still names its person: "Faith Oduya — upgrade request"), runs
  that open with words of no name judged from before their first word ("flights from
  Stockholm Arlanda"), runs of several words after "in", "at", "near" ("in Chipping
  Norton"; not "loop in Nadia Rahman"), a street's name after a role ("Lady Margaret
  Road"), a product's version ("macOS Sonoma 14.4"), a note's status ("Escalating — ...")
  and a level before its number ("escalated to Tier 2"): 0.887, 1.7% (2.1% before the
  last two). Then the places of its missed names: a given name opening a full name found
  ("Mhairi Campbell's"), double-barrelled surnames ("Grace Adeyemi-Cole"), a name spoken to
  before a colon ("Just to confirm, Hunter: your excess"): 0.901; beside the writer ("for
  Will and me", "Lorraine and the kids"), confirmed with, forwarded or put through to,
  lodged by, "from the vendor side", "Can Summer get", signing after kisses ("x Gemma"):
  0.916; lower case after "it's" or before a dash ("it's amaka,", "reza — can you"), a
  relation's name before a verb in "s" ("my nan joy keeps"), a given name capitalised
  after a conjunction before a verb in the past ("so Blessing dropped off", "and Amber
  pulled over"): 0.928; surnames first, as forms write them ("Patel, Hemant (acct ...)",
  "Haugland, Kari reported"): 0.934; a nickname, a short name beside the full one in
  brackets ("Bex (Rebecca)"), the recogniser's full name of a given name and a surname
  WordNet holds ("Tāne Walker"), a broad-list name beside such a surname ("Jiahui Chen",
  "Chen Jiahui"): 0.944; a given name opening its sentence before what a customer does
  ("Heather bought", "Rich has asked", "Faith used her points"): **0.955, 1.7%**. First to
  eighth then 0.990, 0.989, 0.987, 0.966, 0.959, 0.963, 0.954, 0.928 (0.8%, 0.7%, 0.7%,
  0.7%, 0.7%, 0.6%, 0.8%, 1.2%): none lost a name or scrubbed another message; the seventh
  gained "Sørensen, Mette", the eighth "Mohammed Al-Rashid". The rules and lexicon cost
  about 5% more a message (0.72 against 0.68 ms at best, spaCy aside, on a shared
  machine). Also fixed on the product's sample data: "My order jo-212655" was stored as
  "[NAME]-212655" (a lower-case word joined to digits is now part of a code). Tried and
  left: a broad-list word as the surname ("Maya Goldberg") took "Art Deco", "Ben Nevis",
  "Top Rated Seller"; "Street" as a street's word took "Customer Norma Street"; a surname
  before a given name that is an English word took "Austin, Texas". Left scrubbed: "Bella
  Italia voucher", "Madrid Barajas T4", "London Euston to", "Chelsea boots", "Is Bolton
  in", "Santander says", "Zara and Mango both", "Thanks Yodel", "SSO with Okta". Left
  missed: full names of WordNet's words with no cue ("Ivy Chen has", "Eilidh MacLeod
  booked", "Ji-woo Lee and Hye-jin Lee are"), names that are words after a comma or a
  colon or before a verb in "s" ("soon, Hope uses", "please: Mark has been", "and Frank
  agrees"), lower case ("dawn's order", "if nkem calls back", "cc'ing ade and tolu"),
  surnames spoken to ("released, Anderson — banks"), names no list knows ("Fetu"), Irish
  and Welsh particles ("Ó Súilleabháin", "Dylan ap Rhys"), "Precious is our new delivery
  partner", a shouted possessive ("FOR LACHLAN'S BIRTHDAY").
* ``tenth``: written (540 + 520 messages, 683 names; 82% in running text, 18% also English
  words, 42 in lower case, 20 in capitals, 17 family name first) by someone who had read
  none of the code or the other sets, from 287 + 324 sentence frames each filled about
  twice by a seeded script, so frames repeat; brands and places named after people are in
  its name-free half (Ted Baker, Victoria Station, "Jackson, Mississippi"), and titles are
  not part of a label. Measured once before the ninth set's misses were read: recall
  0.885, 4.4% of non-name messages scrubbed; once after: **0.889, 4.4%**, the honest
  figure. Reading the ninth set lifted it by 0.004 where it lifted the ninth by 0.068: the
  rules read from each set carry little to the next one.
* ``eleventh``: written (500 + 500 messages, 584 names; 80% in running text, the rest in
  e-mail headers, sign-offs, ticket fields and rotas; 23% of its named messages hold a name
  that is also an English word, 32 names in lower case, 11 in capitals, initials and
  usernames kept in a label: "Julie M.", "hamid.r", "OKEKE/EMEKA") by someone who had read
  none of the code or the other sets, each message typed by hand; ten brands named after
  people in its name-free half. Kept unread to judge the learned re-scorer of
  ``benchmarks/names_learned.py`` (the tenth was looked at twice there). Measured once on
  the detector of the tenth's row: 0.860, 2.2%. Then once, everything fixed beforehand,
  on the product with the learned tagger (``names_learned.py export``: trained on first to
  ninth, thresholds from the tenth) and the list of brands named after people: **0.932
  (544 of 584 names), 0 of 500 name-free messages touched**, the honest figure; the same
  finder without the tagger 0.860, 1.2% (6 messages; 2.2% before the brands list). The
  tagger finds 42 more names and scrubs no name-free message the rules did, but names'
  messages that lose a word of no name rise from 10.2% to 11.0%. Measured once more after
  two changes that can only scrub more (a word the tagger adds is left alone only when
  glued to digits, "JO-482913"; brands are passed over only where mentioned, and the list
  lost those that are ordinary full names): **0.932, 1 of 500 (0.2%)**. Its misses and its
  one touched message were read afterwards, so it is no longer blind, and the tagger now
  trains on it. The touched message: "Do you price match John Lewis?" (a brand left off the
  product's list on purpose: it is an ordinary full name). The 40 misses: 9 names whose
  every word was scrubbed but one by one, leaving the spaces, commas or an initial between
  them, or a handle's initial ("Ivy Bennett", "Seán Ó Murchú", "SMITH-JONES, ALAN", "S J
  ANDERSSON", "Hollis, Grant", "hamid.r"): the finder scrubbed the letters, the count here
  asks for the whole name; 3 more full names with one word under the tagger's threshold
  ("Nguyen Van An", "KHAN M", "Okafor, Chidi"); 3 names the rules found and the tagger
  vetoed ("@rob", "To: Summer", "Bill's invoice"); 5 surnames naming an account, booking or
  family ("the Kowalski account", "the Alvarez family"); 16 names that are also words with
  no cue the rules know ("Holly I think", "River has taken over", "Chase says", "Hope is
  fine with", "Summer, Autumn and Crystal are the new starters"); 4 lower-case names opening
  a chat line ("jenny is it ok", "sky pls check", "bill im logging off", "esp. gaz"). None
  was a tokenisation fault or a name the tagger could not see; none was glued to
  punctuation but the handles. Fixed in general, not row by row: the tagger's words of one
  name joined into one span and a handle's initial kept, names listed beside a word the
  tagger adds (``retrieval.names``), and the tagger trained again with the eleventh
  (``benchmarks/names_learned.py``). The first export with the two finder changes: 0.949,
  1 of 500; the second export (in-sample): **0.986 (576 of 584), 1 of 500** (John Lewis still).
  Left missed in-sample: "the Johansson booking", "the Morrison claim", "Chase says", "Can
  Faith take over", "jenny is it ok", "sky pls check", "bill im logging off", "go to
  Wren.".
* ``twelfth``: written like the eleventh (500 + 500 messages, 560 names, every message
  typed by hand by someone who had read none of the code or the other sets; e-mail
  addresses never labelled, standalone handles labelled, "FARHAN/ISLAM" two names; ten
  places and brands named after people in its name-free half). **Kept unread** to judge the
  second export of the learned tagger (trained with the eleventh, thresholds from the
  tenth) and the finder's joining and listing of the tagger's words, once, everything
  fixed beforehand: **0.975 (548 of 562 names), 6 of 500 name-free messages touched
  (1.2%)**, the honest figure (18.0% of named messages lose a word that is no name); the
  same finder without the tagger 0.925 (520), 9 of 500 (1.8%; 17.4%). Spent: the next
  change is judged on the thirteenth.
* ``thirteenth``: written blind like the twelfth (500 + 500 messages typed by hand, 575
  names; about 72% in running text; 239 names that are also English words, in 209
  messages, far more than any earlier set; 59 in lower case, 23 in capitals; ~25 brands
  and places named after people in its name-free half). **Kept unread** (its misses not
  printed or read) to judge the next change to the finder. Measured once on the finder
  of the twelfth's row with the ``JO-`` guard and ``keep_words`` honoured by the tagger:
  **0.951 (547 of 575 names), 1 of 500 name-free messages touched (0.2%)**, 11.2% of
  named messages losing a word of no name; without the tagger 0.817, 1.6%.

After the thirteenth's row, three changes were made from the read sets only (first to
twelfth; the thirteenth not run), with the tagger as shipped (not retrained). The words of
no name scrubbed in the tenth to twelfth sets' named messages were counted first (39, 55
and 94 words): titles made most of them ("Mr", "Mrs", "Ms", "Dr", "Miss": 24, 43 and 68),
then words the recogniser ran into a name ("Apparently Toby", "Asked Zanele", "Honestly
Frank", "I SPOKE TO EOIN"). A found span now holds the name only: a title before it and a
verb, adverb or small word at its edge are left out (a greeting or sign-off still drops the
title with the name, "Dear Mr Henderson," -> "Dear customer,"; a mention keeps it, "Mrs
[NAME]"), after which 6, 7 and 19 such words were left ("SON", "THREE TIMES" in shouted
lines, "Thu", "Ask", "Hon. Justice", places beside a signature). Then a surname that is no
English word before what a family holds ("the Johansson booking"; "the Morrison claim"
stays missed: WordNet holds Morrison), and a lower-case given name that is no verb or
adjective opening a chat line before what is asked of it or asked after ("jenny is it ok
to", "is ken available"). The product, first to twelfth: recall 1.000, 0.998, 0.997, 1.000,
0.998, 0.997, 0.992, 0.998, 1.000, 0.980, **0.990** (0.986 before), **0.977** (0.975);
named messages over-scrubbed **0.5%, 1.5%, 1.5%, 2.7%, 2.0%, 3.5%, 1.7%, 2.4%, 1.5%, 0.7%,
1.4%, 3.4%** (4.9%, 12.9%, 8.5%, 10.9%, 10.7%, 7.4%, 16.7%, 8.9%, 3.7%, 6.1%, 10.6%, 18.0%
before); name-free messages touched unchanged (0.5%, 0.0%, 0.7%, 0.2%, 0.0%, 0.4%, 0.2%,
0.8%, 0.6%, 1.5%, 0.2%, 1.2%): no name lost and no name-free message touched on any read
set. Of the sample's 1,670 agent messages scrubbed as the product does, none changed (nor
any of its 1,546 customer messages, before the last small change). Tried and left: any
English word at a span's edge ("Whitman", "Sow", "Yamamoto", "Fang" are WordNet's words and
surnames: 7 names lost on the first three sets); any word but a verb's past opening a run
of three words ("Do Van Hai") or one the broad list holds ("Mere Tāwhiri", "Gift Moyo"): 3
names lost on the fifth, sixth and eighth. Left: "sky pls check", "bill im logging off"
(words first), "Chase says", "Can Faith take over", "the Morrison claim". **Judged once on
the thirteenth**, everything committed, its misses again not printed: **0.958 (551 of 575
names; 0.951 before), 1 of 500 name-free messages touched (0.2%, unchanged), 3.0% of named
messages losing a word of no name (11.2% before)**; without the tagger 0.826, 1.6%. Run
twice now, its misses still unread: it stays reserved for the next change.

Each way of finding names is measured alone and combined:

* recall: the share of labelled names whose every character a found span covers;
* names sentences over-scrubbed: sentences where a span covers a word of no labelled name;
* non-names scrubbed: the share of non-name sentences where anything is found, and the
  share of their capitalised words found.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import regex

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from retrieval.name_tagger import NameTagger
from retrieval.names import NameFinder, NameSpan

DATA = Path(__file__).resolve().parent / "data"
SETS = {
    "first": ("names_labelled.jsonl", "non_names_labelled.jsonl"),
    "second": ("heldout_names_labelled.jsonl", "heldout_non_names_labelled.jsonl"),
    "third": ("final_names_labelled.jsonl", "final_non_names_labelled.jsonl"),
    "fourth": ("fourth_names_labelled.jsonl", "fourth_non_names_labelled.jsonl"),
    "fifth": ("fifth_names_labelled.jsonl", "fifth_non_names_labelled.jsonl"),
    "sixth": ("sixth_names_labelled.jsonl", "sixth_non_names_labelled.jsonl"),
    "seventh": ("seventh_names_labelled.jsonl", "seventh_non_names_labelled.jsonl"),
    "eighth": ("eighth_names_labelled.jsonl", "eighth_non_names_labelled.jsonl"),
    "ninth": ("ninth_names_labelled.jsonl", "ninth_non_names_labelled.jsonl"),
    "tenth": ("tenth_names_labelled.jsonl", "tenth_non_names_labelled.jsonl"),
    "eleventh": ("eleventh_names_labelled.jsonl", "eleventh_non_names_labelled.jsonl"),
    "twelfth": ("twelfth_names_labelled.jsonl", "twelfth_non_names_labelled.jsonl"),
    "thirteenth": ("thirteenth_names_labelled.jsonl", "thirteenth_non_names_labelled.jsonl"),
}
# Blind sets kept unread for the next change to be judged on, once: run only when named.
RESERVED = {"thirteenth"}
RESULTS = Path(__file__).resolve().parent / "results"
PRODUCT = "rules + lexicon + spaCy + learned tagger (product)"
_CAPITALISED = regex.compile(r"\b\p{Lu}[\p{L}'’-]*")


def load(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def locate(name: str, folders: list[Path]) -> Path | None:
    """The first of ``folders`` that holds the file ``name``."""
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def name_positions(text: str, names: list[str]) -> list[tuple[int, int]]:
    """Every occurrence of every labelled name; where a name also stands inside a longer
    labelled name, the longer one's occurrence counts."""
    spans: list[tuple[int, int]] = []
    for name in sorted(names, key=len, reverse=True):
        for match in regex.finditer(rf"(?<!\p{{L}}){regex.escape(name)}(?!\p{{L}})", text):
            if not any(s <= match.start() and match.end() <= e for s, e in spans):
                spans.append(match.span())
    return spans


def covered(span: tuple[int, int], found: list[NameSpan]) -> bool:
    start, end = span
    return all(any(f.start <= i < f.end for f in found) for i in range(start, end) if i < end)


def over_scrubbed(text: str, found: list[NameSpan], names: list[tuple[int, int]]) -> bool:
    """Whether a found span covers a letter of a word that belongs to no labelled name."""
    for f in found:
        for i in range(f.start, f.end):
            if text[i].isalpha() and not any(s <= i < e for s, e in names):
                return True
    return False


def measure(finder: NameFinder, named: list[dict[str, Any]], plain: list[dict[str, Any]]) -> dict:
    started = time.perf_counter()
    found_named = finder.find_batch([row["text"] for row in named])
    found_plain = finder.find_batch([row["text"] for row in plain])
    seconds = time.perf_counter() - started
    total = hits = sentences_over = 0
    missed: list[str] = []
    for row, found in zip(named, found_named, strict=True):
        positions = name_positions(row["text"], row["names"])
        for span in positions:
            total += 1
            if covered(span, found):
                hits += 1
            else:
                missed.append(row["text"][span[0] : span[1]])
        sentences_over += over_scrubbed(row["text"], found, positions)
    false_sentences = sum(bool(found) for found in found_plain)
    capitalised = sum(len(_CAPITALISED.findall(row["text"])) for row in plain)
    false_words = sum(
        sum(1 for m in _CAPITALISED.finditer(row["text"]) if covered(m.span(), found))
        for row, found in zip(plain, found_plain, strict=True)
    )
    examples = [
        row["text"][f.start : f.end]
        for row, found in zip(plain, found_plain, strict=True)
        for f in found
    ]
    return {
        "names": total,
        "recall": hits / total,
        "named_sentences_over_scrubbed": sentences_over / len(named),
        "non_name_sentences": len(plain),
        "non_name_sentences_scrubbed": false_sentences / len(plain),
        "capitalised_non_name_words": capitalised,
        "capitalised_non_names_scrubbed": false_words / capitalised,
        "ms_per_message": 1000 * seconds / (len(named) + len(plain)),
        "missed_names": missed,
        "false_scrubs": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "sets",
        nargs="*",
        metavar="SET",
        help=f"some of {list(SETS)} (all but the reserved {sorted(RESERVED)}: name them)",
    )
    parser.add_argument(
        "--data", type=Path, help=f"a folder to look in for the sets' files before {DATA}"
    )
    parser.add_argument(
        "--show", type=int, default=0, help="missed names and false scrubs shown per set"
    )
    args = parser.parse_args()
    unknown = set(args.sets) - set(SETS)
    if unknown:
        parser.error(f"no set named {', '.join(sorted(unknown))}; the sets: {', '.join(SETS)}")
    folders = [args.data, DATA] if args.data else [DATA]
    import torch  # here, not at the top: the sets are checked before torch's seconds of import

    # One thread, as the figures in this file were taken (two cores shared with other work).
    torch.set_num_threads(1)
    # The broad list of given names is built on first use (half a minute) and kept here.
    spacy_finder = NameFinder(cache=RESULTS / "cache")
    spacy_finder.find("warm up: load the pipeline before timing")
    # The product as bot.components.name_finder builds it with the default settings
    # (retrieval.name_tagger on): the same lexicon and recogniser, the shipped tagger.
    product = NameFinder(
        recognizer=spacy_finder._load_recognizer(),
        lexicon=spacy_finder._lexicon_loaded(),
        tagger=NameTagger(),
    )
    product.find("warm up: load the tagger before timing")
    finders = {
        "rules": NameFinder(recognizer=None),
        "rules + name lexicon": NameFinder(recognizer=None, lexicon=spacy_finder._lexicon_loaded()),
        "spaCy NER alone": _ner_only(spacy_finder),
        "rules + lexicon + spaCy": spacy_finder,
        PRODUCT: product,
    }
    results: dict[str, dict[str, Any]] = {}
    print(
        "| set | detector | recall | named messages over-scrubbed | non-name messages scrubbed"
        " | capitalised non-names scrubbed | ms/message |"
    )
    print("|---|---|---|---|---|---|---|")
    chosen = args.sets or [name for name in SETS if name not in RESERVED]
    for name, (named_file, plain_file) in SETS.items():
        if name not in chosen:
            continue
        named_path, plain_path = locate(named_file, folders), locate(plain_file, folders)
        if named_path is None or plain_path is None:
            where = " or ".join(str(f) for f in folders)
            print(f"| {name} | skipped: {named_file} and {plain_file} not in {where} | | | | | |")
            continue
        named, plain = load(named_path), load(plain_path)
        results[name] = {label: measure(f, named, plain) for label, f in finders.items()}
        for label, r in results[name].items():
            print(
                f"| {name} ({len(named)}+{len(plain)}) | {label} | {r['recall']:.3f}"
                f" | {r['named_sentences_over_scrubbed']:.3f}"
                f" | {r['non_name_sentences_scrubbed']:.3f}"
                f" | {r['capitalised_non_names_scrubbed']:.4f} | {r['ms_per_message']:.2f} |"
            )
    if args.show:
        for name, by_finder in results.items():
            product = by_finder[PRODUCT]
            print(f"\n{name}: missed by the product ({len(product['missed_names'])}):")
            print("  " + ", ".join(repr(n) for n in product["missed_names"][: args.show]))
            print(f"{name}: false scrubs in non-name messages ({len(product['false_scrubs'])}):")
            print("  " + ", ".join(repr(n) for n in product["false_scrubs"][: args.show]))
    if not results:
        return
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "names.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")


def _ner_only(finder: NameFinder) -> NameFinder:
    """The same recogniser without the rules or known names."""
    recognizer = finder._load_recognizer()

    class NerOnly(NameFinder):
        def _rule_spans(self, *args: Any, **kwargs: Any) -> list[NameSpan]:
            return []

    return NerOnly(recognizer=recognizer)


if __name__ == "__main__":
    main()
