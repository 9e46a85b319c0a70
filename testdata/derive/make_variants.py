#!/usr/bin/env python3
"""Writes the variant-*.json inspect payloads of testdata/derive/inspect/ from the real ones.

The real payloads (copied verbatim from a dockerd 20.10.24 on this machine) cover what Docker
produces; each variant changes a few fields to exercise one derivation rule or one kind of bad
input. Re-run after editing: python3 testdata/derive/make_variants.py
"""
import copy
import json
import os

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inspect")


def load(name):
    with open(os.path.join(HERE, name + ".json")) as f:
        return json.load(f)


def save(name, doc, raw=None):
    with open(os.path.join(HERE, "variant-" + name + ".json"), "w") as f:
        if raw is not None:
            f.write(raw)
        else:
            json.dump(doc, f, indent=4, ensure_ascii=False)
            f.write("\n")


def env_without_service(doc):
    return [e for e in doc["Config"]["Env"] or [] if not e.startswith("SERVICE_")]


# Garbage port keys, a bad HostPort and bad port-specific keys next to good ports.
d = load("bridge-multi")
d["Config"]["ExposedPorts"].update({"abc/tcp": {}, "70000/tcp": {}, "81/foo": {}, "/tcp": {}})
d["NetworkSettings"]["Ports"]["8443/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": "notaport"}]
d["NetworkSettings"]["Ports"]["-5/tcp"] = [{"HostIp": "0.0.0.0", "HostPort": "9999"}]
d["Config"]["Env"] = env_without_service(d) + [
    "SERVICE_-1_NAME=neg", "SERVICE_99999999999999999999_NAME=huge", "SERVICE_80_NAME=web80",
    "SERVICE_=nokey"]
save("bad-ports", d)

# An image reference with registry port, nested path, tag and digest; published on HostIp "".
d = load("c-healthy")
d["Config"]["Image"] = ("registry.example.com:5000/team/sub/health:2.0@sha256:"
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
d["NetworkSettings"]["Ports"]["80/tcp"] = [{"HostIp": "", "HostPort": "32770"}]
save("digest-image", d)

# Almost nothing: no Config, HostConfig or NetworkSettings at all.
save("bare", {"Id": "b" * 64, "Name": "/bare"})

# The sections present but null, and an empty image.
d = load("c-healthy")
d["Config"] = {"Image": "", "ExposedPorts": {"80/tcp": {}}, "Env": None, "Labels": None}
d["HostConfig"] = None
d["NetworkSettings"] = {"Ports": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8090"}]},
                        "Networks": None}
save("empty-image", d)

# Every check attribute, a script with quotes and variables, meta Consul rejects.
d = load("e-labels-env")
d["Config"]["Env"] = env_without_service(d) + ["SERVICE_CHECK_TIMEOUT=bogus", "SERVICE_OWNER=env"]
d["Config"]["Labels"] = {
    "SERVICE_CHECK_SCRIPT": "curl -fs 'http://$SERVICE_IP:$SERVICE_PORT/health' --header \"X-A: b\"",
    "SERVICE_CHECK_TTL": "30s",
    "SERVICE_CHECK_INTERVAL": "15s",
    "SERVICE_CHECK_INITIAL_STATUS": "warning",
    "SERVICE_CHECK_DEREGISTER_AFTER": "1h",
    "SERVICE_OWNER": "team-a",
    "SERVICE_bad.key": "x",
    "SERVICE_TAGS": "b,a,,c",
}
save("checks", d)

# Only IPv6 bindings: the first one is used.
d = load("h-ipv6-explicit-loopback")
d["NetworkSettings"]["Ports"]["80/tcp"] = [{"HostIp": "::1", "HostPort": "8085"},
                                           {"HostIp": "fd00::5", "HostPort": "8086"}]
d["Config"]["Env"] = env_without_service(d) + ["SERVICE_CHECK_HTTP=/health"]
save("ipv6-only", d)

# A group with a udp port and a port-specific name; the exposed-only port is not in the group.
d = load("bridge-multi")
d["Config"]["Env"] = env_without_service(d) + [
    "SERVICE_NAME=multi-svc", "SERVICE_81_NAME=dns", "SERVICE_81_TAGS=x", "SERVICE_TAGS=t1,t2"]
save("group-udp", d)

# Unicode and spaces in names, tags and values.
d = load("bridge-files1")
d["Name"] = "/wéb ünï"
d["Config"]["Env"] = env_without_service(d) + ["SERVICE_NAME=名前 svc"]
d["Config"]["Labels"] = {"SERVICE_TAGS": "ä,b c", "SERVICE_NOTE": "ü\tx"}
save("unicode", d)

# The IP comes from a label (with a prefix length to drop).
d = load("bridge-files1")
d["Config"]["Labels"]["com.example.ip"] = "10.9.8.7/16"
save("label-ip", d)

# SERVICE_IGNORE on the whole container, un-ignored for one port.
d = load("bridge-multi")
d["Config"]["Env"] = env_without_service(d) + ["SERVICE_IGNORE=true", "SERVICE_81_IGNORE=no"]
save("ignore", d)
