"""Where the API surfaces and their routers are mounted: each prefix said once, and used by the
routers, the token URL of the docs and the links between operations."""

API_V1_PREFIX = "/api/v1"
# The RealWorld ("Conduit") API: its paths are the contract's, under /api.
CONDUIT_PREFIX = "/api"
AUTH_PREFIX = "/auth"
USERS_PREFIX = "/users"
POSTS_PREFIX = "/posts"
TOKEN_PATH = "/token"
TAGS_PREFIX = "/tags"
FEED_PATH = "/feed"
