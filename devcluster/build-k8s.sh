#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager v1.20.2 from Debian 12's source package
# and caches them outside the checkout. A cached build makes this a no-op.
#
#   TETHER_DEVCLUSTER_CACHE   cache root (default ~/.cache/tether-devcluster)
#
# The Debian mirror is taken from this machine's own apt sources; none is written here.
set -euo pipefail

K8S_VERSION=1.20.2
PATCH_ID=reflect2-1.0.2-zerovalue  # keep in sync with devcluster/cluster.py
CACHE_ROOT="${TETHER_DEVCLUSTER_CACHE:-$HOME/.cache/tether-devcluster}"
BIN_DIR="$CACHE_ROOT/k8s-$K8S_VERSION-$PATCH_ID/bin"
WORK="$CACHE_ROOT/build"
LOG="$CACHE_ROOT/build.log"
BINARIES=(kube-apiserver kube-controller-manager)

say() { printf '[build-k8s] %s\n' "$*" >&2; }
die() { printf '[build-k8s] ERROR: %s\n' "$*" >&2; exit 1; }

cached_ok() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -s "$BIN_DIR/$b" && -x "$BIN_DIR/$b" ]] || return 1
  done
  "$BIN_DIR/kube-apiserver" --version >/dev/null 2>&1 || return 1
}

if cached_ok; then
  say "using cached binaries in $BIN_DIR"
  exit 0
fi

mkdir -p "$CACHE_ROOT" "$WORK"
: >"$LOG"

# ---- build dependencies -----------------------------------------------------------------
missing=()
for tool in go rsync jq make apt-get tar; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
[[ -d "$REFLECT2_SRC" ]] || missing+=("golang-github-modern-go-reflect2-dev ($REFLECT2_SRC)")
if ((${#missing[@]})); then
  die "missing build dependencies: ${missing[*]}. Run 'make deps' (as root) or: apt-get install golang-go rsync jq make golang-github-modern-go-reflect2-dev"
fi

# ---- fetch the bookworm source package with a private apt configuration ----------------
find_mirror() {
  # First non-security Debian URI from the machine's own apt sources (deb822 or one-line).
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    while read -r uri; do
      [[ "$uri" == *security* ]] && continue
      echo "$uri"; return 0
    done < <(awk 'tolower($1)=="uris:" { for(i=2;i<=NF;i++) print $i }' "$f")
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    while read -r uri; do
      [[ "$uri" == *security* ]] && continue
      echo "$uri"; return 0
    done < <(awk '$1=="deb" || $1=="deb-src" { for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' "$f")
  done
  return 1
}

SRC_DIR="$WORK/src"
ORIG=$(ls "$SRC_DIR"/kubernetes_*.orig.tar.gz 2>/dev/null | head -n1 || true)
if [[ -z "$ORIG" ]]; then
  MIRROR=$(find_mirror) || die "no Debian mirror found in /etc/apt/sources.list{,.d}; cannot fetch the kubernetes source package"
  say "fetching Debian 12 (bookworm) source package 'kubernetes' from the machine's mirror"
  APT="$WORK/apt"
  mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$SRC_DIR"
  KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  {
    echo "deb-src [signed-by=$KEYRING] $MIRROR bookworm main"
    echo "deb-src [signed-by=$KEYRING] $MIRROR bookworm-updates main"
  } >"$APT/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
            -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache"
            -o "APT::Sandbox::User=root" -o "Acquire::Retries=3")
  apt-get "${APT_OPTS[@]}" update >>"$LOG" 2>&1 \
    || die "apt-get update for the bookworm source index failed (mirror $MIRROR); see $LOG"
  (cd "$SRC_DIR" && apt-get "${APT_OPTS[@]}" source --download-only kubernetes) >>"$LOG" 2>&1 \
    || die "downloading the kubernetes source package failed; see $LOG"
  ORIG=$(ls "$SRC_DIR"/kubernetes_*.orig.tar.gz 2>/dev/null | head -n1 || true)
  [[ -n "$ORIG" ]] || die "the source package has no .orig.tar.gz in $SRC_DIR; see $LOG"
fi
case "$ORIG" in
  *really1.20.2*|*_1.20.2*) ;;
  *) die "unexpected kubernetes source version: $ORIG (want 1.20.2 from bookworm)";;
esac

# ---- unpack, patch, build ----------------------------------------------------------------
TREE="$WORK/kubernetes-$K8S_VERSION"
if [[ ! -f "$TREE/.unpacked" ]]; then
  say "unpacking $(basename "$ORIG")"
  rm -rf "$TREE" && mkdir -p "$TREE"
  tar -xzf "$ORIG" -C "$TREE" --strip-components=1 || die "cannot unpack $ORIG"
  [[ -d "$TREE/vendor" ]] || die "$ORIG has no vendor/ tree; it cannot be built offline"
  touch "$TREE/.unpacked"
fi

# reflect2 v1.0.1 crashes kube-apiserver built with Go >= 1.18 on the first custom-resource
# write (fatal error: fault in runtime.mapiterinit); v1.0.2 fixes it.
R2="$TREE/vendor/github.com/modern-go/reflect2"
rm -rf "$R2" && mkdir -p "$R2"
cp -r "$REFLECT2_SRC"/. "$R2"/
rm -rf "$R2"/*_test.go "$R2"/test* 2>/dev/null || true

# With Go >= 1.16, reflect.Zero returns shared zero values, so go-openapi's type validator
# takes "" (and 0, false) for null and rejects custom resources holding them ("Invalid
# value: null: must be of type string"; kubernetes#99804). Upstream dropped the check in
# kube-openapi#230 for 1.21; drop it here the same way.
for f in "$TREE/vendor/github.com/go-openapi/validate/type.go" \
         "$TREE/vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go"; do
  [[ -f "$f" ]] || continue
  sed -i 's/if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {/if data == nil {/' "$f"
  grep -q 'reflect.DeepEqual(reflect.Zero' "$f" && die "could not patch the zero-value check in $f"
done

mkdir -p "$TREE/.go/src/k8s.io" "$WORK/home"
ln -sfn ../../.. "$TREE/.go/src/k8s.io/kubernetes"
rm -rf "$TREE/_output"   # a failed generator step leaves empty files that break the next try

say "building ${BINARIES[*]} v$K8S_VERSION with $(go version | awk '{print $3}') (about 7-9 minutes on 2 cores; log: $LOG)"
start=$(date +%s)
(
  cd "$TREE/.go/src/k8s.io/kubernetes"
  export GOPATH="$TREE/.go" CGO_ENABLED=0 HOME="$WORK/home" GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
  export KUBE_BUILD_PLATFORMS=linux/amd64
  case "$(uname -m)" in aarch64) export KUBE_BUILD_PLATFORMS=linux/arm64;; esac
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"
) >>"$LOG" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 30
  kill -0 "$pid" 2>/dev/null || break
  say "still building ($(( $(date +%s) - start ))s): $(grep -v '^\s*$' "$LOG" | tail -n1 | cut -c1-100)"
done
if ! wait "$pid"; then
  rm -rf "$TREE/_output"
  tail -n 30 "$LOG" >&2
  die "kubernetes build failed after $(( $(date +%s) - start ))s; full log: $LOG"
fi

mkdir -p "$BIN_DIR"
for b in "${BINARIES[@]}"; do
  out=$(find "$TREE/_output" -type f -name "$b" -size +1M | head -n1)
  [[ -n "$out" ]] || die "build finished but $b is missing or empty under $TREE/_output; see $LOG"
  install -m 0755 "$out" "$BIN_DIR/$b.tmp" && mv "$BIN_DIR/$b.tmp" "$BIN_DIR/$b"
done
cached_ok || die "built binaries in $BIN_DIR do not run; see $LOG"
say "built in $(( $(date +%s) - start ))s; cached in $BIN_DIR"
# The source tree is large (about 1.5 GB with build output); keep only the downloaded package.
rm -rf "$TREE"
