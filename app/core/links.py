"""The links Quill writes (a Location): under PUBLIC_BASE_URL when it is set, else a path.

Never from the request's Host header, which a client sets to whatever it likes: a link built from
it sends the next request, and maybe its token, wherever that client said.
"""

from typing import Annotated, Any

from fastapi import Depends, Request

from app.core.config import Settings


def public_link(path: str, *, public_base_url: str, root_path: str) -> str:
    """`path`, a path of the app, as clients reach it: under PUBLIC_BASE_URL (where clients
    reach Quill's root, any prefix included), else relative to the host the client used, under
    the root path Quill is mounted at."""
    return f"{public_base_url}{path}" if public_base_url else f"{root_path}{path}"


class Links:
    """The links of one request (LinksDep): `links.url_for("get_post", post_id=7)`."""

    def __init__(self, request: Request) -> None:
        self._app = request.app
        settings: Settings = request.app.state.settings
        self._public_base_url = settings.PUBLIC_BASE_URL
        self._root_path: str = request.scope.get("root_path", "")

    def url_for(self, name: str, /, **path_params: Any) -> str:
        """The link to the route named `name` (its function name) with these path parameters."""
        path = str(self._app.url_path_for(name, **path_params))
        return public_link(path, public_base_url=self._public_base_url, root_path=self._root_path)


LinksDep = Annotated[Links, Depends()]
