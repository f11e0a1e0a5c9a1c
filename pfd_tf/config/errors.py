"""The one error a bad config raises; its message names the key that must change (e.g. `features[3].kind`)."""


class ConfigError(ValueError):
    """A config value is missing, unknown or inconsistent; the message names the key."""
