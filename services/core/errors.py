"""The studio's base error: a message a user can act on, with a short title for where it happened."""

from __future__ import annotations


class StudioError(Exception):
    """An error whose message is written for the user (pages show it as it is, never a traceback)."""

    title = "Something went wrong"

    def __str__(self) -> str:
        return super().__str__() or self.title
