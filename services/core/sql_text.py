"""Quoting for the few SQL names and literals that cannot be parameters (view and column names)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"
