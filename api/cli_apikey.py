"""CLI commands for the HTTP API's keys: create, list, revoke."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .auth import KeyStore, Role, keys_path
from .cli import FormatOpt, app, err, user_errors
from .output import Format, emit

apikey_app = typer.Typer(
    help="API keys for the HTTP API, stored hashed in api-keys.json next to the settings file "
    "(or TTPGRAPH_API_KEYS_FILE).",
    no_args_is_help=True,
)
app.add_typer(apikey_app, name="apikey")


def store() -> KeyStore:
    return KeyStore(keys_file())


def keys_file() -> Path:
    from queries.settings import get_settings

    return keys_path(get_settings())


@apikey_app.command("create")
def apikey_create(
    role: Annotated[
        Role,
        typer.Option(
            help="read: every GET and the Cypher endpoint; write: also uploads, loads and imports."
        ),
    ],  # fmt: skip
    name: Annotated[str | None, typer.Option(help="Who or what the key is for.")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Create a key and print it once: it is stored only as a hash and cannot be shown again."""
    with user_errors():
        key, token = store().create(role=role, name=name)
    data = {**key.public(), "key": token}
    if fmt == Format.table:
        emit(data, fmt, rows=[key.public()], title="API key created")
        typer.echo(token)
        err.print("Keep this key now: it is not stored and cannot be shown again. Send it as "
                  "'X-API-Key: <key>' or 'Authorization: Bearer <key>'.")  # fmt: skip
        return
    emit(data, fmt, rows=[data])


@apikey_app.command("list")
def apikey_list(fmt: FormatOpt = Format.table) -> None:
    """Every key: id, name, role, when created, whether revoked (never the key itself)."""
    with user_errors():
        keys = [k.public() for k in store().list_keys()]
    emit(keys, fmt, columns=["id", "name", "role", "created_at", "revoked", "revoked_at"],
         title=f"API keys ({keys_file()})")  # fmt: skip


@apikey_app.command("revoke")
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see 'ttpgraph apikey list').")],
    fmt: FormatOpt = Format.table,
) -> None:
    """Revoke a key: every API worker refuses it from its next request on."""
    with user_errors():
        key = store().revoke(key_id)
    emit(key.public(), fmt, rows=[key.public()], title="API key revoked")
