"""API errors as the real server reports them: a `Status` object with code, reason and details."""

REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Gone",
    415: "UnsupportedMediaType",
    422: "Invalid",
}


class ApiError(Exception):
    def __init__(self, code, message, reason=None, details=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "InternalError")
        self.details = details

    def status(self):
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def qualified(rt):
    """`deployments.apps` / `configmaps`: how messages name a resource."""
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def _details(rt, name):
    details = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt, name):
    return ApiError(404, f'{qualified(rt)} "{name}" not found', details=_details(rt, name))


def already_exists(rt, name):
    return ApiError(409, f'{qualified(rt)} "{name}" already exists', "AlreadyExists", _details(rt, name))


def conflict(rt, name):
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(rt)} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details=_details(rt, name),
    )


def invalid(rt, name, causes):
    """causes: list of (field, reason, message) as the validators produce them."""
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    texts = [f"{field}: {message}" for field, _, message in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = {"name": name, "kind": rt.kind, "causes": [
        {"reason": reason, "message": message, "field": field} for field, reason, message in causes
    ]}
    if rt.group:
        details["group"] = rt.group
    return ApiError(422, f'{kind} "{name}" is invalid: {summary}', details=details)


def bad_request(message):
    return ApiError(400, message)
