"""Exceptions that mean 'the user asked for something impossible' (one-line messages)."""


class UserError(Exception):
    """A mistake in the inputs (missing file, bad URI, bad parameter): reported in one line."""


class MetadataError(UserError):
    """The metadata entry list is missing, unreadable or malformed."""
