import re

import httpx
import pytest


def local_assets(html: str) -> set[str]:
    return set(re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', html))


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
async def test_docs_pages_load_only_assets_served_by_quill(
    client: httpx.AsyncClient, page: str, assets: set[str]
) -> None:
    response = await client.get(page)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "cdn" not in html.lower()
    assert "http://" not in html
    assert "https://" not in html
    assert "/openapi.json" in html
    assert local_assets(html) == {f"/docs-assets/{name}" for name in assets}
    for asset in local_assets(html):
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert served.content
