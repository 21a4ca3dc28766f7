"""Compares a CRD's structural schema with the JSON schema of the pydantic model that mirrors it."""

# Keywords whose values must be the same on both sides.
COMPARED = ("type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength")


def resolve(schema: dict, defs: dict) -> dict:
    """The model's JSON schema for one field, with $ref followed and `X | None` reduced to X."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    if "anyOf" in schema:
        (real,) = [s for s in schema["anyOf"] if s.get("type") != "null"]
        schema = {**resolve(real, defs), **{k: v for k, v in schema.items() if k != "anyOf"}}
    if "const" in schema:  # a one-value Literal
        schema = {**schema, "enum": [schema["const"]]}
    return schema


def compare(crd: dict, model: dict, defs: dict, path: str, mismatches: list[str]) -> None:
    if crd.get("x-kubernetes-int-or-string"):
        if sorted(s.get("type") for s in model.get("anyOf", [])) != ["integer", "string"]:
            mismatches.append(f"{path}: int-or-string in the CRD, {model} in the model")
        return
    model = resolve(model, defs)
    for key in COMPARED:
        if crd.get(key) != model.get(key):
            mismatches.append(f"{path}: {key} is {crd.get(key)!r} in the CRD, {model.get(key)!r} in the model")
    # A default of null in the model means "no default"; an object default in the CRD ({}) is a default_factory.
    model_default = model.get("default")
    if crd.get("default") not in ({}, None) or model_default is not None:
        if crd.get("default") != model_default:
            mismatches.append(f"{path}: default {crd.get('default')!r} in the CRD, {model_default!r} in the model")
    if crd.get("type") == "object" and "properties" in crd:
        crd_props, model_props = crd["properties"], model.get("properties", {})
        if set(crd_props) != set(model_props):
            mismatches.append(f"{path}: fields {sorted(crd_props)} in the CRD, {sorted(model_props)} in the model")
        if sorted(crd.get("required", [])) != sorted(model.get("required", [])):
            mismatches.append(f"{path}: required {crd.get('required')} in the CRD, {model.get('required')} in the model")
        for name in set(crd_props) & set(model_props):
            compare(crd_props[name], model_props[name], defs, f"{path}.{name}", mismatches)
    if crd.get("type") == "array":
        compare(crd["items"], model.get("items", {}), defs, f"{path}[]", mismatches)
    if isinstance(crd.get("additionalProperties"), dict):
        # A model may also check the keys (patternProperties), which a structural CRD schema cannot express.
        values = model.get("additionalProperties") or next(iter(model.get("patternProperties", {}).values()), {})
        compare(crd["additionalProperties"], values, defs, f"{path}{{}}", mismatches)
