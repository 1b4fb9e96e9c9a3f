"""FHIR R4 Encounter read and search on API Gateway, Lambda and DynamoDB: the runtime package."""

# The one version: pyproject.toml reads it from here, and the CapabilityStatement reports it
# (the layer carries no package metadata).
__version__ = "0.2.0"
