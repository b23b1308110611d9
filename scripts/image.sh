#!/usr/bin/env bash
# Builds the container image localhost/redis-sidecar:<version> from deploy/Dockerfile with podman
# (or docker when podman is not there), from the repository as it is on disk.
#
# usage: scripts/image.sh [--tag NAME:TAG] [--base auto|pull|debootstrap]
#   --tag   the image name (default localhost/redis-sidecar:<version from CMakeLists.txt>)
#   --base  where the Dockerfile's base image (debian:12) comes from when it is not there yet:
#           pull         from its registry, as any docker build would;
#           debootstrap  made from Debian's package repository with debootstrap (needs root and
#                        the debootstrap package) and imported under the name the Dockerfile uses,
#                        for machines that reach Debian's repository but no container registry;
#           auto         (default) pull, and debootstrap if the pull fails.
# podman reads the caller's CONTAINERS_CONF / CONTAINERS_STORAGE_CONF (the tests point them into
# the build folder). The debootstrapped base is cached as a tarball under
# ${REDIS_SIDECAR_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-sidecar} for a week.
# Prints the image name as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=""
base_mode=auto
while [ $# -gt 0 ]; do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    --base) base_mode=$2; shift 2 ;;
    --base=*) base_mode=${1#--base=}; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case $base_mode in auto|pull|debootstrap) ;; *) echo "image.sh: --base takes auto, pull or debootstrap" >&2; exit 2 ;; esac

if command -v podman >/dev/null 2>&1; then
  engine=podman
elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  engine=docker
else
  echo "image.sh: neither podman nor a running docker engine (Debian: apt-get install podman runc)" >&2
  exit 1
fi

version=$(sed -n 's/^project(redis_sidecar VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || { echo "image.sh: no version in CMakeLists.txt" >&2; exit 1; }
tag=${tag:-localhost/redis-sidecar:$version}
commit=unknown
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  commit=$(git rev-parse --short=12 HEAD)
  git diff --quiet HEAD -- 2>/dev/null || commit="$commit-dirty"
fi

# The Dockerfile's base images: FROM lines that name neither scratch nor an earlier stage.
mapfile -t bases < <(awk 'toupper($1) == "FROM" {
    name = $2; if (name != "scratch" && !(name in stages)) print name
    if (toupper($3) == "AS") stages[$4] = 1 }' deploy/Dockerfile | sort -u)

# debootstrap_image NAME: Debian 12 (minbase) from Debian's repository, imported as NAME, with the
# apt sources debian:12 has (bookworm, bookworm-updates, bookworm-security).
debootstrap_image() {
  local name=$1 cache tarball work
  case $name in
    debian:12|docker.io/library/debian:12) ;;
    *) echo "image.sh: cannot make base image $name with debootstrap (only debian:12)" >&2; return 1 ;;
  esac
  command -v debootstrap >/dev/null 2>&1 || { echo "image.sh: debootstrap is missing (apt-get install debootstrap)" >&2; return 1; }
  [ "$(id -u)" -eq 0 ] || { echo "image.sh: debootstrap needs root" >&2; return 1; }
  cache=${REDIS_SIDECAR_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/redis-sidecar}
  tarball="$cache/debian-12-minbase-$(dpkg --print-architecture).tar"
  mkdir -p "$cache"
  if [ -z "$(find "$tarball" -mtime -7 2>/dev/null)" ]; then
    work=$(mktemp -d "$cache/debootstrap.XXXXXX")
    echo "image.sh: debootstrap bookworm (minbase) into $work" >&2
    if ! debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/log" 2>&1; then
      tail -20 "$work/log" >&2
      rm -rf "$work"
      return 1
    fi
    rm -f "$work/rootfs/etc/apt/sources.list"
    cat >"$work/rootfs/etc/apt/sources.list.d/debian.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb
    tar --numeric-owner -C "$work/rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$work"
  fi
  echo "image.sh: importing $tarball as $name" >&2
  "$engine" import --change 'CMD ["bash"]' "$tarball" "docker.io/library/$name" >/dev/null
}

pull=()
for b in "${bases[@]}"; do
  if "$engine" image inspect "$b" >/dev/null 2>&1; then continue; fi
  case $base_mode in
    pull) "$engine" pull "$b" >&2 ;;
    debootstrap) debootstrap_image "$b"; pull=(--pull=never) ;;
    auto) "$engine" pull "$b" >&2 || { debootstrap_image "$b"; pull=(--pull=never); } ;;
  esac
done
# A base made here is not in any registry: never let the build try to refresh it.
[ "$base_mode" = debootstrap ] && pull=(--pull=never)

# docker (BuildKit) reads deploy/Dockerfile.dockerignore by itself and pulls only what is missing.
ignore=()
if [ "$engine" = podman ]; then
  ignore=(--ignorefile deploy/Dockerfile.dockerignore)
else
  pull=()
fi
echo "image.sh: $engine build -t $tag (commit $commit)" >&2
"$engine" build "${pull[@]}" "${ignore[@]}" -f deploy/Dockerfile \
  --build-arg "REDIS_SIDECAR_GIT_COMMIT=$commit" -t "$tag" . >&2
echo "$tag"
