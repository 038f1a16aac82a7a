"""Errors raised by the triggers package.

TriggersError
└── InvalidDefinition (ValueError)   -- an automation or trigger that cannot be used
"""

from __future__ import annotations


class TriggersError(Exception):
    """Root of every error raised by the triggers package."""


class InvalidDefinition(TriggersError, ValueError):
    """A definition that cannot be used; the message names the field and what to do."""
