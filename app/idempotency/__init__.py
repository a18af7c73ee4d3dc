"""Safe retries of creating requests: `Idempotency-Key`, scoped to the signed-in user."""
