"""What is measured: each endpoint's path, wrk script, credentials and which of a
configuration's two servers (cache on, cache off) it is sent to."""

from dataclasses import dataclass
from enum import StrEnum

from bench import dataset


class Cache(StrEnum):
    ON = "cache on"
    OFF = "cache off"


class Credentials(StrEnum):
    ANONYMOUS = "anonymous"
    BEARER = "bearer"
    CONDUIT = "conduit"


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    scripts: tuple[str, ...]
    cache: Cache = Cache.ON
    credentials: Credentials = Credentials.ANONYMOUS
    # None: the run's default connection count.
    connections: int | None = None
    # A floor under the run's duration, for requests slow enough that a short run would
    # finish none of them.
    min_seconds: float = 0.0


# argon2 makes each login tens of milliseconds of CPU: fewer connections, or the queue alone
# would be measured.
LOGIN_CONNECTIONS = 16
# At ~170 ms of CPU per argon2 verify on 2 cores, the first of 16 logins ends after ~1.4 s.
LOGIN_MIN_SECONDS = 3.0
GET_SCRIPTS = ("authorized_get",)
_GET = GET_SCRIPTS
HEALTH = "health"
POST_BY_ID_CACHED = "post by id, cached"
POST_BY_ID_UNCACHED = "post by id, cache off"
LIST_UNCACHED = "list first page, cache off"
FEED = "feed (v1)"
CREATE_POST = "create post"
LOGIN = "login"


def every_endpoint(plan: dataset.DatasetPlan) -> tuple[Endpoint, ...]:
    # A post in the middle of the data set: neither the newest nor the oldest page.
    post_id = plan.posts // 2
    slug = dataset.slug_of_post(post_id)
    return (
        Endpoint(HEALTH, "/health", _GET),
        Endpoint(POST_BY_ID_CACHED, f"/api/v1/posts/{post_id}", _GET),
        Endpoint(POST_BY_ID_UNCACHED, f"/api/v1/posts/{post_id}", _GET, Cache.OFF),
        Endpoint("users/me", "/api/v1/users/me", _GET, credentials=Credentials.BEARER),
        Endpoint("list first page, cached", "/api/v1/posts/?limit=20", _GET),
        Endpoint(LIST_UNCACHED, "/api/v1/posts/?limit=20", _GET, Cache.OFF),
        Endpoint(FEED, "/api/v1/feed?limit=20", _GET, credentials=Credentials.BEARER),
        Endpoint(CREATE_POST, "/api/v1/posts/", ("create_post",), credentials=Credentials.BEARER),
        Endpoint(
            LOGIN,
            "/api/v1/auth/token",
            ("login",),
            connections=LOGIN_CONNECTIONS,
            min_seconds=LOGIN_MIN_SECONDS,
        ),
        Endpoint("conduit articles", "/api/articles?limit=20", _GET),
        Endpoint(
            "conduit feed",
            "/api/articles/feed?limit=20",
            _GET,
            credentials=Credentials.CONDUIT,
        ),
        Endpoint("conduit article by slug", f"/api/articles/{slug}", _GET),
    )


def growth_endpoints(plan: dataset.DatasetPlan) -> tuple[Endpoint, ...]:
    """The reads whose cost may grow with the table: all uncached, so the database answers."""
    by_name = {endpoint.name: endpoint for endpoint in every_endpoint(plan)}
    feed = by_name[FEED]
    uncached_feed = Endpoint(feed.name, feed.path, feed.scripts, Cache.OFF, feed.credentials)
    return (by_name[LIST_UNCACHED], by_name[POST_BY_ID_UNCACHED], uncached_feed)
