#!/bin/sh
# certs-dumper's post-hook, run after Traefik renewed a certificate: the PEM files become
# readable by turn-server's user (uid 10001), then turn-server (PID 1 of the process
# namespace certs-dumper shares) reloads them on SIGUSR2, keeping its allocations.
set -eu
chown -R 10001:10001 /certs
kill -USR2 1
