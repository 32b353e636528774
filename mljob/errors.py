"""Errors whose message is written for the person who caused them (no traceback needed)."""

from __future__ import annotations


class MljobError(Exception):
    """Base class: the message is complete and safe to show to a user."""


class InvalidInput(MljobError):
    """A job name, config, gene list or argument is not acceptable (CLI exit 2, HTTP 400)."""


class SettingsError(MljobError):
    """A setting (environment variable) is missing or wrong."""


class JobNotFound(MljobError):
    """No job folder of that name exists (HTTP 404)."""


class JobExists(MljobError):
    """A job of that name exists already (HTTP 409)."""


class JobError(MljobError):
    """A job cannot succeed as asked; retrying will not help (bad config, too few genes, no data)."""


class JobNotReady(MljobError):
    """The job exists but is not in a state that allows what was asked (e.g. no results yet; HTTP 409)."""
