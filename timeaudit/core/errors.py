"""Errors a user can cause. The CLI prints their message as one line and exits with 2."""


class UserError(Exception):
    """Something the user can fix: the message names the file or field and the fix."""


class ConfigError(UserError):
    pass


class StoreError(UserError):
    pass


class RosterError(UserError):
    pass
