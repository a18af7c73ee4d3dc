"""A configuration brought up for measuring: its database created and seeded, its Redis
database flushed, its two Quill servers (cache on, cache off) launched, then waited for and
signed in to."""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import dataset, redis_db, seed, tokens
from bench.configurations import Configuration, new_secret_key, quill_environment
from bench.endpoints import Cache, Credentials
from bench.postgres import PostgresDatabase
from bench.servers import Server


@dataclass(frozen=True)
class Deployment:
    configuration: Configuration
    servers: dict[Cache, Server]
    authorizations: dict[Credentials, str]
    seed_seconds: float

    @property
    def name(self) -> str:
        return self.configuration.name


@contextmanager
def postgres_configuration(
    name: str, database: PostgresDatabase, redis_url: str | None
) -> Iterator[Configuration]:
    """A PostgreSQL configuration on a database created for it, dropped on the way out."""
    database.create_fresh()
    try:
        yield Configuration(name, database.sqlalchemy_url, database, redis_url)
    finally:
        database.drop()


@dataclass(frozen=True)
class Launch:
    """A configuration seeded and its servers booting: the next one seeds meanwhile (a Quill
    worker takes seconds of CPU to import)."""

    configuration: Configuration
    servers: dict[Cache, Server]
    seed_seconds: float
    launched_at: float

    def wait_until_ready(self) -> Deployment:
        name = self.configuration.name
        for cache, server in self.servers.items():
            if cache is not Cache.OFF and server is self.servers.get(Cache.OFF):
                continue
            server.wait_until_serving()
            print(
                f"[{name}] {cache} server on {server.base_url}, workers "
                f"{server.worker_pids()}, up after {time.monotonic() - self.launched_at:.1f} s",
                flush=True,
            )
        # Tokens work on both servers: they share the secret key and the database.
        any_server = next(iter(self.servers.values()))
        authorizations = {
            Credentials.ANONYMOUS: "",
            Credentials.BEARER: tokens.bearer_authorization(any_server.base_url),
            Credentials.CONDUIT: tokens.conduit_authorization(any_server.base_url),
        }
        return Deployment(self.configuration, self.servers, authorizations, self.seed_seconds)


@contextmanager
def launched(
    configuration: Configuration,
    plan: dataset.DatasetPlan,
    work_dir: Path,
    repo_root: Path,
    caches: tuple[Cache, ...] = (Cache.ON, Cache.OFF),
) -> Iterator[Launch]:
    """Seeds the configuration and launches its servers; they are stopped on the way out."""
    if configuration.redis_url:
        redis_db.flush(configuration.redis_url)
    print(f"[{configuration.name}] seeding {plan.posts} posts, {plan.users} users ...", flush=True)
    target = seed.SeedTarget(configuration.database_url, configuration.postgres_dsn)
    seed_seconds = seed.seed(target, plan, repo_root)
    print(f"[{configuration.name}] seeded in {seed_seconds:.1f} s", flush=True)
    secret_key = new_secret_key()
    with ExitStack() as stack:
        servers: dict[Cache, Server] = {}
        launched_at = time.monotonic()
        # Without Redis the cache is off (several workers must not keep caches of their own):
        # one server serves the rows of both.
        for cache in caches if configuration.redis_url else (Cache.OFF,):
            server_dir = work_dir / f"{configuration.name}-{cache.name.lower()}"
            server_dir.mkdir(parents=True, exist_ok=True)
            environment = quill_environment(
                configuration, secret_key, server_dir, cached=cache is Cache.ON
            )
            server = Server(
                f"{configuration.name} ({cache})",
                "app.main:app",
                environment,
                server_dir / "server.log",
            )
            server.launch(repo_root)
            stack.callback(server.stop)
            servers[cache] = server
        for cache in caches:
            servers.setdefault(cache, servers[Cache.OFF])
        yield Launch(configuration, servers, seed_seconds, launched_at)
