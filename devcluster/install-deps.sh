#!/usr/bin/env bash
# Installs the Debian packages the test bed needs (idempotent; only missing ones are installed).
set -euo pipefail
PKGS=(git openssl ca-certificates make rsync jq golang-go golang-github-modern-go-reflect2-dev
      etcd-server openssh-server dpkg-dev docker-registry gnupg util-linux postgresql
      chromium-headless-shell fonts-dejavu-core)
# postgresql: the audit store's tests run a private server (devcluster/postgres.py), never
# the distribution's service, which the policy-rc.d below keeps from starting.
# chromium-headless-shell: the web UI's tests drive Debian's headless Chromium with Playwright
# (Playwright's own browser download is not reachable); fonts-dejavu-core gives it text to draw.
# A system Python needs python3-venv for `python3 -m venv` (a pyenv or source build has it).
if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then PKGS+=(python3-venv); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "[deps] ERROR: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "[deps] installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/tmp/tether-apt-update.log 2>&1 || {
  echo "[deps] ERROR: apt-get update failed; see /tmp/tether-apt-update.log" >&2; exit 1; }
# Keep sshd, etcd and postgresql from being started as system services: the test bed runs its own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; created_policy=1; fi
rc=0
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/tether-apt-install.log 2>&1 || rc=$?
((created_policy)) && rm -f $policy
if ((rc != 0)); then
  echo "[deps] ERROR: apt-get install ${missing[*]} failed; see /tmp/tether-apt-install.log" >&2
  tail -n 20 /tmp/tether-apt-install.log >&2
  exit 1
fi
