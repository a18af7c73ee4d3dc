import httpx


async def test_a_large_answer_is_compressed_for_a_client_that_accepts_gzip(
    client: httpx.AsyncClient,
) -> None:
    plain = await client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    compressed = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})

    assert plain.status_code == compressed.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert compressed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers["Vary"]
    assert int(compressed.headers["Content-Length"]) < len(plain.content) / 4
    assert compressed.json() == plain.json()
    # Compression keeps every header the layers outside it add.
    assert compressed.headers["X-Request-ID"]
    assert compressed.headers["X-Content-Type-Options"] == "nosniff"


async def test_a_small_answer_is_sent_as_it_is(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"Accept-Encoding": "gzip"})

    assert response.status_code == 200
    assert len(response.content) < 1024
    assert "Content-Encoding" not in response.headers
