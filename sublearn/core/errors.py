"""The one base class of problems a user can fix (bad input, missing files, an unreachable or
refusing Hub), each already phrased as one line that names the file, field or repo.

The CLI prints these as one line; anything else is a bug and keeps its traceback.
"""

import unicodedata


def printable(value: object) -> str:
    """Text from elsewhere (a server's error message, a published lineage) made safe to print:
    control characters (terminal escape sequences, bells, carriage returns) written as escapes
    instead of sent to the terminal, wherever the text ends up (our one line, or a traceback
    Prefect prints before it)."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch).startswith("C")
        else ch
        for ch in str(value)
    )


class UserError(Exception):
    """A problem with the input or the environment, phrased as one line for the user."""


class DataError(UserError, ValueError):
    """A data file that is missing, unreadable or not of the expected shape."""
