#!/bin/sh
# base-image.sh [IMAGE] - make sure the local Debian base image exists
# (default localhost/debian:bookworm), the base of the runtime image
# (deploy/runtime/Dockerfile) and of the three templates' stages.
#
# Why local: the image is made from the Debian archive alone (debootstrap
# minbase, imported into podman's store), so `make image` needs no other
# registry; the same tag works for buildah and podman, which share that
# store.  Installs buildah, podman, runc and debootstrap first when they are
# missing (as root); images are optional, so scripts/deps.sh does not.
#
# Environment: DEBIAN_MIRROR [http://deb.debian.org/debian],
# SECURITY_MIRROR [http://deb.debian.org/debian-security], SUITE [bookworm].
set -eu

IMAGE=${1:-localhost/debian:bookworm}
SUITE=${SUITE:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

missing=""
for p in buildah podman runc debootstrap; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "base-image: missing Debian packages:$missing" >&2
		echo "base-image: run as root, or: sudo apt-get install -y$missing" >&2
		exit 1
	fi
	echo "base-image: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing ||
		{ apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }
fi

if podman image exists "$IMAGE"; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "base-image: $IMAGE is missing and debootstrap needs root" >&2
	exit 1
fi

echo "base-image: building $IMAGE (debootstrap --variant=minbase $SUITE)"
dir=$(mktemp -d /var/tmp/iroute-base.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
debootstrap --variant=minbase "$SUITE" "$dir" "$MIRROR"
# What a slim image leaves out, now and in every later install: package
# caches and lists, documentation but the copyright files, man pages.
rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* \
	"$dir"/usr/share/man/* "$dir"/usr/share/info/*
find "$dir/usr/share/doc" -type f ! -name copyright -delete
printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
	'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
	>"$dir/etc/dpkg/dpkg.cfg.d/slim"
# As in Debian's official images: apt leaves no package cache in a layer.
cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
cat >"$dir/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
tar -C "$dir" -c . | podman import --change 'CMD ["/bin/bash"]' - "$IMAGE"
echo "base-image: $IMAGE ready"
