"""Cluster names by an LLM, on request: 2–4 words per cluster from its representative samples and
c-TF-IDF keywords, through the one backend factory (services.generation.connect), the built-in
model included.

A plan (which clusters, their prompts, tokens and cost at the shipped price) comes first, so the
page can show what a paid backend would cost before anything is sent. Names are cached by the
caller per (map's clustering, cluster, backend); a cluster whose call fails keeps its keywords and
the failure becomes a sentence. The samples are untrusted: the reply is cut to a few words and
passed through ``safe_label`` before it is drawn.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.explore.cluster_keywords import ctfidf_keywords, representatives, safe_label
from services.generation.backends import BackendConfig, ChatBackend, describe_error
from services.generation.connect import call
from services.generation.local_server import LocalModelServer
from services.generation.run_store import shipped_prices

SYSTEM = ("You name clusters of texts. Answer with a short name of 2 to 4 words that says what the texts have in common. "
          "Answer with the name only.")
REPLY_TOKENS = 16
MAX_CLUSTERS = 12
REPRESENTATIVES = 4
SAMPLE_CHARS = 200
PARAMS = {"temperature": 0.0, "max_tokens": REPLY_TOKENS}


@dataclass(frozen=True)
class NamingPlan:
    """What naming the clusters would send: one prompt per cluster (the largest first)."""

    prompts: dict[int, list[dict[str, str]]]
    keywords: dict[int, list[str]] = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return len(self.prompts)

    def prompt_tokens(self) -> int:
        """About 4 characters a token (the studio's forecast rule of thumb)."""
        return int(sum(len(m["content"]) for msgs in self.prompts.values() for m in msgs) / 4)

    def cost(self, model: str) -> float | None:
        """Estimated dollars at the shipped price of ``model`` (None: not in the price table)."""
        price = shipped_prices().prices.get(model)
        return None if price is None else price.cost(self.prompt_tokens(), self.calls * REPLY_TOKENS)


def _clip(text: str) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= SAMPLE_CHARS else t[: SAMPLE_CHARS - 1] + "…"


def naming_plan(texts: Sequence[str], vectors: np.ndarray, labels: Sequence[int] | np.ndarray, *,
                max_clusters: int = MAX_CLUSTERS, skip: Sequence[int] = ()) -> NamingPlan:
    """Prompts for the ``max_clusters`` largest clusters (leaving out ``skip``: already named)."""
    lab = np.asarray(labels)
    sizes = {int(c): int((lab == c).sum()) for c in set(lab.tolist()) - {-1}}
    chosen = sorted(sizes, key=lambda c: -sizes[c])[:max_clusters]
    keywords = ctfidf_keywords(texts, lab, top=8)
    prompts = {}
    for c in chosen:
        if c in skip:
            continue
        reps = [_clip(texts[i]) for i in representatives(vectors, lab, c, k=REPRESENTATIVES)]
        body = ("Keywords: " + ", ".join(keywords.get(c, [])) + "\n\nTypical texts:\n" + "\n".join(f"- {r}" for r in reps)
                + "\n\nName this cluster in 2 to 4 words.")
        prompts[c] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": body}]
    return NamingPlan(prompts, {c: keywords.get(c, []) for c in chosen})


_PREFIX = re.compile(r"^\s*(?:cluster\s+)?(?:name|title|label)\s*[:\-]\s*", re.IGNORECASE)


def parse_name(reply: str, max_words: int = 6) -> str | None:
    """The name in a reply: its first non-empty line, without a "Name:" prefix, quotes or a final
    full stop, at most ``max_words`` words, safe to draw; None when nothing is left."""
    line = next((ln for ln in str(reply or "").splitlines() if ln.strip()), "")
    line = _PREFIX.sub("", line).strip().strip("\"'`*").rstrip(".").strip()
    words = line.split()[:max_words]
    name = safe_label(" ".join(words))
    return name or None


async def _ask(backend: ChatBackend, prompts: dict[int, list[dict[str, str]]]) -> dict[int, str | BaseException]:
    async def one(c: int, msgs: list[dict[str, str]]) -> tuple[int, str | BaseException]:
        try:
            return c, (await backend.complete(msgs, dict(PARAMS))).text
        except Exception as exc:  # one failed cluster keeps its keywords; the others still get names
            return c, exc

    return dict(await asyncio.gather(*(one(c, m) for c, m in prompts.items())))


def name_clusters(cfg: BackendConfig, local: LocalModelServer | None, plan: NamingPlan) -> tuple[dict[int, str], list[str]]:
    """Ask the backend for every prompt of the plan: (names by cluster, sentences on what failed)."""
    if not plan.calls:
        return {}, []
    try:
        replies = call(cfg, local, lambda backend: _ask(backend, plan.prompts))
    except Exception as exc:  # the server did not start, no connection: every cluster keeps its keywords
        return {}, [f"No cluster names from {cfg.model}: {describe_error(exc, cfg.base_url)}. The keywords stay."]
    names, errors = {}, []
    for c, reply in replies.items():
        if isinstance(reply, BaseException):
            errors.append(f"Cluster {c}: {describe_error(reply, cfg.base_url).rstrip('.')}")
            continue
        name = parse_name(reply)
        if name is None:
            errors.append(f"Cluster {c}: the reply held no name")
        else:
            names[c] = name
    if errors:
        head = f"{len(errors)} of {plan.calls} cluster(s) got no name from {cfg.model} and keep their keywords"
        body = "; ".join(errors[:3]) + ("; …" if len(errors) > 3 else "")
        errors = [head + ": " + body + ("" if body.endswith(("?", "!", ".")) else ".")]
    return names, errors
