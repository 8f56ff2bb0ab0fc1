"""One exception hierarchy: the CLI maps each to a one-line message and an exit code."""


class ClgateError(Exception):
    """Base of every error clgate reports to a user without a traceback."""

    exit_code = 2


class InputError(ClgateError):
    """A file, argument or record a user gave is missing, malformed or of the wrong kind."""


class IntegrityError(ClgateError):
    """Something that was signed or digested no longer matches: tampering or corruption."""

    exit_code = 1


class PolicyError(ClgateError):
    """A policy file is malformed or refers to checks that do not exist."""


class IncompleteError(ClgateError):
    """What an entry would attest is not true yet (an erasure whose data is still deployed)."""

    exit_code = 1
