-- A GET of the URL on wrk's command line, with an Authorization header when
-- BENCH_AUTHORIZATION is set ("Bearer <jwt>" or Conduit's "Token <jwt>").
local authorization = os.getenv("BENCH_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
