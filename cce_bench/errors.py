"""The one exception type that the command line turns into a one-line message."""


class UserError(Exception):
    """Bad input or set-up that the user can fix; the message names the problem and the fix."""
