-- POST /api/v1/auth/token, the OAuth2 password form, as the benchmark user: each request is
-- one argon2 verify and one new login row.
local function form_encode(text)
  return (text:gsub("[^%w%-%._~]", function(character)
    return string.format("%%%02X", string.byte(character))
  end))
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.body = "username=" .. form_encode(os.getenv("BENCH_USERNAME"))
  .. "&password=" .. form_encode(os.getenv("BENCH_PASSWORD"))
