"""The functions' environment under test (metrics and tracing off, quiet logs); conftest sets it
before any function module is imported, as Lambda sets it before init."""

TEST_TABLE = "encounters-test"
TEST_SECRET = "test-cursor-secret-0123456789abcdef"
TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AUTH_MODE": "iam",  # required: a function without it refuses to start
    "ENCOUNTER_TABLE": TEST_TABLE,
    "CURSOR_SECRET": TEST_SECRET,
    "POWERTOOLS_SERVICE_NAME": "fhir-encounter",
    "POWERTOOLS_METRICS_NAMESPACE": "FhirEncounterApi",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
