"""`certserver init [--demo] [--force]`: create the database and the test CAs, and with
--demo the demo municipalities, people, card files and document signers.

An existing data folder is never overwritten by accident: init refuses unless --force, which
wipes only what init itself creates (the SQLite file, `ca/`, `cards/`; on PostgreSQL every
table, by migrating down to an empty schema). A failed init removes what it created.

`--demo --seed N` makes the demo repeatable: the same N gives identical test CA keys, card
keys, certificate serials, card ids and card files (PIN salts included) and the same database
content, timestamps aside; everything is dated from 00:00 UTC of the day init runs, so two
inits on one day are identical byte for byte. Keys from a known seed are known to anyone:
TEST ONLY, never for production (pki/entropy.py).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from certserver.cli import CliError, settings_from
from certserver.config import Role, Settings
from certserver.data_folder import create_private_file, make_private_folder
from certserver.pki import entropy

if TYPE_CHECKING:  # imported where used at run time (kept lazy for start-up time)
    from certserver.pki.ca import CaBundle

Progress = Callable[[str], None]


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "init",
        parents=[common],
        help="create the database and test CAs (--demo: also demo residents and card files)",
    )
    parser.add_argument(
        "--demo", action="store_true", help="add the demo municipalities (取手市, つくば市), residents and card files"
    )
    parser.add_argument("--force", action="store_true", help="wipe an existing database, CA and card files first")
    parser.add_argument(
        "--split",
        action="store_true",
        help="one store per role (分散管理): DIR/centre/ (kiosks, transactions; no personal data), "
        "DIR/jpki/ (the card certificates issued) and DIR/municipalities/ (the registries), the "
        "centre and the municipalities linked over mutual TLS (DIR/lgwan/); `certserver serve` then "
        "runs the municipalities' certificate server as a process of its own",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="with --demo: repeatable demo data (the same N gives the same keys, serials and cards; "
        "dated from today 00:00 UTC). TEST ONLY: keys from a known seed are public",
    )
    parser.set_defaults(handler=run_init)


def run_init(args: argparse.Namespace) -> int:
    if args.seed is not None and not args.demo:
        raise CliError("--seed needs --demo: only demo data may come from a known seed")
    initialise(settings_from(args), demo=args.demo, force=args.force, progress=print, seed=args.seed, split=args.split)
    return 0


@dataclass
class InitResult:
    database_url: str
    residents: int = 0
    cards: list[Path] = field(default_factory=list)
    index: Path | None = None
    signers: list[str] = field(default_factory=list)


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.resolved_database_url
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def _sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _database_initialised(settings: Settings) -> bool:
    from sqlalchemy import inspect

    from certserver.db.session import make_engine

    db = _sqlite_path(settings)
    if db is not None:
        return db.exists()
    engine = make_engine(settings.resolved_database_url)
    try:
        return "alembic_version" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


ROLES: tuple[Role, ...] = ("centre", "jpki", "municipalities")  # the stores of a data folder laid out per role
MUNICIPAL_SERVER = "municipalities"  # the LGWAN name of the one server hosting every municipality (the "cloud")


def _stores(settings: Settings) -> list[Settings]:
    """The settings of each store: one, or one per role in a split layout."""
    return [settings.for_role(role) for role in ROLES] if settings.split_layout else [settings]


def _existing(settings: Settings) -> list[str]:
    found = []
    if any(_database_initialised(store) for store in _stores(settings)):
        found.append("database")
    for folder in (settings.ca_dir, settings.cards_dir):
        if folder.is_dir():
            if any(folder.iterdir()):
                found.append(f"{folder.name}/")
        elif folder.exists():
            found.append(f"{folder.name} (a file where a folder belongs)")
    return found


def _wipe(settings: Settings, progress: Progress) -> None:
    from alembic import command

    from certserver.db.session import alembic_config

    for store in _stores(settings):
        db = _sqlite_path(store)
        if db is not None:
            for path in _sqlite_files(db):
                path.unlink(missing_ok=True)
        elif _database_initialised(store):
            command.downgrade(alembic_config(store.resolved_database_url), "base")
    roles = [settings.data_dir / role for role in ROLES] if settings.split_layout else []
    for folder in (settings.ca_dir, settings.cards_dir, *roles, settings.lgwan_dir):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            folder.unlink(missing_ok=True)
    progress(
        f"wiped the database, {settings.ca_dir.name}/, {settings.cards_dir.name}/ and any per-role stores "
        f"in {settings.data_dir}"
    )


def _remove_created(settings: Settings, created: list[Path]) -> None:
    for path in reversed(created):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def initialise(
    settings: Settings,
    *,
    demo: bool,
    force: bool = False,
    progress: Progress = print,
    now: datetime | None = None,
    seed: int | None = None,
    split: bool = False,
) -> InitResult:
    """Create the database at head and the test CAs; with `demo` also the demo registry,
    card files (+ cards/index.json) and the municipalities' document signers. With `seed`,
    every key, serial and id comes from a generator seeded with it, and `now` defaults to
    today's 00:00 UTC (repeatable test data: never for production).

    Raises CliError (one line for people) when the data folder is already initialised and
    not `force`, or when any step fails (what this call created is removed again)."""
    if seed is not None:
        moment = now or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with entropy.seeded(seed):
            return _initialise(settings, demo=demo, force=force, progress=progress, moment=moment, split=split)
    return _initialise(
        settings, demo=demo, force=force, progress=progress, moment=now or datetime.now(UTC), split=split
    )


def _initialise(
    settings: Settings, *, demo: bool, force: bool, progress: Progress, moment: datetime, split: bool
) -> InitResult:
    from sqlalchemy.exc import SQLAlchemyError

    from certserver.pki.ca import CaBundle, CaError

    if split and settings.database_url:
        raise CliError("--split lays out a SQLite store per role; it does not take CERTSERVER_DATABASE_URL")
    try:
        existing = _existing(settings)
    except SQLAlchemyError as exc:
        raise CliError(f"cannot reach the database: {exc.__class__.__name__}") from exc
    if existing and not force:
        raise CliError(
            f"{settings.data_dir} is already initialised ({', '.join(existing)}); "
            "use --force to wipe it and start again"
        )
    if existing:
        _wipe(settings, progress)
    created: list[Path] = []
    if not settings.data_dir.exists():
        created.append(settings.data_dir)
    roles = [settings.data_dir / role for role in ROLES] if split else []
    created.extend(roles)
    result = InitResult(database_url=_display_url(settings.resolved_database_url))
    try:
        make_private_folder(settings.data_dir)
        for folder in roles:  # from here on the settings see the split layout
            make_private_folder(folder)
        for store in _stores(settings):
            db = _sqlite_path(store)
            if db is not None:
                created.extend(_sqlite_files(db))
                make_private_folder(db.parent)
                create_private_file(db)  # SQLite gives its WAL and shared-memory files the same mode
            _create_database(store, progress)
        created.extend([settings.ca_dir, settings.cards_dir])
        progress(f"creating the test CAs in {settings.ca_dir}")
        ca = CaBundle.create(settings.ca_dir, now=moment)
        if demo:
            _add_demo(settings, ca, moment, result, progress)
        if split:
            created.append(settings.lgwan_dir)
            _make_lgwan(settings, progress)
    except (CliError, CaError, SQLAlchemyError, OSError, ValueError) as exc:
        _remove_created(settings, created)
        if isinstance(exc, CliError):
            raise
        raise CliError(
            f"init failed: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (nothing was kept)"
        ) from exc
    except BaseException:
        _remove_created(settings, created)
        raise
    progress(
        "done"
        + (
            f": {result.residents} residents, {len(result.cards)} cards, index {result.index}"
            if demo
            else ": empty registry (add --demo for demo data)"
        )
    )
    return result


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _create_database(settings: Settings, progress: Progress) -> None:
    from certserver.db.session import upgrade_to_head

    progress(f"creating the database {_display_url(settings.resolved_database_url)}")
    upgrade_to_head(settings.resolved_database_url)


def _add_demo(settings: Settings, ca: CaBundle, moment: datetime, result: InitResult, progress: Progress) -> None:
    from certserver.db.session import make_engine, make_session_factory, transaction
    from certserver.demo.cards import issue_demo_cards, write_index
    from certserver.demo.world import build_demo_registry
    from certserver.services.cards import CardServiceError
    from certserver.services.rules.calendar import to_jst

    split = settings.split_layout
    registry_engine = make_engine(settings.for_role("municipalities").resolved_database_url)
    jpki_engine = make_engine(settings.for_role("jpki").resolved_database_url) if split else None
    try:
        with contextlib.ExitStack() as stores:
            session = stores.enter_context(transaction(make_session_factory(registry_engine)))
            jpki = None if jpki_engine is None else stores.enter_context(transaction(make_session_factory(jpki_engine)))
            world = build_demo_registry(session, to_jst(moment).date())
            progress(
                f"added the demo registry: 取手市 (08217), つくば市 (08220), "
                f"{world.households} households, {world.residents} residents"
            )
            progress(f"issuing {len(world.cards)} demo cards into {settings.cards_dir}")
            try:
                entries = issue_demo_cards(session, ca, world.cards, settings.cards_dir, moment, progress, jpki=jpki)
            except CardServiceError as exc:
                raise CliError(f"cannot issue the demo cards: {exc}") from exc
        result.residents = world.residents
        result.cards = [settings.cards_dir / e.file for e in entries]
        result.index = write_index(settings.cards_dir, entries)
        progress(f"wrote {result.index} (demo PINs of synthetic people)")
    finally:
        registry_engine.dispose()
        if jpki_engine is not None:
            jpki_engine.dispose()
    result.signers = _ensure_document_signers(settings, ca, progress, moment)


def _make_lgwan(settings: Settings, progress: Progress) -> None:
    """The LGWAN link's test PKI: the centre's client certificate, the municipalities'
    certificate server's server certificate."""
    from certserver.lgwan.tls import make_lgwan_pki

    make_lgwan_pki(settings.lgwan_dir, servers=[MUNICIPAL_SERVER])
    progress(f"made the LGWAN link's test certificates (mutual TLS) in {settings.lgwan_dir}")


def _ensure_document_signers(settings: Settings, ca: CaBundle, progress: Progress, moment: datetime) -> list[str]:
    """Each demo municipality's PDF-signing key, certified by the document CA."""
    from sqlalchemy import select

    from certserver.db.models.registry import Municipality
    from certserver.db.session import make_engine, make_session_factory, transaction
    from certserver.documents.signing import SignerStore

    engine = make_engine(settings.for_role("municipalities").resolved_database_url)
    try:
        with transaction(make_session_factory(engine)) as session:
            municipalities = [
                (m.code, m.name) for m in session.scalars(select(Municipality).order_by(Municipality.code))
            ]
    finally:
        engine.dispose()
    store = SignerStore.open(settings.ca_dir)
    for code, name in municipalities:
        store.ensure_signer(
            code,
            name,
            functools.partial(
                ca.issue_document_signing_certificate, municipality_code=code, municipality_name=name, now=moment
            ),
            chain=[ca.document_ca.cert],
        )
        progress(f"document signer of {name} ({code}) ready")
    return [code for code, _ in municipalities]
