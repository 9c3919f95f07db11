"""The one exception type that temflow raises for bad input."""


class TemflowError(ValueError):
    """Bad input: a config value, file or parameter that cannot be used.

    The message names the offending key or file and what was expected; command-line
    entry points print it as one line and exit non-zero.
    """
