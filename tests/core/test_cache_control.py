import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import auth_headers, make_post, make_user
from tests.helpers import assert_problem

NEW_USER = {"username": "ann", "email": "ann@example.com", "password": "a long passphrase"}


def vary(response: httpx.Response) -> set[str]:
    return {value.strip() for value in response.headers.get("Vary", "").split(",") if value}


def assert_private(response: httpx.Response) -> None:
    assert response.headers["Cache-Control"] == "no-store", response.request.url
    assert "Authorization" in vary(response)


async def test_what_shows_an_email_is_never_stored(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="admin", is_superuser=True)
    bob = await make_user(session, username="bob")
    admin_headers = await auth_headers(client, admin)

    signup = await client.post("/api/v1/users/", json=NEW_USER)
    me = await client.get("/api/v1/users/me", headers=admin_headers)
    changed = await client.patch("/api/v1/users/me", json={"bio": "Hi."}, headers=admin_headers)
    listed = await client.get("/api/v1/users/", headers=admin_headers)
    administered = await client.patch(
        f"/api/v1/users/{bob.id}", json={"is_superuser": False}, headers=admin_headers
    )

    for response in (signup, me, changed, listed, administered):
        assert response.status_code in (200, 201), response.text
        assert response.headers["Cache-Control"] == "no-store", response.request.url
    # Reads that depend on the token vary with it.
    assert_private(me)
    assert_private(listed)


async def test_reads_that_depend_on_the_caller_vary_with_authorization(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ann = await make_user(session, username="ann")
    post = await make_post(session, ann)

    for path in (
        "/api/v1/posts/",
        f"/api/v1/posts/{post.id}",
        f"/api/v1/users/{ann.id}",
        f"/api/v1/users/{ann.id}/posts",
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "Authorization" in vary(response), path
        # Public: a cache may keep one answer per caller.
        assert "Cache-Control" not in response.headers, path


async def test_an_anonymous_404_that_an_administrator_would_not_get_varies_too(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await make_user(session, username="admin", is_superuser=True)
    gone = await make_user(session, username="gone", is_active=False)
    post = await make_post(session, gone)

    hidden_user = await client.get(f"/api/v1/users/{gone.id}")
    hidden_post = await client.get(f"/api/v1/posts/{post.id}")
    seen = await client.get(f"/api/v1/users/{gone.id}", headers=await auth_headers(client, admin))

    assert_problem(hidden_user, 404, "user_not_found")
    assert_problem(hidden_post, 404, "post_not_found")
    assert seen.status_code == 200
    for response in (hidden_user, hidden_post, seen):
        assert "Authorization" in vary(response)


async def test_answers_that_depend_on_no_caller_declare_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert "Authorization" not in vary(response)
    assert "Cache-Control" not in response.headers
