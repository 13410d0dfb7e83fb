"""The API fuzzed from its own OpenAPI with Schemathesis (api.md, issue 14): whatever a
client sends, valid by the schema or not, no answer is a 5xx, and every answer matches
the schema documented for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.conftest import Market
from tests.test_api import Api, serving

pytestmark = pytest.mark.slow



@pytest.fixture
def api(sqlite_market: Market) -> Iterator[Api]:
    yield from serving(sqlite_market)


#: Examples per operation and mode (about 45 operations): the operator's commands write and
#: reach every rule; a member's answers go through what it may see. Bounded under a minute.
@pytest.mark.parametrize(("actor", "examples"), [("operator", 6), ("huawei", 3)])
def test_no_request_gets_a_5xx_and_every_answer_matches_its_documented_schema(
    api: Api, actor: str, examples: int
) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    headers = api.as_(actor)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in sorted(operations, key=lambda o: o.path != "/v1/events"):  # the stream first: the newest
        # The event stream follows the log until the token is revoked: fuzz it in the mode that ends.
        query = {"follow": "false"} if operation.path == "/v1/events" else None
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(mode, query=query))
            def fuzz(case: schemathesis.Case) -> None:
                response = case.call(headers=headers)
                case.validate_response(response, checks=checks, headers=headers)

            try:
                fuzz()
            except Unsatisfiable:
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation  # no parameter to get wrong
