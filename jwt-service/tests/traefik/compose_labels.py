#!/usr/bin/env python3
"""Turns the Traefik labels of a compose file into Traefik's file-provider configuration,
so a test can run the real Traefik routing of the shipped stack on loopback.

Reads `docker-compose config` output on stdin. Arguments: `SERVICE=URL` for each compose
service to route to (its load balancer then points at URL); routers of other services,
and middlewares only they use, are left out. Prints YAML on stdout.

Labels are Traefik's dynamic configuration in flat form; the docker provider adds only
what this script adds too: a router without `service` uses its container's service, and
a container without a service label gets one named after it.
"""
import sys

import yaml

# Label keys are case-insensitive; the file provider's canonical names.
CANONICAL = {"entrypoints": "entryPoints", "stripprefix": "stripPrefix",
             "loadbalancer": "loadBalancer", "passhostheader": "passHostHeader"}
LISTS = {"entrypoints", "middlewares", "prefixes", "sans"}
INTS = {"priority"}


def put(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def main():
    targets = dict(arg.split("=", 1) for arg in sys.argv[1:])
    compose = yaml.safe_load(sys.stdin)
    config = {"http": {"routers": {}, "middlewares": {}, "services": {}}}
    for name, service in (compose.get("services") or {}).items():
        if name not in targets:
            continue
        labels = service.get("labels") or {}
        if isinstance(labels, list):
            labels = dict(item.split("=", 1) for item in labels)
        own = {"routers": {}, "middlewares": {}, "services": {}}
        for key, value in labels.items():
            parts = key.split(".")
            if parts[:2] != ["traefik", "http"] or len(parts) < 5:
                continue
            kind, item, rest = parts[2], parts[3], parts[4:]
            path = []
            for part in rest:
                if part.endswith("]") and "[" in part:
                    field, index = part[:-1].split("[")
                    path += [CANONICAL.get(field.lower(), field), int(index)]
                else:
                    path.append(CANONICAL.get(part.lower(), part))
            leaf = rest[-1].lower()
            value = str(value)
            if leaf in LISTS:
                value = [v.strip() for v in value.split(",")]
            elif leaf in INTS:
                value = int(value)
            put(own[kind].setdefault(item, {}), path, value)
        if not own["services"]:
            own["services"][name] = {}
        for item in own["services"]:
            own["services"][item] = {"loadBalancer": {"servers": [{"url": targets[name]}]}}
        default_service = next(iter(own["services"]))
        for router in own["routers"].values():
            router.setdefault("service", default_service)
            # Indexed lists (tls.domains[0]) become lists.
            tls = router.get("tls")
            if isinstance(tls, dict) and isinstance(tls.get("domains"), dict):
                tls["domains"] = [tls["domains"][i] for i in sorted(tls["domains"])]
        for kind in own:
            config["http"][kind].update(own[kind])
    yaml.safe_dump(config, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
