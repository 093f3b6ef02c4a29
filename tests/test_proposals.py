"""Proposed dimension values: parsing, duplicate flags, and the round trip through a backend."""

from __future__ import annotations

import asyncio

from services.generation.backends import Completion
from services.generation.proposals import accept, flag_duplicates, fold, parse_proposals, propose_values
from tests.run_helpers import recipe


def test_fold_ignores_case_and_whitespace():
    assert fold("  Thai   Food. ") == fold("thai food")


def test_parse_strips_bullets_and_numbers():
    assert parse_proposals("1. Korean\n- Peruvian\n* Greek\n\nHere are more:\n") == ["Korean", "Peruvian", "Greek"]
    assert parse_proposals("Korean, Peruvian, Greek") == ["Korean", "Peruvian", "Greek"]


def test_flags_exact_folded_and_near_duplicates():
    flags = flag_duplicates(["  ITALIAN ", "Ethiopean", "Korean", "korean", "Peruvian"], ["Italian", "Thai", "Ethiopian"])
    by = {p.text: p for p in flags}
    assert by["  ITALIAN "].status == "duplicate" and by["  ITALIAN "].match == "Italian"
    assert by["Ethiopean"].status == "near-duplicate" and by["Ethiopean"].match == "Ethiopian"
    assert by["Korean"].status == "new" and by["Peruvian"].status == "new"
    assert by["korean"].status == "duplicate" and by["korean"].match == "Korean"  # duplicates an earlier proposal


class _Answer:
    model = "fake"

    async def complete(self, messages, params):
        assert "rain" in messages[-1]["content"] and "topic" in messages[-1]["content"]
        return Completion("1. Snow\n2. RAIN\n3. Thunder storms", 5, 5, "stop", 1.0)

    async def aclose(self):
        pass


def test_propose_and_accept():
    rec = recipe()
    props = asyncio.run(propose_values(_Answer(), rec, "topic", n=3))
    assert [(p.text, p.status) for p in props] == [("Snow", "new"), ("RAIN", "duplicate"), ("Thunder storms", "new")]
    new = accept(rec, "topic", [p.text for p in props if not p.flagged])
    assert [v.text for v in new.dimension("topic").values] == ["rain", "cats", "tea", "Snow", "Thunder storms"]
    assert new.content_hash() != rec.content_hash()
