"""The OpenAPI docs (``/docs``, only with DEBUG): Swagger UI served from a Python package.

Litestar's Swagger plugin loads its JavaScript, CSS and favicon from a CDN by default, so on an
air-gapped host ``/docs`` is a blank page. The assets come from ``swagger-ui-bundle-v2`` (PyPI,
Swagger UI 5, which renders OpenAPI 3.1) and are served under ``/docs/assets/``; the schema
itself is at ``/docs/openapi.json``.
"""

from __future__ import annotations

from pathlib import Path

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from keel import __version__

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"


def swagger_assets_dir() -> Path:
    return Path(str(swagger_ui_path))


def openapi_config(title: str) -> OpenAPIConfig:
    swagger = SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )
    return OpenAPIConfig(title=title, version=__version__, render_plugins=[swagger], path=DOCS_PATH)


def asset_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[swagger_assets_dir()],
        include_in_schema=False,
        name="swagger-assets",
    )
