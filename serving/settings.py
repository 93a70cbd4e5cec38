"""The service's settings are the project's one configuration object (bip/config.py)."""

from bip.config import Settings  # noqa: F401
