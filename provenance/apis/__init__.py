"""The /api/v1/ endpoints of provenance: thin views that validate input, call a service, and
render a selector (their base and error handler are core.api's)."""
