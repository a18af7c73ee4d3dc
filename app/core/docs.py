"""Swagger UI and ReDoc served from this process, so the docs work with no internet.

The JavaScript and CSS come from the fastapi-offline package; only its files are used. Each page
is rendered once, and sent with a Content-Security-Policy that lets it load only Quill's own
assets and run only its own inline script (app/core/security_headers.py).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.core.security_headers import page_policy

ASSETS_PATH = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Page:
    html: bytes
    content_security_policy: str

    @classmethod
    def of(
        cls, rendered: HTMLResponse, *, inline_styles: bool = False, blob_workers: bool = False
    ) -> "_Page":
        html = bytes(rendered.body)
        policy = page_policy(
            inline_scripts=_INLINE_SCRIPT.findall(html.decode()),
            inline_styles=inline_styles,
            blob_workers=blob_workers,
        )
        return cls(html, policy)

    def response(self) -> HTMLResponse:
        return HTMLResponse(
            self.html, headers={"Content-Security-Policy": self.content_security_policy}
        )


def install_docs(app: FastAPI) -> None:
    """Add /docs and /redoc; create the app with docs_url=None and redoc_url=None."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    swagger_ui_page = _Page.of(
        get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )
    )
    redoc_page = _Page.of(
        get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        ),
        # ReDoc's styled-components write <style> elements as it renders, and its search runs
        # in a worker it starts from a blob: URL. The page shows only Quill's own schema.
        inline_styles=True,
        blob_workers=True,
    )

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return swagger_ui_page.response()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return redoc_page.response()
