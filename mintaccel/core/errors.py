"""The one exception type that the CLI turns into a single line on stderr and exit status 2."""


class UserError(Exception):
    """A problem with the user's input (file, option, model) rather than a bug in mintaccel."""
