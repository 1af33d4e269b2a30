"""The one base class of problems a user can fix (bad input, missing files, an unreachable or
refusing Hub), each already phrased as one line that names the file, field or repo.

The CLI prints these as one line; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the input or the environment, phrased as one line for the user."""


class DataError(UserError, ValueError):
    """A data file that is missing, unreadable or not of the expected shape."""
