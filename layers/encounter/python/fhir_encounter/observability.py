"""The one Logger, Tracer and Metrics of the service (names and levels come from POWERTOOLS_* env).

Logs carry ids, counts, index names and parameter names; never parameter values, tokens or
resource bodies, which can hold patient data.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
