"""Whether a question stands alone: no pointing at the reading material ("the text says …") and no leaning on
something it never names ("this principle", "the system", "the old decision").

Pure functions over one question's text (no chunk, no I/O); ``filters.question_drop_reason`` calls them as the
``refers_to_context`` and ``implicit_reference`` drop reasons. A searcher never saw the chunk, so a question
that needs it to be understood finds nothing.
"""

from __future__ import annotations

import re

_CONTEXT_NOUNS = r"(?:context|text|passage|document|excerpt|chunk|snippet|paragraph|section|article|author|authors)"
# After "the <noun>", these words show the noun is the reading material itself ("what does the document
# say"), whereas any other word makes it part of a compound ("the document retention policy", "the context of
# generative AI") and the question is left alone.
_FOLLOWERS = (
    r"(?:says?|said|states?|stated|mentions?|mentioned|describes?|described|discuss(?:es)?|discussed|suggests?|"
    r"explains?|outlines?|indicates?|notes?|highlights?|defines?|lists?|provides?|provided|given|emphasi[sz]es?|"
    r"recommends?|proposes?|refers?|identif(?:y|ies)|address(?:es)?|claims?|argues?|cites?|specif(?:y|ies)|"
    r"impl(?:y|ies)|presents?|shows?|gives?|contains?|includes?|above|below|here|itself|is|are|was|were|has|have|"
    r"do|does|did|and|or|but|about|regarding|when|where|that|which)"
)
_REFERS_TO_CONTEXT = re.compile(
    "|".join(
        (
            # determiners that always point at the reading material
            r"\b(?:this|these|the given|the provided|the above|the following|the aforementioned|the present|"
            r"provided|given|above)\s+" + _CONTEXT_NOUNS + r"s?\b",
            r"\bthe " + _CONTEXT_NOUNS + r"(?=\s*(?:[?.,;:!)]|$)|\s+" + _FOLLOWERS + r"\b)",
            r"\b(?:according to|based on|as per|per|in|from|within|throughout) the " + _CONTEXT_NOUNS
            + r"(?=\s*(?:[?.,;:!)]|$))",
            r"\bthe above\b",
            r"\b(?:mentioned|described|listed|stated|discussed|outlined|shown|cited|noted) (?:above|below|earlier)\b",
            r"\b(?:above|below)-mentioned\b",
            # "the risks mentioned in the text about …": the reading material, wherever it sits
            r"\b(?:mentioned|described|listed|stated|discussed|outlined|shown|cited|noted|given|provided|presented|"
            r"highlighted|defined|identified|covered|raised) (?:in|by|within|throughout) (?:the|this|these) "
            + _CONTEXT_NOUNS + r"s?\b(?!\s*\d)",
        )
    ),
    re.I,
)
# Things a question leans on without naming them. "the <noun>" counts only for nouns a model uses to point
# back at its chunk ("the system", "the principle") and only when nothing qualifies the noun after it ("the
# system of records", "the framework for …" name something). "the policy" and "the company" are left alone:
# a person asks "Does the policy cover flood damage?" about their own policy, and the topic words carry it.
_POINTING_NOUNS = (
    r"(?:system|principle|principles|framework|program|programme|approach|algorithm|protection|protections|"
    r"initiative|measure|measures|guidance|panel|discussion|discussions|publication|report|study|project|"
    r"example|examples|issue|problem|technology|technologies|process)"
)
_QUALIFIERS = frozenset(
    "of for in on to that which who whose used called named known under behind from at between with about "
    "against by within across as".split()
)
_THE_POINTING = re.compile(r"\bthe " + _POINTING_NOUNS + r"\b(?:\s+(\S+))?", re.I)
_DEMONSTRATIVE = re.compile(r"\b(?:this|these|such)\b(?:\s+([\w-]+))?", re.I)
_NOT_AFTER_SUCH = frozenset("as that a an".split())  # "such as", "such that": not a pointer
# Nouns that name no thing of their own: "this dynamic" points back even after "the dynamic of …" named it.
_ABSTRACT_NOUNS = frozenset(
    "dynamic dynamics aspect aspects concept concepts idea ideas factor factors issue issues matter matters "
    "phenomenon situation situations thing things topic topics trend trends element elements context".split()
)
# A bare "the training" / "the data" as what a question is about names nothing a searcher could find: whose
# training, which data? These nouns often head a compound ("the training data for CBRN information", "the
# data release") that does name something, so only the subject with nothing after it counts: the question
# ends, an auxiliary follows ("the data is …"), or an inverted question's verb does ("How does the training
# ensure …"). And, like the nouns above, not when qualified or named earlier in the question.
# an auxiliary before "the X": an inverted question's verb follows X ("How does the training ensure …")
_INVERTING = r"\b((?:does|do|did|can|could|should|would|will|may|might|must|is|are|was|were) )?"
_BARE_SUBJECT = re.compile(
    _INVERTING + r"the (?:training|data|dataset|datasets|model|models|sample|samples|tool|tools|results|findings)\b"
    r"(?:\s+(\S+))?",
    re.I,
)
_AUXILIARIES = frozenset(
    "is are was were be been can could should would will may might must has have had do does did".split())
_COMPOUND_HEADS = frozenset(
    "data set sets process size release card cards procedure procedures material materials method methods "
    "pipeline phase program regime".split()
)
_NOT_POINTING = frozenset("year month week day time way century decade".split())  # "this year" names a time
# "the old decision", "the previous version", "the latter approach": an adjective that points back at
# something the chunk named before, so the question cannot say which one. Qualified ("the same protections
# as …", "the original source of the content") or named earlier in the question, it says which.
_BACK_POINTING = re.compile(
    r"\bthe (?:old|former|latter|previous|prior|preceding|original|aforementioned|aforesaid|same|"
    r"following|abovementioned)\s+([\w-]+)(?:\s+(\S+))?",
    re.I,
)
# "the new decision", "the current version": "new" usually names what it modifies ("the new privacy law"), so it
# points back only before a generic noun, and only where that noun ends the phrase, as with "the data" above.
_NEWLY_MADE = re.compile(
    _INVERTING + r"(the (?:new|newer|latest|updated|revised|current|resulting|subsequent) "
    r"(decision|decisions|rule|rules|version|versions|system|systems|process|procedure|procedures|approach|"
    r"requirement|requirements|standard|standards|guidance|guidelines|framework|model|tool|method|measure|measures))\b"
    r"(?:\s+(\S+))?",
    re.I,
)
_LEFT_OUT = re.compile(
    r"\bthe (?:[\w-]+ ){0,3}[\w-]+ (?:provided|mentioned|described|listed|discussed|outlined|given|shown|"
    r"presented|cited|noted|highlighted)(?=\s*(?:[?.,;:!]|$)|\s+(?:above|below|earlier|previously|here|and|or)\b)",
    re.I,
)
# "How does it relate to …", "How do they ensure …": a pronoun subject with nothing before it to stand for
_PRONOUN_SUBJECT = re.compile(
    r"^(?:how|why|what|when|where|who|which|does|do|did|is|are|can|could|should|would|will)\s+(?:[\w-]+\s+){0,2}?"
    r"(?:they|it)\b(?!\s+(?:mean|means|take|takes|cost|costs)\b)",
    re.I,
)

def refers_to_context(question: str) -> str | None:
    """The words by which ``question`` points at its reading material ("the text", "mentioned above"), or None."""
    found = _REFERS_TO_CONTEXT.search(question)
    return found.group(0) if found else None


def implicit_reference(question: str) -> str | None:
    """The words by which ``question`` leans on something it never names, or None when it stands alone.

    "this principle", "these approaches", "such data", "the system", "the training", "the examples
    provided", "the old decision", "the new decision", "How does it relate …". A demonstrative whose noun the question has already named ("What is
    a pretrial risk assessment and who must publish this assessment?") and "this year" are not references,
    unless the noun is abstract ("the dynamic of this dynamic"). "What does this policy's section 3 require?"
    is one: a searcher names the policy ("the travel policy's section 3" passes)."""
    for match in _DEMONSTRATIVE.finditer(question):
        noun = (match.group(1) or "").casefold()
        if match.group(0)[:4].casefold() == "such" and (not noun or noun in _NOT_AFTER_SUCH):
            continue
        if noun in _NOT_POINTING or (
                noun and noun not in _ABSTRACT_NOUNS and _named_before(noun, question[:match.start()])):
            continue
        return match.group(0)
    for match in _THE_POINTING.finditer(question):
        noun = match.group(0).split()[1]
        if not _qualified(match.group(1)) and not _named_before(noun, question[:match.start()]):
            return match.group(0).rstrip("?.,;:!")
    for match in _BARE_SUBJECT.finditer(question):
        inverted, following = match.group(1), match.group(2)
        start = match.start() + len(inverted or "")
        noun = question[start:].split()[1]
        if _bare(following, inverted) and not _named_before(noun, question[:start]):
            return question[start:match.end()].rstrip("?.,;:!")
    for match in _BACK_POINTING.finditer(question):
        if not _qualified(match.group(2)) and not _named_before(match.group(1), question[:match.start()]):
            return match.group(0) if match.group(2) is None else match.group(0).rsplit(None, 1)[0]
    for match in _NEWLY_MADE.finditer(question):
        inverted, phrase, noun, following = match.groups()
        if _bare(following, inverted) and not _named_before(noun, question[:match.start(2)]):
            return phrase
    for pattern in (_LEFT_OUT, _PRONOUN_SUBJECT):
        if found := pattern.search(question):
            return found.group(0)
    return None


def _qualified(following: str | None) -> bool:
    """Whether the word after "the <noun>" says which one: "the algorithm designed to …", "the system used
    by …", "the framework for …", "the panel Equal …"."""
    after = (following or "").strip("?.,;:!")
    return after.casefold() in _QUALIFIERS or after[:1].isupper() or (
        after.casefold().endswith(("ed", "ing")) and not following.endswith(("?", ".")))


def _bare(following: str | None, inverted: str | None) -> bool:
    """Whether "the data"-style subject stands alone (see ``_BARE_SUBJECT``)."""
    word = (following or "").casefold()
    if not word:
        return True
    if word.strip("?.,;:!") in _COMPOUND_HEADS:
        return False
    if word[-1] in "?.,;:!":
        return True
    return not _qualified(following) and (word in _AUXILIARIES or inverted is not None)


def _named_before(noun: str, before: str) -> bool:
    stem = noun[:5]
    return any(w.casefold().startswith(stem) for w in re.findall(r"[\w-]+", before))
