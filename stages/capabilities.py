"""What a vision sentence asks the product to do, as capabilities: a verb and its object, the role that
does it (when the sentence names one) and a qualifier ("even without cell coverage").

"Technicians see their queue on a tablet, log labour time and parts used, and close the work order
with a signature" gives three: (technician, see, their queue on a tablet), (technician, log, labour
time and parts used), (technician, close, the work order with a signature). A key feature written as
a noun phrase ("Daily clinic dashboard with utilisation, no-show rate and revenue") gives the phrase
with a verb its head noun calls for (see the daily clinic dashboard) and one per listed part.

Sentences are also sorted into what they are: a capability, context (the problem today), a success
metric, a rule (a constraint) or a list intro ("What the first release must do:"). Pure, rule based.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stages.roles import is_person
from stages.text import capitalise, content_words, shorten, singular, words, wordset

VERBS = wordset(
    "accept add adjust alert allow approve archive assign attach book browse buy calculate cancel capture "
    "change check choose close collect compare complete confirm connect create deliver download edit "
    "email enter estimate export fill filter find flag forecast generate get give handle import invite "
    "keep lend borrow list log manage mark match measure monitor notify offer open order pay plan "
    "predict print produce publish raise rate receive record register reject remind renew report request "
    "reschedule reserve review run scan schedule search see select sell send set share show sign start "
    "submit suggest sync take track update upload use verify view walk watch write"
)
SYSTEM_VERBS = wordset("open raise sync flag send alert notify create predict offer remind match")
VIEW = wordset("see view browse compare track monitor watch find search review check get show")
SEND = wordset("send notify remind alert share email publish offer")
CHANGE = wordset(
    "correct adjust edit change update reschedule cancel close assign approve reject manage set renew"
)
_HEAD_VERB = {
    "dashboard": "see",
    "report": "see",
    "view": "see",
    "feed": "see",
    "history": "see",
    "overview": "see",
    "summary": "see",
    "queue": "see",
    "forecast": "see",
    "availability": "see",
    "rate": "see",
    "utilisation": "see",
    "utilization": "see",
    "revenue": "see",
    "page": "publish",
    "reminder": "receive",
    "alert": "receive",
    "notification": "receive",
    "survey": "answer",
    "form": "fill in",
    "booking": "make",
    "self-booking": "use",
    "request": "submit",
    "order": "place",
    "ticket": "buy",
    "ticketing": "sell",
    "deposit": "take",
    "assessment": "submit",
    "check": "run",
    "check-in": "run",
    "template": "manage",
    "management": "run",
    "waitlist": "manage",
    "listing": "create",
    "detection": "run",
    "consent": "sign",
}
_PRODUCT = re.compile(
    r"^(?:the\s+|a\s+|an\s+)?(?:\w+\s+)?(?:app|product|platform|system|service|tool)\b", re.I
)
_QUALIFIER = re.compile(
    r",?\s+(?=(?:even|when|while|until|before|after|automatically|every|within|without|so|in one click)\b)",
    re.I,
)
_METRIC = re.compile(
    r"(?:\d+\s*%|\b(?:below|above|under|less than|more than|at least|within|down|up|cut from|zero)\b.*\d|"
    r"\bzero\b|^success means)",
    re.I,
)
_RULE = re.compile(r"\b(?:must|has to|have to|needs to|compliant|comply|complies|meets)\b", re.I)
_PARENS = re.compile(r"\s*\([^)]*\)")
_MODALS = frozenset(["can", "will", "may", "should", "also", "then"])
_NO_ARTICLE = wordset(
    "a an their my our its his her your each every all which what how when where who whether one two it them "
    "some any no this that these those"
)


@dataclass(frozen=True)
class Capability:
    verb: str  # base form, lower case ("fill in", "see")
    obj: str  # its object, a noun phrase ("the daily vehicle inspection report on their phone")
    qualifier: str = ""  # how or when ("even without cell coverage")
    role: str = ""  # who does it, when the sentence says ("technician")

    @property
    def kind(self) -> str:
        """view, send, change or create: what the criteria and tasks of the capability check."""
        first = self.verb.split()[0]
        if first in VIEW:
            return "view"
        if first in SEND or self.verb == "receive":
            return "send"
        if first in CHANGE:
            return "change"
        return "create"

    @property
    def thing(self) -> str:
        """The object as a noun phrase that reads inside a sentence ('the daily clinic dashboard')."""
        return self.obj or "the result"

    def title(self, max_words: int = 11) -> str:
        """Verb and object, cut where the object's first list or aside starts (never mid-phrase)."""
        tokens = f"{self.verb} {self.thing}".split()
        for i, tok in enumerate(tokens):
            if i >= 5 and (
                tok.lower() in ("and", "or", "that", "which", "who") or tokens[i - 1].endswith(",")
            ):
                tokens = tokens[:i]
                break
        return capitalise(shorten(" ".join(tokens), max_words))

    def goal(self) -> str:
        text = f"to {self.verb} {self.thing}" + (f" {self.qualifier}" if self.qualifier else "")
        return re.sub(r"\btheir\b", "my", text)


def base_verb(word: str) -> str | None:
    """The base form of a verb we know ('assigns' -> 'assign', 'scheduled' -> 'schedule'), else None."""
    w = word.lower()
    for cand in (
        w,
        w[:-1] if w.endswith("s") else "",
        w[:-2] if w.endswith("es") else "",
        w[:-3] + "y" if w.endswith("ies") else "",
        w[:-1] if w.endswith("d") else "",
        w[:-2] if w.endswith("ed") else "",
        w[:-3] if w.endswith("ged") else "",
    ):
        if cand and cand in VERBS:
            return cand
    return None


def _the(np: str) -> str:
    np = np.strip(" ,.")
    first = np.split(" ", 1)[0].lower() if np else ""
    if first == "the":
        return "the" + np[3:]
    if not np or first in _NO_ARTICLE or (len(np.split()) == 1 and np.lower().endswith(("ed", "id"))):
        return np
    head = words(np)[-1] if words(np) else ""
    return np if head.lower().endswith("s") or head.isupper() else f"the {np[:1].lower()}{np[1:]}"


def _split_qualifier(rest: str) -> tuple[str, str]:
    parts = _QUALIFIER.split(rest, maxsplit=1)
    obj = parts[0].strip(" ,")
    return obj, (parts[1].strip(" ,.") if len(parts) > 1 else "")


def _verb_clauses(text: str, role: str, subject: str = "") -> list[Capability]:
    """'see their queue on a tablet, log labour time, and close the work order' -> three capabilities."""
    groups: list[list[str]] = []
    for piece in re.split(r",\s*(?:and\s+)?|\s+and\s+(?=(?:can\s+)?\w+\b)", text):
        tokens = piece.split()
        while tokens and tokens[0].lower() in _MODALS:
            tokens = tokens[1:]
        starts = bool(tokens) and base_verb(tokens[0]) is not None and tokens[0][:1].islower()
        if (starts and (len(tokens) > 1 or not groups)) or (tokens and not groups):
            groups.append(tokens)
        elif groups and tokens:
            joint = "," if tokens[0].lower() in ("with", "even", "when", "without") else "and"
            groups[-1] = [*groups[-1], joint, *tokens]
    caps = [_cap(g, role, subject) for g in groups if g and base_verb(g[0])]
    for i in range(1, len(caps)):  # "export it" -> "export the dashboard"
        head = caps[i].obj.split(" ", 1)
        if head and head[0].lower() in ("it", "them"):
            earlier = shorten(caps[i - 1].obj, 5)
            caps[i] = Capability(caps[i].verb, " ".join([earlier, *head[1:]]), caps[i].qualifier, role)
    # "lend and borrow tools": a verb without an object shares the next one's
    for i in range(len(caps) - 2, -1, -1):
        if not caps[i].obj and caps[i + 1].obj and not caps[i].qualifier:
            caps[i] = Capability(caps[i].verb, caps[i + 1].obj, caps[i + 1].qualifier, role)
    return caps


def _cap(tokens: list[str], role: str, subject: str = "") -> Capability:
    verb = base_verb(tokens[0]) or tokens[0].lower()
    rest = " " + " ".join(tokens[1:]).replace(" , ", ", ")
    if verb == "fill" and rest.lower().startswith(" in "):
        verb, rest = "fill in", rest[3:]
    obj, qualifier = _split_qualifier(rest)
    obj_words = obj.split()
    if obj_words and base_verb(obj_words[-1]) == verb.split()[0]:  # "consent signed" -> "consent"
        obj = " ".join(obj_words[:-1])
    if not obj and subject:
        obj = subject
    return Capability(verb=verb, obj=_the(obj) if obj else "", qualifier=qualifier, role=role)


def _noun_phrase(text: str) -> list[Capability]:
    """A key feature without a verb: the head phrase, then each part it lists after 'with'."""
    head, listed = text, ""
    m = re.match(r"(.+?)\s+(?:with|including)\s+(.+)$", text)
    if m:
        head, listed = m.group(1), m.group(2)
    out = [_np_cap(part) for part in _top_level(head)]
    if listed:
        parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+", listed) if "," in listed else [listed]
        main = out[0].obj if out else ""
        out += [_np_cap(p, main) for p in parts if p.strip()]
    return out


def _top_level(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r",\s*", text) if p.strip()]
    if len(parts) == 1:
        m = re.match(r"(.+?)\s+and\s+(.+)$", text)
        if m and len(m.group(1).split()) >= 3 and len(m.group(2).split()) >= 2:
            parts = [m.group(1), m.group(2)]
    return parts if all(len(p.split()) >= 2 for p in parts) else [text]


def _np_cap(np: str, within: str = "") -> Capability:
    np = np.strip()
    first = np.split(" ", 1)[0]
    if not first.isupper():
        np = np[:1].lower() + np[1:]
    obj, qualifier = _split_qualifier(" " + np)
    tokens = words(obj)
    heads = [singular(t.lower()) for t in tokens if t.lower() not in ("and", "or")]
    verb = next((_HEAD_VERB[h] for h in reversed(heads) if h in _HEAD_VERB), "use")
    if heads and heads[-1] == "management" and len(tokens) > 1:
        verb, obj = "manage", " ".join(tokens[:-1])
    obj_words = obj.split()
    if obj_words and base_verb(obj_words[-1]) == verb.split()[0]:
        obj = " ".join(obj_words[:-1])
    if within and verb in ("see", "use"):
        return Capability(verb=verb, obj=_the(obj), qualifier=f"in {within}")
    return Capability(verb=verb, obj=_the(obj), qualifier=qualifier)


def capabilities(text: str, roles: list[str]) -> list[Capability]:
    """Every capability a sentence (or key feature) describes, in order."""
    return _unique(_analyse(text, roles)[0])


def _unique(caps: list[Capability]) -> list[Capability]:
    seen: set[str] = set()
    out = []
    for cap in caps:
        key = f"{cap.verb} {cap.obj}".lower()
        if key not in seen and cap.obj and content_words(cap.obj):
            seen.add(key)
            out.append(cap)
    return out


def _analyse(text: str, roles: list[str]) -> tuple[list[Capability], bool]:
    """The capabilities, and whether the sentence says who or what acts (False: a bare noun phrase)."""
    text = _PARENS.sub("", text).strip().rstrip(".!")
    out: list[Capability] = []
    acts = False
    nouns: list[Capability] = []
    for clause in [c.strip() for c in re.split(r";\s*|,?\s+while\s+", text) if c.strip()]:
        if clause.split()[0].lower() in ("they", "it", "we", "he", "she", "this", "that"):
            continue
        caps, how = _clause(clause, roles)
        if how == "np":
            nouns += caps
        else:
            out += caps
            acts = acts or bool(caps)
    return (out if acts else nouns), acts


_HELPERS = re.compile(r"\b(?:lets|let|helps|help|allows|allow|enables|enable|gives|give)\s+", re.I)


def _clause(clause: str, roles: list[str]) -> tuple[list[Capability], str]:
    tokens = clause.split()
    if not tokens:
        return [], "np"
    helper = _HELPERS.search(clause)
    if helper and helper.start() < len(clause) // 2 + 1:
        caps = _after_helper(clause[helper.end() :].split(), roles)
        if caps:
            return caps, "helper"
    if base_verb(tokens[0]) and tokens[0][:1].isupper() and not tokens[0].lower().endswith("s"):
        return _verb_clauses(clause, ""), "imperative"  # a bullet written as an instruction
    found = _after_role(tokens, roles)
    if found:
        return found, "role"
    for i, tok in enumerate(tokens[1:9], start=1):
        if tok.lower() in ("is", "are") and i + 1 < len(tokens) and base_verb(tokens[i + 1]):
            subject = " ".join(tokens[:i])
            qualifier = " ".join(tokens[i + 2 :]).strip(" ,")
            done = Capability(verb=base_verb(tokens[i + 1]) or "", obj=_the(subject), qualifier=qualifier)
            return [done], "passive"
        verb = base_verb(tok)
        plural_subject = any(t.lower().endswith("s") for t in tokens[: min(i, 2)])
        if verb and tok.lower().endswith("s") != plural_subject and not is_person(tokens[i - 1]):
            subject = " ".join(tokens[:i])
            if _PRODUCT.match(subject) or verb in SYSTEM_VERBS:
                return _verb_clauses(" ".join(tokens[i:]), "", _the(subject)), "system"
            break
    return _noun_phrase(clause), "np"


def _after_helper(tokens: list[str], roles: list[str]) -> list[Capability]:
    """'gives fleet managers, shop technicians and drivers one place to keep …' / 'lets neighbours
    lend and borrow tools': the first role named, then what the sentence lets them do."""
    role = ""
    for i, tok in enumerate(tokens):
        low = tok.lower().strip(",")
        if not role and is_person(low):
            lead = tokens[i - 1].lower().strip(",") if i > 0 else ""
            pair = f"{lead} {low}" if lead and lead not in _NO_ARTICLE and lead != "and" else low
            role = _known_role(pair, roles)
            continue
        if low == "to" and i + 1 < len(tokens) and base_verb(tokens[i + 1]):
            return _verb_clauses(" ".join(tokens[i + 1 :]), role)
        prev = tokens[i - 1] if i > 0 else ""
        if role and is_person(prev.strip(",")) and not prev.endswith(",") and base_verb(low):
            return _verb_clauses(" ".join(tokens[i:]), role)
    return []


def _known_role(phrase: str, roles: list[str]) -> str:
    words_ = [singular(w) for w in phrase.split()]
    for n in (2, 1):
        cand = " ".join(words_[-n:])
        if not roles or cand in roles:
            return cand
    return next((r for r in roles if r.endswith(words_[-1])), words_[-1])


def _after_role(tokens: list[str], roles: list[str]) -> list[Capability]:
    """'Drivers complete …' / 'the shop foreman assigns …': the role, then what it does."""
    start = 1 if tokens[0].lower() in ("the", "a", "an") else 0
    for n in (3, 2, 1):
        phrase = [t.lower() for t in tokens[start : start + n]]
        if len(phrase) < n or not is_person(phrase[-1]):
            continue
        plural = phrase[-1].endswith("s") and singular(phrase[-1]) != phrase[-1]
        role = " ".join([*phrase[:-1], singular(phrase[-1])])
        rest = tokens[start + n :]
        while rest and rest[0].lower() in _MODALS:
            rest = rest[1:]
        if not rest or not base_verb(rest[0]):
            continue
        agrees = (
            (plural and not rest[0].endswith("s"))
            or (not plural and start == 1)
            or rest[0].endswith("s") != plural
        )
        if agrees:
            return _verb_clauses(" ".join(rest), role)
    return []


def sentence_kind(text: str, section: str, roles: list[str]) -> str:
    """capability, context, metric, rule or intro: what a vision sentence is for the offline generator."""
    kind = _kind_by_form(text, section)
    if kind is not None:
        return kind
    caps, acts = _analyse(text.strip(), roles)
    return "capability" if acts and _unique(caps) else "context"


def is_cross_cutting(text: str, section: str) -> bool:
    """A success metric, a rule, or the intro of a list of them ('Success means:'): sentences any item
    below an epic may cite, wherever the vision put them."""
    return _kind_by_form(text, section) in ("metric", "rule", "intro")


def _kind_by_form(text: str, section: str) -> str | None:
    """The kind a sentence's section or form alone decides (None: read its clauses)."""
    if section in ("success_metrics", "constraints"):
        return "metric" if section == "success_metrics" else "rule"
    if section == "key_features":
        return "capability"
    stripped = text.strip()
    if stripped.endswith(":"):
        return "intro"
    short = stripped.lower().startswith("success") or len(stripped.split()) <= 14
    if _METRIC.search(stripped) and not _RULE.search(stripped) and short:
        return "metric"
    if _RULE.search(stripped) and re.match(
        r"^(?:the\s+)?(?:\w+\s+)?(?:product|app|system|platform|it)\b", stripped, re.I
    ):
        return "rule"
    return None


def parts_of(text: str) -> list[str]:
    """A metric or rule sentence as its listed parts ('Success means: A, B, and C' -> A, B, C)."""
    body = re.sub(
        r"^(?:success means|the product must|it must)\s*:?\s*", "", text.strip().rstrip("."), flags=re.I
    )
    parts = [p.strip() for p in re.split(r",\s*(?:and\s+)?", body) if len(p.split()) >= 2]
    return [shorten(p, 20) for p in parts] or [shorten(body, 20)]
