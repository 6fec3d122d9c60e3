"""What can go wrong with a backup or a restore, in words an administrator can act on."""


class BackupError(Exception):
    """The backup or restore was refused or failed; nothing was left half-written."""
