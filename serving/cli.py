"""`bip serve` and `bip keys add`."""

from __future__ import annotations

import os
from pathlib import Path

import typer

keys_app = typer.Typer(add_completion=False, help="API keys (stored hashed).")


MALLOC_ARENAS = "2"


def limit_malloc_arenas() -> None:
    """At most MALLOC_ARENA_MAX glibc malloc arenas in each server process (2 unless set). glibc
    gives every thread that allocates an arena of its own, up to 8 per core, and keeps what is
    freed in an arena for that arena: each thread-pool thread that loaded a reloaded model kept a
    model's worth of memory (docs/serving-load.md, "Soak"). Spawned workers read the variable when
    they start; this process (the only worker with --workers 1) is told through mallopt."""
    value = os.environ.setdefault("MALLOC_ARENA_MAX", MALLOC_ARENAS)
    try:
        import ctypes
        import ctypes.util
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(-8, int(value))  # -8: M_ARENA_MAX
    except (OSError, AttributeError, TypeError, ValueError):  # not glibc (musl, macOS): nothing to limit
        pass


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(os.cpu_count() or 1, min=1,
                                help="Worker processes, one per core by default (each scores on one thread)."),
) -> None:
    """Serve the API and pages; loads the champion at start."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per worker: no oversubscription
    limit_malloc_arenas()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # metrics from every worker need a shared folder, set before the workers start and
        # emptied at each start (prometheus-client's multiprocess mode)
        import shutil
        folder = Path("var/prometheus")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder.resolve())
    import uvicorn
    uvicorn.run("serving.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_level="info", access_log=False)


@keys_app.command("add")
def add_key_command(
    role: str = typer.Option(..., help="caseworker, evaluator or admin"),
    jobcenter: list[str] = typer.Option(None, help="Bind the key to this jobcentre: it reads only citizens "
                                        "enrolled there (repeat for several; default: all)."),
) -> None:
    """Print a new API key for ROLE and store only its hash (BIP_KEYS_FILE, default var/keys.json)."""
    from serving.keys import ROLES, add_key
    from bip.config import Settings
    if role not in ROLES:
        raise typer.BadParameter(f"{role!r}: allowed {', '.join(ROLES)}", param_hint="--role")
    for name in jobcenter or []:
        if not name.strip() or len(name) > 200:
            raise typer.BadParameter(f"{name[:200]!r}: a jobcentre name of 1 to 200 characters",
                                     param_hint="--jobcenter")
    settings = Settings()
    key_id, key = add_key(settings.keys_file, role, jobcenter or None)
    typer.echo(key)
    bound = f", jobcentres {', '.join(sorted(set(jobcenter)))}" if jobcenter else ""
    typer.echo(f"key id {key_id}, role {role}{bound}; stored as a hash in {settings.keys_file}. "
               "This is the only time the key is shown.", err=True)


@keys_app.command("list")
def list_keys_command() -> None:
    """Key ids, roles and creation times (the keys themselves are never stored)."""
    from serving.keys import KeyFileError, list_keys
    from bip.config import Settings
    settings = Settings()
    try:
        keys = list_keys(settings.keys_file)
    except KeyFileError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    for key in keys:
        typer.echo(f"{key['key_id']}  {key['role']:10s}  {key['created'] or '-'}")
    typer.echo(f"{len(keys)} key(s) in {settings.keys_file}", err=True)


@keys_app.command("revoke")
def revoke_key_command(key_id: str = typer.Argument(..., help="The key id shown by `bip keys list`.")) -> None:
    """Remove a key; a running service refuses it from its next request."""
    from serving.keys import KeyFileError, revoke_key
    from bip.config import Settings
    settings = Settings()
    try:
        found = revoke_key(settings.keys_file, key_id)
    except KeyFileError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)
    if not found:
        raise typer.BadParameter(f"no key with id {key_id!r} (see bip keys list)", param_hint="KEY_ID")
    typer.echo(f"revoked key {key_id}")
