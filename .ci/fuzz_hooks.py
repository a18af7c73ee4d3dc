"""Schemathesis hooks of the fuzz step (.ci/fuzz.py loads them through its schemathesis.toml).

One hook, and the only exception to "the fuzzer sees the API as it is": an administrator's
PATCH or DELETE of /api/v1/users/{user_id} that would reach one of the fuzzing identities
(deactivate, demote or delete it) goes to a stand-in instead, an ordinary account signed up
for that request alone, so the request still does what it was generated to do and the rest of
the run is not silently answered 401 or 403. Every other user id goes out as generated; what
these operations do to an account has ordinary tests in tests/users/test_router.py.

It runs in `before_call`, the last step before any request leaves, because values that come from
links, from the resource pool or from examples are explicit: schemathesis lets them win over
`map_path_parameters` (specs/openapi/_hypothesis.py, get_parameters_value), and the examples
phase does not apply `map_case`.
"""

import os
import secrets
from typing import Any
from urllib.parse import unquote

import httpx
import schemathesis
from pydantic import TypeAdapter, ValidationError
from schemathesis import Case, HookContext

BASE_URL = os.environ["FUZZ_BASE_URL"]
PROTECTED_USER_IDS = frozenset(int(i) for i in os.environ["FUZZ_PROTECTED_USER_IDS"].split(","))
ADMINISTRATION = frozenset({"PATCH /api/v1/users/{user_id}", "DELETE /api/v1/users/{user_id}"})
# Names no account has, should signing up a stand-in fail: the request then gets its 404.
NO_SUCH_USER_ID = 2**31 - 1

# Read generously (" 1", "+1", "01" and "1.0" are 1): the app refuses such ids with a 422, but
# should that ever change, they must not reach a fuzzing identity either.
_ROW_ID = TypeAdapter(int)


def reaches_fuzzing_identity(user_id: object) -> bool:
    # The server sees the percent-decoded path, redirects "/users/1/" to "/users/1", and routes
    # "/users/me" to the caller's own account.
    text = unquote(str(user_id)).rstrip("/")
    if text == "me":
        return True
    try:
        return _ROW_ID.validate_python(text) in PROTECTED_USER_IDS
    except ValidationError:
        return False


def stand_in_user_id() -> int:
    name = f"stand_in_{secrets.token_hex(6)}"
    account = {"username": name, "email": f"{name}@example.com", "password": secrets.token_hex()}
    try:
        response = httpx.post(f"{BASE_URL}/api/v1/users/", json=account, timeout=10)
    except httpx.HTTPError:
        return NO_SUCH_USER_ID
    if response.status_code != 201:
        return NO_SUCH_USER_ID
    user_id: int = response.json()["id"]
    return user_id


@schemathesis.hook
def before_call(context: HookContext, case: Case[Any], kwargs: dict[str, object]) -> None:
    if case.operation.label not in ADMINISTRATION or not case.path_parameters:
        return
    if reaches_fuzzing_identity(case.path_parameters.get("user_id")):
        case.path_parameters["user_id"] = stand_in_user_id()
