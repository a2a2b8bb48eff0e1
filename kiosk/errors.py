"""Errors that the kiosk reports to a person in one line."""


class KioskError(Exception):
    """A problem a technician can fix; ``str()`` is the one line shown to them."""


class ConfigError(KioskError):
    pass


class ExhibitError(KioskError):
    pass


class ModelLoadError(KioskError):
    pass


class PortraitError(KioskError):
    pass
