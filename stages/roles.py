"""Who the users of a product are, read from its vision: the target users it lists, else the role
noun phrases its text names as users ("gives fleet managers, shop technicians and drivers one place",
"Technicians see their queue").

A role is a short noun phrase whose head is a person noun (an agent noun like 'driver', 'technician',
'physiotherapist', or a word like 'patient', 'staff', 'owner'); 'truss count' or 'plant length' never is.
Pure: strings in, strings out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from stages.text import DANGLING_WORDS, STOP, singular, words, wordset

PEOPLE = wordset(
    "patient client customer user owner staff team admin administrator member guest visitor parent "
    "student teacher nurse doctor clinician therapist physiotherapist scout grower farmer foreman "
    "driver mechanic technician manager coordinator operator dispatcher planner buyer seller vendor "
    "supplier agronomist accountant analyst auditor engineer developer designer tester clerk agent "
    "neighbour neighbor borrower lender renter tenant landlord host resident employee worker crew "
    "volunteer organiser organizer coach player fan reader writer editor reviewer approver officer "
    "inspector supervisor director executive founder partner shopper traveller traveler "
    "passenger rider courier caregiver carer family physician pharmacist receptionist cashier chef "
    "cook waiter investor broker adviser advisor consultant contractor installer homeowner landowner "
    "citizen caller subscriber learner trainee intern specialist administrator steward keeper"
)
# -er/-or words that name things, not people
_THINGS = wordset(
    "order number paper water computer filter trailer container counter letter folder header banner "
    "marker server monitor sensor calendar error floor door factor sector color colour motor tractor "
    "indicator register buffer layer power tower ledger voucher cluster reminder after other under over "
    "never either whether rather ever however together later fewer better border corner winter summer "
    "quarter chapter offer answer cover primer meter liter litre center centre matter cancer finger "
    "shower river weather feather leather timer printer scanner charger adapter router browser viewer "
    "editor-tool tracker planner-board trigger ledger barrier carrier-board inspector-report"
)
_AGENT_SUFFIX = ("er", "or", "ist", "ian")
_LEAD = re.compile(
    r"\b(?:lets|helps|allows|enables|gives|serves|for|so|supports|connects)\s+"
    r"((?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*s\b(?:\s*,\s*(?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*s\b)*"
    r"(?:,?\s+(?:and|or)\s+(?:[a-z][\w-]*\s+){0,2}[a-z][\w-]*s\b)?)",
    re.I,
)


_STORY_ROLE = re.compile(
    r"^\s*As an? (?P<role>.+?),\s*I want (?P<goal>.+?)(?:,?\s+so that\b(?P<why>.*))?$", re.I | re.S
)


def role_of(story: dict[str, object]) -> tuple[str, str]:
    """(role, goal) of a story body's 'As a <role>, I want <goal>, so that …', or ('', '')."""
    m = _STORY_ROLE.match(str(story.get("user_story", "")))
    return (m["role"].strip(), m["goal"].strip()) if m else ("", "")


def is_person(noun: str) -> bool:
    """Whether a (singular or plural) head noun names a kind of person."""
    w = singular(noun.lower())
    if w in PEOPLE:
        return True
    if w in _THINGS or len(w) < 5:
        return False
    return w.endswith(_AGENT_SUFFIX)


def role_phrase(text: str) -> str:
    """The role at the start of a target-user phrase, singular and lower case:
    'Patients booking physiotherapy sessions' -> 'patient'; 'Front-desk coordinators' -> 'front-desk
    coordinator'; 'Clinic owners' -> 'clinic owner'."""
    tokens = words(text)
    out: list[str] = []
    for tok in tokens[:5]:
        low = tok.lower()
        if low in DANGLING_WORDS or low in ("who", "using", "managing") or (out and low.endswith("ing")):
            break
        out.append(low)
        if is_person(low):
            break
    # the head is the last person word in the phrase; anything after it is a qualifier
    heads = [i for i, w in enumerate(out) if is_person(w)]
    if heads:
        out = out[: heads[-1] + 1]
    while out and out[0] in ("a", "an", "the", "let", "lets", "help", "helps", "and", "so", "while"):
        out = out[1:]
    if not out:
        return text.strip().lower()
    out[-1] = singular(out[-1])
    return " ".join(out)


def _clean_role(candidate: str) -> str | None:
    skip = ("the", "a", "an", "every", "each", "all", "let", "lets", "help", "helps", "so", "while", "and")
    tokens = [t for t in words(candidate) if t.lower() not in skip]
    if not tokens or not is_person(tokens[-1]):
        return None
    # drop leading words that are not part of the noun phrase ("complete drivers")
    while len(tokens) > 1 and (tokens[0].lower() in STOP or tokens[0].lower() in DANGLING_WORDS):
        tokens = tokens[1:]
    role = " ".join(t.lower() for t in tokens[-3:])
    parts = role.split()
    parts[-1] = singular(parts[-1])
    return " ".join(parts)


def named_roles(sentences: Iterable[str]) -> list[str]:
    """Roles the text names as users: objects of 'lets/helps/gives/for …' and subjects that act."""
    found: list[str] = []
    for sentence in sentences:
        for m in _LEAD.finditer(sentence):
            for part in re.split(r",\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+", m.group(1)):
                role = _clean_role(part)
                if role:
                    found.append(role)
        for clause in re.split(r"[.;:]\s+|,\s+(?:and\s+|while\s+)?|\s+and\s+", sentence):
            tokens = words(clause)
            for i, tok in enumerate(tokens[:4]):
                nxt = tokens[i + 1].lower() if i + 1 < len(tokens) else ""
                if nxt in ("can", "will", "must") and i + 2 < len(tokens):
                    nxt = tokens[i + 2].lower()
                plural = tok.lower().endswith("s") and singular(tok) != tok
                if (
                    plural
                    and is_person(tok)
                    and nxt.isalpha()
                    and nxt not in DANGLING_WORDS
                    and nxt not in STOP
                ):
                    role = _clean_role(" ".join(tokens[max(0, i - 2) : i + 1]))
                    if role:
                        found.append(role)
                    break
    return list(dict.fromkeys(found))


def vision_roles(target_users: Iterable[str], sentences: Iterable[str]) -> list[str]:
    """The vision's users: its target users when it lists them, else the roles its text names."""
    listed = [role_phrase(u) for u in target_users if u.strip()]
    if listed:
        return list(dict.fromkeys(listed))
    return named_roles(sentences)


def is_user(role: str, users: Iterable[str]) -> bool:
    """Whether a story's role is one of the users: the same phrase, or its head part ('owner' for
    'clinic owner'), singular or plural, any case."""
    mine = [singular(w.lower()) for w in words(role) if w.lower() not in ("a", "an", "the")]
    if not mine:
        return False
    for user in users:
        theirs = [singular(w.lower()) for w in words(user)]
        n = len(mine)
        if n <= len(theirs) and theirs[-n:] == mine and is_person(mine[-1]):
            return True
        if theirs == mine:
            return True
    return False
