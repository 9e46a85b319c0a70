# Drives the stand-in binary with Debian's python3-consul (0.7.1), a real third-party Consul
# client: if the stand-in answered differently from Consul, this client would break.
# Usage: /usr/bin/python3 python_consul_check.py <port> <acl token>
import sys

import consul
import consul.base

port, token = int(sys.argv[1]), sys.argv[2]
anonymous = consul.Consul(host="127.0.0.1", port=port)
c = consul.Consul(host="127.0.0.1", port=port, token=token)

# ACLs: writes without the token are refused, reads show nothing.
try:
    anonymous.agent.service.register("web", service_id="h:web:80", port=1)
    raise SystemExit("register without token was accepted")
except consul.base.ACLPermissionDenied:
    pass
assert anonymous.agent.services() == {}


def agent_get(path):
    # python-consul 0.7.1 sends no token on agent/services and agent/checks, so with ACLs on
    # Consul filters them to nothing (checked below); ask with the token explicitly.
    return c.http.get(consul.base.CB.json(), path, params={"token": token})


assert c.agent.service.register("web", service_id="h:web:80", address="127.0.0.1", port=8080,
                                tags=["a", "b"], check=consul.Check.ttl("30s")) is True
assert c.agent.services() == {}
services = agent_get("/v1/agent/services")
web = services["h:web:80"]
assert (web["Service"], web["Address"], web["Port"], web["Tags"]) == (
    "web", "127.0.0.1", 8080, ["a", "b"]), services
checks = agent_get("/v1/agent/checks")
assert checks["service:h:web:80"]["Status"] == "critical", checks

# A TTL check starts critical: nothing passing until it is passed. python-consul 0.7.1 sends
# GET for ttl_pass, which Consul >= 1.0 refuses with 405 (as the stand-in does); use PUT.
_, nodes = c.health.service("web", passing=True)
assert nodes == [], nodes
assert c.agent.check.ttl_pass("service:h:web:80") is False
assert c.http.put(consul.base.CB.bool(), "/v1/agent/check/pass/service:h:web:80",
                  params={"token": token}) is True
_, nodes = c.health.service("web", passing=True)
assert [n["Service"]["ID"] for n in nodes] == ["h:web:80"], nodes
assert [ch["CheckID"] for ch in nodes[0]["Checks"]] == ["serfHealth", "service:h:web:80"], nodes
_, catalog = c.catalog.service("web")
assert catalog[0]["ServicePort"] == 8080 and catalog[0]["ServiceID"] == "h:web:80", catalog
_, names = c.catalog.services()
assert names == {"consul": [], "web": ["a", "b"]}, names

# An off-spec check definition is a 400, which the client raises as BadRequest.
try:
    c.agent.service.register("bad", http="http://127.0.0.1:1/", interval="10")
    raise SystemExit("bad interval was accepted")
except consul.base.BadRequest as e:
    assert "invalid duration" in str(e), e

# KV.
assert c.kv.put("reg/web/h:web:80", "127.0.0.1:8080") is True
_, item = c.kv.get("reg/web/h:web:80")
assert item["Value"] == b"127.0.0.1:8080", item
_, items = c.kv.get("reg/", recurse=True)
assert [i["Key"] for i in items] == ["reg/web/h:web:80"], items
_, keys = c.kv.get("reg/", keys=True, separator="/")
assert keys == ["reg/web/"], keys
assert c.kv.delete("reg/", recurse=True) is True
_, item = c.kv.get("reg/web/h:web:80")
assert item is None

# Deregister: python-consul 0.7.1 uses GET (405 since Consul 1.0); PUT works.
assert c.agent.service.deregister("h:web:80") is False
assert c.http.put(consul.base.CB.bool(), "/v1/agent/service/deregister/h:web:80",
                  params={"token": token}) is True
assert agent_get("/v1/agent/services") == {}
assert agent_get("/v1/agent/checks") == {}
print("python-consul OK")
