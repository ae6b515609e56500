"""``/docs`` works on an air-gapped host: every asset the page loads is served by Keel itself."""

from __future__ import annotations

import re

import msgspec
from litestar.testing import TestClient

from keel.app import create_app
from keel.config import Settings

_ASSET = re.compile(r"""(?:src|href)=['"]([^'"]+)['"]""")


def _debug(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, app=msgspec.structs.replace(settings.app, debug=True))


def test_docs_page_loads_nothing_from_another_host(local_settings: Settings) -> None:
    with TestClient(create_app(_debug(local_settings), components=[])) as client:
        page = client.get("/docs/swagger")
        assert page.status_code == 200, page.text
        urls = _ASSET.findall(page.text)
        assert len(urls) >= 4, urls  # css, bundle, preset, favicon
        for url in urls:
            assert url.startswith("/docs/assets/"), f"/docs loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text


def test_default_docs_page_and_schema_are_served(local_settings: Settings) -> None:
    with TestClient(create_app(_debug(local_settings), components=[])) as client:
        assert "/docs/assets/swagger-ui-bundle.js" in client.get("/docs").text
        schema = client.get("/docs/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    assert not any(path.startswith("/docs") for path in schema["paths"])


def test_no_docs_assets_without_debug(local_settings: Settings) -> None:
    with TestClient(create_app(local_settings, components=[])) as client:
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 404
