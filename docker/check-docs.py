#!/usr/bin/env python3
"""Checks that docs/ keeps up with the code (run by docker/validate.sh):

- docs/turn-server-config.md names every option of `turn-server --help` (read from stdin)
  and every accepted-and-ignored option of turn-server/src/config/options/*.rs;
- docs/lk-jwt-service-config.md names every LIVEKIT_* variable jwt-service/src/config.rs
  and jwt-service/src/config/*.rs read;
- every relative link in docs/*.md points to an existing file, and every #anchor to a
  heading of that file (GitHub's slug rules).
"""
import os
import re
import sys


def strip_code(text):
    return re.sub(r"```.*?```", "", text, flags=re.S)


def anchors(path):
    slugs = set()
    for title in re.findall(r"^#+ (.+)$", strip_code(open(path).read()), re.M):
        slugs.add(re.sub(r"[^a-z0-9 _-]", "", title.strip().lower()).replace(" ", "-"))
    return slugs


def main():
    errors = []
    help_text = sys.stdin.read()
    options = re.findall(r"^  (?:-\w, )?--([A-Za-z0-9_-]+)", help_text, re.M)
    options_dir = "turn-server/src/config/options"
    source = open(options_dir + ".rs").read()
    for name in sorted(os.listdir(options_dir)):
        if name.endswith(".rs"):
            source += open(os.path.join(options_dir, name)).read()
    ignored = re.findall(r'ignored\(\s*"([^"]+)"', source)
    if len(ignored) < 50:
        errors.append(f"only {len(ignored)} ignored turn-server options found in {options_dir}")
    options += ignored
    if len(options) < 100:
        errors.append(f"only {len(options)} turn-server options found; is --help on stdin?")
    doc = open("docs/turn-server-config.md").read()
    for option in options:
        if f"`{option}`" not in doc and f"`{option}[=N]`" not in doc:
            errors.append(f"docs/turn-server-config.md does not document {option}")

    config = open("jwt-service/src/config.rs").read()
    config_dir = "jwt-service/src/config"
    if os.path.isdir(config_dir):
        for name in sorted(os.listdir(config_dir)):
            if name.endswith(".rs"):
                config += open(os.path.join(config_dir, name)).read()
    jwt_doc = open("docs/lk-jwt-service-config.md").read()
    for variable in sorted(set(re.findall(r'"(LIVEKIT_[A-Z_]+)"', config))):
        if f"`{variable}`" not in jwt_doc:
            errors.append(f"docs/lk-jwt-service-config.md does not document {variable}")

    for name in sorted(os.listdir("docs")):
        if not name.endswith(".md"):
            continue
        path = os.path.join("docs", name)
        for target in re.findall(r"\]\(([^)\s]+)\)", strip_code(open(path).read())):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            resolved = os.path.normpath(os.path.join("docs", file)) if file else path
            if not os.path.exists(resolved):
                errors.append(f"{path}: link to missing {target}")
            elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                errors.append(f"{path}: link to missing anchor {target}")

    print("\n".join(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
