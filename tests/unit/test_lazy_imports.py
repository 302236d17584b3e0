"""ApiFunction's process must never load torch or transformers (its cold start is the API's)."""

from __future__ import annotations

from tests.imports import heavy_modules_after


def test_api_app_and_handler_stay_light() -> None:
    statement = (
        "from cirrus_api.app import create_app, handler, build_dispatcher\n"
        "from cirrus_common.settings import Settings\n"
        "s = Settings(auth_enabled=False)\n"
        "create_app(s, build_dispatcher(s)).openapi()\n"
    )
    assert heavy_modules_after(statement) == set()


def test_check_detects_a_heavy_import() -> None:
    # The probe itself must be able to fail: importing torch is seen.
    assert heavy_modules_after("import torch") == {"torch"}
