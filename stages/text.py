"""Small English text helpers shared by the quality model, the offline generator and the vision advice:
words, singular forms, content words, titles that stop mid-phrase, and clean shortening.

Pure and deterministic; no model, no download. Rule-based on purpose: the backlog's own vocabulary is
narrow (roles, product nouns, imperative verbs) and the rules are easy to read and to test.
"""

from __future__ import annotations

import re


def wordset(text: str) -> frozenset[str]:
    """The words of ``text`` as a set: word lists read better as one string."""
    return frozenset(text.split())


_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
ARTICLES = frozenset(["a", "an", "the"])
# Prepositions that cannot end a phrase. Particles of phrasal verbs ("sign in", "log on", "check out",
# "follow up", "back off") are left out on purpose: "Sign in" is a complete title.
PREPOSITIONS = wordset(
    "about above across after against along amid among at before behind below beneath beside besides "
    "between beyond despite during except for from into like near of onto per since than toward towards "
    "under underneath unlike until unto upon via with within without to"
)
CONJUNCTIONS = wordset(
    "and or but nor yet because although though while whereas if unless that which whose whether "
    "where when as so than"
)
POSSESSIVES = wordset("my your his their its our whose")
# "in", "on", "by" end a phrase only after a verb that takes them ("sign in", "log on", "stand by")
SOFT_PREPOSITIONS = wordset("in on by")
# words that stand for a noun only once it is named: "before the first" is cut off, "Come first" is not
NOUN_WANTING = wordset("first last next previous same other following")
PHRASAL = wordset(
    "sign log check opt plug fill hand turn switch drop stand log come go get try stay move zoom"
)
DANGLING_WORDS = ARTICLES | PREPOSITIONS | CONJUNCTIONS | POSSESSIVES
DANGLING_MARKS = tuple(",;:-–—/&+(['\"“‘")
STOP = wordset(
    "a an the to of for in on at by and or with as i we so that want be is are was were been my our their "
    "its it this these those they them he she you your his her can will would should must may not no "
    "any each every all one who which when then given after before into from than more most less least "
    "such per via also just only still even once up out over new"
)
_BOUNDARIES = wordset("of for in with to by on at per from as and or that which who when while next")
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def singular(word: str) -> str:
    """'technicians' -> 'technician', 'companies' -> 'company', 'boxes' -> 'box'; 'status' stays."""
    low = word.lower()
    if len(low) <= 3 or low.endswith(("ss", "us", "is", "'s", "’s")):
        return word
    if low.endswith("ies"):
        return word[:-3] + "y"
    if low.endswith(("ches", "shes", "xes", "sses")):
        return word[:-2]
    if low.endswith("s"):
        return word[:-1]
    return word


def stem(word: str) -> str:
    """A crude stem for matching ('bookings', 'booked', 'booking' -> 'book')."""
    w = singular(word.lower().strip("'’"))
    for suffix in ("ing", "ed", "ion", "ment", "er"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix):
            return w[: -len(suffix)]
    return w


def content_words(text: str) -> set[str]:
    """Stems of the words that carry meaning (no stop words, no short words)."""
    return {stem(w) for w in words(text) if len(w) > 2 and w.lower() not in STOP}


def normalise(text: str) -> str:
    """Case, punctuation and whitespace folded; a trailing '(2)' numbering counts as no difference."""
    text = re.sub(r"\s*\(\d+\)\s*$", "", text.strip())
    return " ".join(w.lower().strip("'’-") for w in words(text))


def cut_off_reason(title: str) -> str | None:
    """Why a title stops mid-phrase, or None when it reads as a complete phrase."""
    text = title.strip()
    if not text:
        return "empty"
    for open_, close in _BRACKETS:
        if text.count(open_) > text.count(close):
            return f"unclosed '{open_}'"
    if text.count('"') % 2 or text.count("“") > text.count("”"):
        return "unclosed quote"
    if text.endswith(DANGLING_MARKS) or text.endswith("..."):
        return f"ends with '{text[-1]}'"
    last = words(text)
    if not last:
        return None
    end = last[-1].lower()
    if end in DANGLING_WORDS:
        return f"ends on '{last[-1]}'"
    if end in NOUN_WANTING and len(last) >= 2 and last[-2].lower() in ARTICLES | POSSESSIVES:
        return f"ends on '{last[-2]} {last[-1]}'"
    if end in SOFT_PREPOSITIONS and (len(last) < 2 or last[-2].lower() not in PHRASAL):
        return f"ends on '{last[-1]}'"
    if end.endswith(("'s", "’s")) and end not in ("it's", "let's", "what's", "that's"):
        return f"ends on the possessive '{last[-1]}'"
    return None


def shorten(text: str, max_words: int) -> str:
    """At most ``max_words`` words, ending on a word that completes the phrase (never on 'the', 'of',
    'and', a possessive or an open bracket); brackets cut open are dropped whole."""
    tokens = text.strip().rstrip(".!?;:,").split()
    if len(tokens) > max_words:
        tokens = tokens[:max_words]
        # drop the prepositional phrase the cut went through ("… volume for a chosen" -> "… volume")
        cuts = [i for i, t in enumerate(tokens) if i >= 3 and t.lower() in _BOUNDARIES]
        if cuts:
            tokens = tokens[: cuts[-1]]
    while tokens and tokens[-1].rstrip(",;:") != tokens[-1]:
        tokens[-1] = tokens[-1].rstrip(",;:")
    while tokens and (cut_off_reason(" ".join(tokens)) is not None):
        if tokens[-1].rstrip(",;:-") != tokens[-1] and tokens[-1].rstrip(",;:-"):
            tokens[-1] = tokens[-1].rstrip(",;:-")
            continue
        if "(" in " ".join(tokens) and cut_off_reason(" ".join(tokens)) == "unclosed '('":
            tokens = " ".join(tokens).split("(")[0].split()
            continue
        tokens.pop()
    out = " ".join(tokens).rstrip(",;:-")
    return out or text.strip()[:60]


_CORE_END = wordset("and or with that which who whose to for so per from by on in at next when while")


def core(np: str, min_words: int = 2) -> str:
    """The head of a noun phrase, before its first list, relative clause or preposition (bar 'of')."""
    tokens = np.split()
    for i, tok in enumerate(tokens):
        if i >= min_words and (tok.lower().strip(",") in _CORE_END or tokens[i - 1].endswith(",")):
            tokens = tokens[:i]
            break
    return shorten(" ".join(tokens), 8)


def complete_title(text: str, max_words: int, fallback: str) -> str:
    """``text`` shortened to a complete phrase of at least three characters, else ``fallback``."""
    title = capitalise(shorten(text, max_words))
    return fallback if cut_off_reason(title) or len(title) < 3 else title


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def lower_first(text: str) -> str:
    """Lower-case the first letter unless the first word is an acronym or a name ('DOT', 'SMS')."""
    text = text.strip().rstrip(".!?")
    first = text.split(" ", 1)[0]
    return text if first.isupper() and len(first) > 1 else text[:1].lower() + text[1:]


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"
