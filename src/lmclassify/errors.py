"""The package's warning class; input errors are plain `ValueError` / `TypeError`."""


class LmclassifyWarning(UserWarning):
    """Something the user should act on: a leak, truncation, an unparseable answer."""
