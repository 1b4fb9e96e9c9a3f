"""template.yaml is the one source of truth: the code's names and versions must agree with it."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fhir_encounter.config import (
    DEFAULT_CAPABILITIES,
    DEFAULT_GRANT_TYPES,
    DEFAULT_TOKEN_AUTH_METHODS,
    DEFAULT_TOKEN_SIGNING_ALGS,
    ENVIRONMENT,
    ConfigurationError,
    Settings,
)
from fhir_encounter.cors import CorsOriginError, CorsPolicy
from fhir_encounter.search.parameters import RESULT_PARAMETERS, SEARCH_PARAMETERS
from fhir_encounter.store import keys as schema
from fhir_encounter.store.items import projections
from fhir_encounter_tools.template import api_routes, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def table_properties() -> dict[str, Any]:
    properties: dict[str, Any] = TEMPLATE["Resources"]["EncounterTable"]["Properties"]
    return properties


def test_indexes_in_code_equal_the_template() -> None:
    indexes = {
        index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
        for index in table_properties()["GlobalSecondaryIndexes"]
    }
    assert indexes == schema.INDEXES


@pytest.mark.parametrize("index", table_properties()["GlobalSecondaryIndexes"], ids=lambda i: i["IndexName"])
def test_every_index_projects_what_a_match_needs_and_no_resource(index: dict[str, Any]) -> None:
    projection = index["Projection"]
    assert projection["ProjectionType"] == "INCLUDE"
    keys = {key["AttributeName"] for key in index["KeySchema"]}
    assert set(projections()[index["IndexName"]]) == set(projection["NonKeyAttributes"]) - keys
    assert schema.ATTR_RESOURCE not in projection["NonKeyAttributes"]


def test_table_keys_equal_the_code() -> None:
    keys = [key["AttributeName"] for key in table_properties()["KeySchema"]]
    assert keys == [schema.PARTITION_KEY, schema.SORT_KEY]


def test_table_is_protected_encrypted_and_on_demand() -> None:
    properties = table_properties()
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}
    assert properties["DeletionProtectionEnabled"] == {"Ref": "TableDeletionProtection"}


def test_functions_may_only_read_and_never_scan() -> None:
    functions = [k for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"]
    assert "Policies" not in TEMPLATE["Resources"]["CapabilityStatementFunction"]["Properties"]
    for name in ("ReadEncounterFunction", "SearchEncountersFunction"):
        assert name in functions
        policies = TEMPLATE["Resources"][name]["Properties"]["Policies"]
        actions = {action for policy in policies for st in policy["Statement"] for action in st["Action"]}
        assert actions <= {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}, name


def test_one_python_version_everywhere() -> None:
    assert TEMPLATE["Globals"]["Function"]["Runtime"] == "python3.13"
    assert TEMPLATE["Resources"]["EncounterLayer"]["Metadata"]["BuildMethod"] == "python3.13"
    assert PYPROJECT["project"]["requires-python"] == ">=3.13,<3.14"
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py313"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == "3.13"


def test_aws_runs_arm64_and_one_parameter_sets_the_architecture_everywhere() -> None:
    """Local runs (`make sam-local`, `make test-sam`) override it with the host's; no second template."""
    parameter = TEMPLATE["Parameters"]["Architecture"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("arm64", ["arm64", "x86_64"])
    layer = TEMPLATE["Resources"]["EncounterLayer"]
    assert TEMPLATE["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layer["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}
    functions = [r for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Serverless::Function"]
    assert all("Architectures" not in function["Properties"] for function in functions)


def test_layer_installs_the_project_runtime_dependencies() -> None:
    layer = TEMPLATE["Resources"]["EncounterLayer"]["Properties"]["ContentUri"]
    requirements = (ROOT / layer / "requirements.txt").read_text().split()
    assert sorted(requirements) == sorted(PYPROJECT["project"]["dependencies"])
    assert (ROOT / layer / "fhir_encounter" / "__init__.py").is_file()


def test_every_route_has_its_handler_and_an_event_file() -> None:
    routes = api_routes(TEMPLATE, ROOT)
    paths = ["/Encounter/{id}", "/Encounter", "/metadata", "/.well-known/smart-configuration"]
    assert {(r.method, r.path) for r in routes} == {
        *((m, p) for p in paths for m in ("GET", "OPTIONS")),
        ("POST", "/Encounter/_search"),
        ("OPTIONS", "/Encounter/_search"),
    }
    for route in routes:
        module, function = route.handler.split(".")
        source = (route.code_dir / f"{module}.py").read_text()
        assert f"\n{function} = create_handler(" in source
    resources = {json.loads(path.read_text())["resource"] for path in (ROOT / "events").glob("*.json")}
    assert resources == {route.path for route in routes}


def definition() -> dict[str, Any]:
    body: dict[str, Any] = TEMPLATE["Resources"]["EncounterApi"]["Properties"]["DefinitionBody"]
    return body


def security_of(path: str, smart: bool) -> Any:
    """A route's OpenAPI security as CloudFormation resolves it for one AuthMode."""
    method = "post" if path == "/Encounter/_search" else "get"
    chosen = definition()["paths"][path][method]["security"]["Fn::If"]
    assert chosen[0] == "IsSmart"
    return chosen[1] if smart else chosen[2]


@pytest.mark.parametrize(
    "path",
    ["/Encounter/{id}", "/Encounter", "/Encounter/_search", "/metadata", "/.well-known/smart-configuration"],
)
def test_iam_mode_signs_every_route(path: str) -> None:
    assert security_of(path, smart=False) == [{"sigv4": []}]


@pytest.mark.parametrize(
    ("path", "security"),
    [
        ("/Encounter/{id}", [{"SmartAuthorizer": []}]),
        ("/Encounter", [{"SmartAuthorizer": []}]),
        ("/Encounter/_search", [{"SmartAuthorizer": []}]),
        ("/metadata", []),
        ("/.well-known/smart-configuration", []),
    ],
)
def test_smart_mode_puts_the_authorizer_on_data_and_leaves_discovery_public(path: str, security: Any) -> None:
    assert security_of(path, smart=True) == security


def test_the_smart_authorizer_is_a_cached_request_authorizer_on_the_authorization_header() -> None:
    scheme = definition()["components"]["securitySchemes"]["SmartAuthorizer"]["Fn::If"]
    assert scheme[0] == "IsSmart"
    authorizer = scheme[1]["x-amazon-apigateway-authorizer"]
    assert authorizer["type"] == "request"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert authorizer["authorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheTtl"}
    assert TEMPLATE["Resources"]["SmartAuthorizerFunction"]["Condition"] == "IsSmart"
    requirements = (ROOT / "functions" / "authorizer" / "requirements.txt").read_text()
    assert "PyJWT" in requirements
    layer = (ROOT / "layers" / "encounter" / "python" / "requirements.txt").read_text()
    assert "jwt" not in layer.lower()


def gateway_responses() -> dict[str, Any]:
    """Every gateway response, both branches of a conditional one."""
    found: dict[str, Any] = {}
    for name, response in definition()["x-amazon-apigateway-gateway-responses"].items():
        branches = response["Fn::If"][1:] if "Fn::If" in response else [response]
        for n, branch in enumerate(branches):
            found[f"{name}#{n}"] = branch
    return found


@pytest.mark.parametrize("name", sorted(gateway_responses()))
def test_api_gateway_own_errors_are_operation_outcomes(name: str) -> None:
    response = gateway_responses()[name]
    body = response["responseTemplates"]["application/json"].replace("$context.error.responseType", "X")
    outcome = json.loads(body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert response["responseParameters"]["gatewayresponse.header.Content-Type"] == "'application/fhir+json'"


@pytest.mark.parametrize("name", sorted(gateway_responses()))
def test_gateway_error_bodies_hold_no_request_data(name: str) -> None:
    """Only $context.error.responseType (an enum of API Gateway's) may appear: no path, no header,
    no message (an IAM signature error's message quotes the Authorization header, unescaped)."""
    template = gateway_responses()[name]["responseTemplates"]["application/json"]
    assert set(re.findall(r"\$[A-Za-z.{}]+", template)) <= {"$context.error.responseType"}


CORS_ORIGIN = {
    "Fn::If": [
        "HasCors",
        {"Fn::If": ["CorsAnyOrigin", "'*'", "method.request.header.Origin"]},
        {"Ref": "AWS::NoValue"},
    ]
}


@pytest.mark.parametrize("name", sorted(gateway_responses()))
def test_gateway_errors_carry_the_security_headers_and_cors_when_it_is_on(name: str) -> None:
    parameters = gateway_responses()[name]["responseParameters"]
    assert parameters["gatewayresponse.header.Cache-Control"] == "'no-store'"
    assert parameters["gatewayresponse.header.X-Content-Type-Options"] == "'nosniff'"
    assert parameters["gatewayresponse.header.Access-Control-Allow-Origin"] == CORS_ORIGIN
    assert parameters["gatewayresponse.header.Vary"] == {
        "Fn::If": ["CorsOriginList", "'Origin'", {"Ref": "AWS::NoValue"}]
    }


@pytest.mark.parametrize("name", sorted(gateway_responses()))
def test_a_gateway_401_lets_a_browser_app_read_its_challenge_when_cors_is_on(name: str) -> None:
    response = gateway_responses()[name]
    parameters = response["responseParameters"]
    exposed = parameters.get("gatewayresponse.header.Access-Control-Expose-Headers")
    if "gatewayresponse.header.WWW-Authenticate" in parameters:
        assert response["statusCode"] == 401
        assert exposed == {"Fn::If": ["HasCors", "'WWW-Authenticate'", {"Ref": "AWS::NoValue"}]}
    else:
        assert exposed is None


def test_the_cors_parameter_reaches_the_functions_and_its_conditions_read_it() -> None:
    parameter = TEMPLATE["Parameters"]["CorsAllowedOrigins"]
    assert parameter["Default"] == ""
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CORS_ALLOWED_ORIGINS"] == {"Ref": "CorsAllowedOrigins"}
    conditions = TEMPLATE["Conditions"]
    assert conditions["HasCors"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, ""]}]}
    assert conditions["CorsAnyOrigin"] == {"Fn::Equals": [{"Ref": "CorsAllowedOrigins"}, "*"]}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "*",
        "https://app.example.org",
        "https://a.example.org,http://127.0.0.1:8080",
        "https://a.test, https://b.test",
    ],
)
def test_the_cors_parameter_accepts_what_the_functions_accept(value: str) -> None:
    assert re.fullmatch(TEMPLATE["Parameters"]["CorsAllowedOrigins"]["AllowedPattern"], value)
    CorsPolicy.parse(value)


@pytest.mark.parametrize(
    "value", ["app.example.org", "https://a.test/path", "*,https://a.test", "https://a.test?x", "null"]
)
def test_the_cors_parameter_refuses_what_is_no_origin(value: str) -> None:
    assert re.fullmatch(TEMPLATE["Parameters"]["CorsAllowedOrigins"]["AllowedPattern"], value) is None
    with pytest.raises(CorsOriginError):
        CorsPolicy.parse(value)


@pytest.mark.parametrize(
    "path",
    ["/Encounter/{id}", "/Encounter", "/Encounter/_search", "/metadata", "/.well-known/smart-configuration"],
)
def test_every_path_answers_a_preflight_without_a_token_from_the_capability_function(path: str) -> None:
    options = definition()["paths"][path]["options"]
    assert options["security"] == []
    integration = options["x-amazon-apigateway-integration"]
    assert integration["type"] == "aws_proxy"
    assert "${CapabilityStatementFunctionAliaslive}" in integration["uri"]["Fn::Sub"]
    events = TEMPLATE["Resources"]["CapabilityStatementFunction"]["Properties"]["Events"].values()
    assert {"RestApiId": {"Ref": "EncounterApi"}, "Path": path, "Method": "OPTIONS"} in [
        event["Properties"] for event in events
    ]


def test_a_rejected_token_is_a_401_with_invalid_token_and_a_missing_one_a_bare_bearer_challenge() -> None:
    responses = gateway_responses()
    assert responses["UNAUTHORIZED#0"]["statusCode"] == 401
    assert (
        responses["UNAUTHORIZED#0"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]
        == "'Bearer'"
    )
    smart_denied, iam_denied = responses["ACCESS_DENIED#0"], responses["ACCESS_DENIED#1"]
    assert smart_denied["statusCode"] == 401
    assert smart_denied["responseParameters"]["gatewayresponse.header.WWW-Authenticate"] == (
        "'Bearer error=\"invalid_token\"'"
    )
    assert iam_denied["statusCode"] == 403
    assert responses["AUTHORIZER_FAILURE#0"]["statusCode"] == 503
    assert (
        responses["AUTHORIZER_FAILURE#0"]["responseParameters"]["gatewayresponse.header.Retry-After"] == "'2'"
    )


def test_smart_mode_needs_an_issuer_and_an_audience() -> None:
    assertions = TEMPLATE["Rules"]["SmartNeedsAnIssuerAndAudience"]["Assertions"]
    checked = {a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for a in assertions}
    assert checked == {"OidcIssuer", "OidcAudience"}


@pytest.mark.parametrize(
    "function",
    [
        "ReadEncounterFunction",
        "SearchEncountersFunction",
        "CapabilityStatementFunction",
        "SmartAuthorizerFunction",
    ],
)
def test_every_function_keeps_its_logs_for_the_retention_parameter(function: str) -> None:
    groups = [r["Properties"] for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert {
        "LogGroupName": {"Fn::Sub": f"/aws/lambda/${{{function}}}"},
        "RetentionInDays": {"Ref": "LogRetentionDays"},
        "KmsKeyId": KMS_KEY_IF_SET,
    } in groups
    assert TEMPLATE["Parameters"]["LogRetentionDays"]["Default"] == 400


KMS_KEY_IF_SET = {"Fn::If": ["HasLogsKmsKey", {"Ref": "LogsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}


def test_every_log_group_is_kept_for_the_retention_and_encrypted_with_the_optional_key() -> None:
    groups = [r["Properties"] for r in TEMPLATE["Resources"].values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert len(groups) == 5  # four functions and the access log
    assert all(g["RetentionInDays"] == {"Ref": "LogRetentionDays"} for g in groups)
    assert all(g["KmsKeyId"] == KMS_KEY_IF_SET for g in groups)
    assert TEMPLATE["Parameters"]["LogsKmsKeyArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["HasLogsKmsKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "LogsKmsKeyArn"}, ""]}]
    }


def access_log_format() -> dict[str, str]:
    setting = TEMPLATE["Resources"]["EncounterApi"]["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": "ApiAccessLogGroup.Arn"}
    fields: dict[str, str] = json.loads(setting["Format"])
    return fields


def test_the_access_log_is_one_json_object_per_request_in_its_own_log_group() -> None:
    fields = access_log_format()
    assert all(isinstance(value, str) for value in fields.values())  # quoted: "-" when absent
    assert {
        "request_id": "$context.requestId",
        "route": "$context.httpMethod $context.resourcePath",
        "status": "$context.status",
        "error_type": "$context.error.responseType",
        "latency_ms": "$context.responseLatency",
        "integration_latency_ms": "$context.integration.latency",
        "sub": "$context.authorizer.sub",
        "client_id": "$context.authorizer.client_id",
        "iam_caller": "$context.identity.userArn",
    }.items() <= fields.items()
    group = TEMPLATE["Resources"]["ApiAccessLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"


def test_the_access_log_holds_no_path_and_no_query_string() -> None:
    text = TEMPLATE["Resources"]["EncounterApi"]["Properties"]["AccessLogSetting"]["Format"]
    variables = set(re.findall(r"\$[A-Za-z.]+", text))
    assert not {v for v in variables if v.startswith(("$input", "$method", "$util"))}
    assert not variables & {"$context.path", "$context.requestOverride", "$context.identity.userAgent"}
    assert "$context.resourcePath" in variables


def test_the_access_log_joins_the_audit_lines_on_the_request_id() -> None:
    """The functions' audit lines and the authorizer's carry requestContext.requestId as request_id."""
    assert access_log_format()["request_id"] == "$context.requestId"
    runtime = (ROOT / "layers/encounter/python/fhir_encounter/runtime.py").read_text()
    assert '"request_id": str(context.get("requestId", ""))' in runtime
    authorizer = (ROOT / "functions/authorizer/app.py").read_text()
    assert '"request_id": (event.get("requestContext") or {}).get("requestId", "")' in authorizer


def test_the_account_log_role_is_created_only_when_asked_and_the_api_waits_for_it() -> None:
    resources = TEMPLATE["Resources"]
    assert TEMPLATE["Parameters"]["CreateApiGatewayAccountRole"]["Default"] == "false"
    assert resources["ApiGatewayAccount"]["Condition"] == "CreatesApiGatewayAccountRole"
    assert resources["ApiGatewayCloudWatchRole"]["Condition"] == "CreatesApiGatewayAccountRole"
    assert resources["ApiGatewayAccount"]["Properties"]["CloudWatchRoleArn"] == {
        "Fn::GetAtt": "ApiGatewayCloudWatchRole.Arn"
    }
    assert resources["EncounterApi"]["DependsOn"] == "ApiGatewayAccountReady"
    assert resources["ApiGatewayAccountReady"]["Metadata"]["AccountRole"] == {
        "Fn::If": ["CreatesApiGatewayAccountRole", {"Ref": "ApiGatewayAccount"}, ""]
    }


def test_stage_tracing_is_off_unless_asked_and_execution_data_logs_never_on() -> None:
    properties = TEMPLATE["Resources"]["EncounterApi"]["Properties"]
    assert TEMPLATE["Parameters"]["ApiTracing"]["Default"] == "false"
    assert properties["TracingEnabled"] == {"Fn::If": ["ApiTracingOn", True, False]}
    assert all(setting["DataTraceEnabled"] is False for setting in properties["MethodSettings"])


def test_every_setting_is_declared_so_sam_local_env_vars_can_set_it() -> None:
    declared = set(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    assert set(ENVIRONMENT.values()) <= declared


def test_the_api_page_table_is_the_registry() -> None:
    """The API page's search-parameter table has one row per registry entry, in its order and words."""
    page = (ROOT / "docs" / "api.md").read_text()
    section = page.split("\n## Search parameters\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = [
        f"| `{p.name}` | {p.type.value} | {p.accepts} | {p.documentation} |"
        for p in SEARCH_PARAMETERS.values()
    ] + [
        f"| `{p.name}` | {p.type.value} | {p.accepts} | {p.documentation} |"
        for p in RESULT_PARAMETERS.values()
    ]
    assert rows == expected


def test_every_route_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for route in api_routes(TEMPLATE, ROOT):
        if route.method != "OPTIONS":  # the CORS preflights are documented with CORS, not as routes
            assert f"`{route.method} {route.path}" in readme, route.path


# ---- scopes, token lifetime and SMART discovery -------------------------------------------------

NEW_PARAMETERS = {  # parameter -> (the functions' variable, default)
    "ScopePrefix": ("SCOPE_PREFIX", ""),
    "UserScopes": ("USER_SCOPES", "enabled"),
    "MaxTokenLifetimeSeconds": ("MAX_TOKEN_LIFETIME_SECONDS", 86400),
    "SmartCapabilities": ("SMART_CAPABILITIES", ",".join(DEFAULT_CAPABILITIES)),
    "SmartGrantTypes": ("SMART_GRANT_TYPES", ",".join(DEFAULT_GRANT_TYPES)),
    "SmartTokenAuthMethods": ("SMART_TOKEN_AUTH_METHODS", ",".join(DEFAULT_TOKEN_AUTH_METHODS)),
    "SmartTokenAuthSigningAlgs": ("SMART_TOKEN_SIGNING_ALGS", ",".join(DEFAULT_TOKEN_SIGNING_ALGS)),
}


@pytest.mark.parametrize("parameter", sorted(NEW_PARAMETERS))
def test_each_scope_and_discovery_parameter_reaches_the_functions_with_the_codes_default(
    parameter: str,
) -> None:
    variable, default = NEW_PARAMETERS[parameter]
    assert TEMPLATE["Parameters"][parameter]["Default"] == default
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"][variable] == {"Ref": parameter}


def test_user_scopes_are_enabled_or_disabled() -> None:
    assert TEMPLATE["Parameters"]["UserScopes"]["AllowedValues"] == ["enabled", "disabled"]


def test_the_authorizer_cache_keeps_a_decision_a_minute_and_at_most_five() -> None:
    ttl = TEMPLATE["Parameters"]["AuthorizerCacheTtl"]
    assert (ttl["Default"], ttl["MinValue"], ttl["MaxValue"]) == (60, 0, 300)
    lifetime = TEMPLATE["Parameters"]["MaxTokenLifetimeSeconds"]
    assert (lifetime["MinValue"], lifetime["MaxValue"]) == (60, 604800)


def test_auth_mode_none_cannot_be_deployed() -> None:
    assert TEMPLATE["Parameters"]["AuthMode"]["AllowedValues"] == ["iam", "smart"]
    assert TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["AUTH_MODE"] == {"Ref": "AuthMode"}


@pytest.mark.parametrize(
    ("prefix", "allowed"),
    [
        ("", True),
        ("fhir", True),
        ("https://api.example.org", True),
        ("fhir/", False),
        ("fhir api", False),
        ('fh"ir', False),
        ("fh\\ir", False),
        ("caf\u00e9", False),
    ],
)
def test_the_scope_prefix_pattern_is_the_codes(prefix: str, allowed: bool) -> None:
    pattern = TEMPLATE["Parameters"]["ScopePrefix"]["AllowedPattern"]
    assert (re.fullmatch(pattern, prefix) is not None) is allowed
    environment = {"AUTH_MODE": "smart", "SCOPE_PREFIX": prefix}
    if allowed:
        assert Settings.from_environment(environment).scope_prefix == prefix
    else:
        with pytest.raises(ConfigurationError):
            Settings.from_environment(environment)


@pytest.mark.parametrize(
    "parameter",
    ["SmartCapabilities", "SmartGrantTypes", "SmartTokenAuthMethods", "SmartTokenAuthSigningAlgs"],
)
def test_the_list_parameters_take_comma_separated_names(parameter: str) -> None:
    pattern = TEMPLATE["Parameters"][parameter]["AllowedPattern"]
    assert re.fullmatch(pattern, "a-b,c_d,e.f")
    for wrong in ("", "a,,b", "a b", "a,"):
        assert re.fullmatch(pattern, wrong) is None


def test_the_search_by_post_runs_on_the_search_function_as_the_get_does() -> None:
    paths = definition()["paths"]
    post = paths["/Encounter/_search"]["post"]
    get = paths["/Encounter"]["get"]
    assert post["security"] == get["security"]
    assert post["x-amazon-apigateway-integration"] == get["x-amazon-apigateway-integration"]
    assert set(paths["/Encounter/_search"]) == {"post", "options"}
    events = TEMPLATE["Resources"]["SearchEncountersFunction"]["Properties"]["Events"]
    assert {"RestApiId": {"Ref": "EncounterApi"}, "Path": "/Encounter/_search", "Method": "POST"} in [
        event["Properties"] for event in events.values()
    ]
