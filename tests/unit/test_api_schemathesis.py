"""Property tests generated from the app's own OpenAPI schema (schemathesis).

Positive and negative requests for every operation: no 5xx, every status and body as the
schema documents them, and invalid requests rejected.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from cirrus_api.app import create_app
from cirrus_api.dispatch import Dispatcher
from cirrus_common.settings import Settings
from tests.fakes import ScriptedBackend

app = create_app(Settings(auth_enabled=False), Dispatcher({"lambda": ScriptedBackend()}))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_contract(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()
