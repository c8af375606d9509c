"""The OpenAPI document describes exactly the routes the app serves."""
import re

from tests.dispatcher_support import app, client  # noqa: F401

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _flask_routes(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            routes.add((path, method.lower()))
    return routes


def test_every_route_is_documented_and_every_documented_route_exists(app, client):
    reply = client.get("/api/v1/openapi.json")
    assert reply.status_code == 200
    document = reply.get_json()
    assert document["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == _flask_routes(app)


def test_path_parameters_are_declared_and_references_resolve(client):
    document = client.get("/api/v1/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    text = str(document)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in schemas, name
    for path, item in document["paths"].items():
        in_path = set(re.findall(r"{(\w+)}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == in_path, (path, declared)
            assert operation["responses"] and operation["summary"]
