"""The one exception type rsgn raises for bad input; the CLI prints it on one line."""


class RsgnError(ValueError):
    """Bad user input: an invalid config value, a malformed data file, an unknown backend...

    The message is one line that names the problem; the CLI prints ``rsgn: error: <message>``
    and exits with status 2.
    """
