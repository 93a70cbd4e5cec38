"""All service settings in one place, read from the environment (prefix BIP_)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BIP_", protected_namespaces=())

    model_uri: str = "models:/bip-employment@champion"
    keys_file: Path = Path("var/keys.json")          # hashed API keys and roles
    audit_log: Path = Path("var/audit.jsonl")        # one JSON line per request
    audit_salt_file: Path = Path("var/audit_salt")   # secret salt for hashing person ids
    reload_interval_s: float = 60.0                  # how often to check the champion alias; 0 = never
    max_body_bytes: int = 64 * 1024 * 1024
    max_cohort_citizens: int = 100_000
    require_keys: bool = True
    demo_data: Path | None = Path("data/bip")         # the synthetic cohort offered on the caseworker page
