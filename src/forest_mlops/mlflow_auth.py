"""MLflow's basic-auth app on this platform: its configuration file and the platform's users.

The deployed server runs `mlflow server --app-name basic-auth` (forest_mlops.mlflow_server).
Before it starts, the chart's `auth-users` init container runs `forest-mlops mlflow-auth`, which

1. writes the auth app's ini file (MLFLOW_AUTH_CONFIG_PATH) into the pod's /tmp emptyDir: the
   auth store's URL holds the MySQL password, which the ini format cannot read from the
   environment, so the file is made per pod and never rendered into a manifest;
2. creates or updates every platform user from the passwords in the Secret `R-mlflow-auth`, so
   the Secret is the one source of truth: re-running it (each pod start, each upgrade) is a
   no-op when nothing changed, and a password changed in the Secret is applied.

Users and what they may do. default_permission is READ: every login is one of these users or
one an admin adds, and each needs to read; NO_PERMISSIONS with explicit grants would not take
away anything READ gives here (creating is allowed either way, see inference below) and would
need a grant per experiment id, which only exists once training ran.

- admin: MLflow admin, for people (the UI); its password is only in the Secret.
- train: the Airflow training tasks and the retraining Job. EDIT on every experiment (runs are
  logged into experiments that may predate auth, e.g. after an upgrade) and on the served
  registered model (new versions, the champion alias). MLflow gives the creator of a model
  MANAGE; the next start sets the served model's grant back to EDIT, which is all training
  needs.
- inference: READ only (the default, and granted on the served model by name): it loads the
  champion but cannot add a version to the served model nor move its aliases. MLflow's auth app
  still lets every login create new experiments and registered models of its own (it has no
  create permission short of a DENY, which also blocks reads); those never touch the served
  model.

The auth tables live in MLflow's own MySQL database, next to the tracking tables: the auth app
keeps its own Alembic version table (alembic_version_auth), its table names do not clash with
the tracking store's, and the `mlflow` user already owns that database. A separate database
would need a grant that mysql-init only applies to an empty data directory, so upgraded
installs would lack it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PERMISSION = "READ"
ADMIN_USER = "admin"
TRAIN_USER = "train"
INFERENCE_USER = "inference"

# MLflow's names for the grants below (mlflow.server.auth.permissions).
_EXPERIMENT = "experiment"
_REGISTERED_MODEL = "registered_model"


@dataclass(frozen=True)
class Login:
    username: str
    password: str = ""

    def __repr__(self) -> str:  # never print a password
        return f"Login({self.username!r})"


# How long the server keeps a login it has checked (MLflow's auth_cache_ttl_seconds; 0 turns it
# off, MLflow's own default). Each check is a scrypt hash by design: 95 ms of CPU on an idle core
# here, and every request of every client pays it without the cache. On the kind cluster MLflow
# then used half a core while training ran (560 s of CPU in its first 19 minutes, about 0.5 s a
# request) on a 50m request, and under contention it answered so slowly that a new inference pod
# could not load its model for 10 minutes (read timeouts). MLflow's own guidance value. A
# password changed through MLflow's API drops its cached logins at once (one worker); one changed
# in the Secret reaches the store only at the pod's next start (ensure_users), with the cache
# empty.
LOGIN_CACHE_SECONDS = 60


def config_text(
    database_uri: str,
    *,
    admin_username: str = ADMIN_USER,
    default_permission: str = DEFAULT_PERMISSION,
    login_cache_seconds: int = LOGIN_CACHE_SECONDS,
) -> str:
    """The auth app's ini file. No admin password: the admin user exists before the server
    starts (ensure_users), so the server never needs it."""
    if login_cache_seconds < 0:
        raise ValueError(f"login_cache_seconds must be >= 0, not {login_cache_seconds}")
    # configparser interpolates %(...)s: a literal % (e.g. in a URL-quoted password) is %%.
    uri = database_uri.replace("%", "%%")
    return (
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = {uri}\n"
        f"admin_username = {admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {login_cache_seconds}\n"
    )


def write_config(
    path: Path,
    database_uri: str,
    *,
    admin_username: str = ADMIN_USER,
    login_cache_seconds: int = LOGIN_CACHE_SECONDS,
) -> None:
    """Write the ini readable by its owner only: it holds the database password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(
        config_text(
            database_uri,
            admin_username=admin_username,
            login_cache_seconds=login_cache_seconds,
        )
    )


def ensure_users(
    database_uri: str, *, admin: Login, train: Login, inference: Login, model_name: str
) -> None:
    """Create or update the platform's users and grants in the auth store (idempotent).

    Also runs the auth store's migrations, as the server would at start.
    """
    for login in (admin, train, inference):
        if not login.password:
            raise ValueError(f"no password for MLflow user {login.username!r}")
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    _create_initial_tables_on_mysql(database_uri)
    # MLflow's auth store is untyped.
    store: Any = SqlAlchemyStore()
    store.init_db(database_uri)
    try:
        _upsert_user(store, admin, is_admin=True)
        _upsert_user(store, train, is_admin=False)
        _upsert_user(store, inference, is_admin=False)
        # grant_user_permission is an upsert: re-running it changes nothing.
        store.grant_user_permission(train.username, _EXPERIMENT, "*", "EDIT")
        store.grant_user_permission(train.username, _REGISTERED_MODEL, model_name, "EDIT")
        # READ is also the default; granted by name so that inference keeps reading the served
        # model should the default ever be lowered. No DENY on other registered models: with
        # MLflow 3.17.2 a DENY on registered_model "*" also refused inference reading this
        # model's champion alias (tried), and the auth app lets any login create new, empty
        # models and experiments (tests/test_mlflow_auth.py records it).
        store.grant_user_permission(inference.username, _REGISTERED_MODEL, model_name, "READ")
    finally:
        store.engine.dispose()
    logger.info(
        "MLflow users %s (admin), %s, %s ready",
        admin.username,
        train.username,
        inference.username,
    )


def _create_initial_tables_on_mysql(database_uri: str) -> None:
    """Work around MLflow's first auth migration on MySQL/MariaDB (mlflow/mlflow#9642, open).

    That migration names the foreign key of two tables `fk_user_id`; MySQL wants foreign key
    names unique in a database, so `CREATE TABLE registered_model_permissions` fails and the
    auth app cannot start. Here the three tables of that first revision are created with
    distinct foreign key names; MLflow then finds "auth tables without alembic_version_auth",
    stamps them with the first revision and runs the later migrations itself
    (mlflow.server.auth.db.utils.migrate_if_needed). Other databases: nothing to do.
    """
    import sqlalchemy as sa

    engine = sa.create_engine(database_uri)
    try:
        if engine.dialect.name != "mysql" or sa.inspect(engine).has_table("users"):
            return
        meta = sa.MetaData()
        sa.Table(
            "users",
            meta,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("username", sa.String(255), unique=True),
            sa.Column("password_hash", sa.String(255)),
            sa.Column("is_admin", sa.Boolean()),
        )
        for table, key, unique in (
            ("experiment_permissions", "experiment_id", "unique_experiment_user"),
            ("registered_model_permissions", "name", "unique_name_user"),
        ):
            sa.Table(
                table,
                meta,
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column(key, sa.String(255), nullable=False),
                sa.Column("user_id", sa.Integer(), nullable=False),
                sa.Column("permission", sa.String(255)),
                sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=f"fk_{table}_user_id"),
                sa.UniqueConstraint(key, "user_id", name=unique),
            )
        meta.create_all(engine)
        logger.info("MLflow auth: created the first revision's tables (MySQL foreign key names)")
    finally:
        engine.dispose()


def _upsert_user(store: Any, login: Login, *, is_admin: bool) -> None:
    if store.has_user(login.username, use_primary=True):
        store.update_user(login.username, password=login.password, is_admin=is_admin)
        return
    from mlflow.exceptions import MlflowException

    try:
        store.create_user(login.username, login.password, is_admin=is_admin)
    except MlflowException as exc:
        # Another replica's init step created it in between: update instead.
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        store.update_user(login.username, password=login.password, is_admin=is_admin)
