# install.mk - `make install`, `make image`, `make test-images`.
#
# install: the headers, the static libraries (libiroute.a and the two
# main() archives), the binaries, a pkg-config file and the templates'
# libexec/iroute/runtime-packages under $(DESTDIR)$(PREFIX), the layout the
# templates build against (template/*/build.sh --prefix).  Works as any
# user into an empty DESTDIR.
#
# image: the runtime image $(IMAGE), i.e. /usr/local of `make install`
# built inside $(BASE_IMAGE) (deploy/runtime/Dockerfile); templates copy
# it in as their RUNTIME_IMAGE build argument, as of-watchdog templates
# copy the watchdog.  The base image is made from the Debian archive when
# missing (scripts/base-image.sh).
#
# test-images: every template built into an image with buildah and run
# with podman until healthy (scripts/test-images.sh; root, network to the
# Debian archive; not part of `make test`).

PREFIX     ?= /usr/local
DESTDIR    ?=
IMAGE      ?= localhost/iroute-runtime:latest
BASE_IMAGE ?= localhost/debian:bookworm

# The role binaries and the iroute command-line tool (mk/cli.mk's
# CLI_BIN; iroute-iroute is only its link in the build tree).
INSTALL_BINS := $(filter-out $(BUILD)/bin/iroute-iroute,$(CMD_BINS)) $(CLI_BIN)

# What links against libiroute.a: pkg-config's Libs carry the external
# libraries too (the archive is static, so every user needs them);
# Requires.private lets `pkg-config --static` add theirs.  The file finds
# its prefix from its own place (${pcfiledir}, pkg-config and pkgconf), so
# a DESTDIR tree or a copied /usr/local works without --define-variable.
IROUTE_PC_LIBS := -L$${libdir} -liroute $(strip $(EXT_LIBS) $(LDLIBS)) -pthread

.PHONY: install image test-images

install: $(LIB) $(MAIN_LIBS) $(INSTALL_BINS)
	install -d $(DESTDIR)$(PREFIX)/include/iroute $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/iroute
	install -m 0644 runtime/include/iroute/*.h $(DESTDIR)$(PREFIX)/include/iroute/
	install -m 0644 $(LIB) $(MAIN_LIBS) $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(INSTALL_BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 scripts/runtime-packages.sh $(DESTDIR)$(PREFIX)/libexec/iroute/runtime-packages
	printf '%s\n' '# installed for $(PREFIX); relocatable' \
		'prefix=$${pcfiledir}/../..' 'includedir=$${prefix}/include' \
		'libdir=$${prefix}/lib' '' 'Name: iroute' \
		'Description: one-hop serverless workflows: the iroute runtime' \
		'Version: 0.1' 'Requires.private: libmicrohttpd libcjson' \
		'Cflags: -I$${includedir}' 'Libs: $(IROUTE_PC_LIBS)' \
		>$(DESTDIR)$(PREFIX)/lib/pkgconfig/iroute.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/iroute.pc

image:
	scripts/base-image.sh $(BASE_IMAGE)
	buildah bud --isolation chroot --format docker --layers \
		--build-arg BASE_IMAGE=$(BASE_IMAGE) -t $(IMAGE) -f deploy/runtime/Dockerfile .

test-images: image
	IMAGE=$(IMAGE) BASE_IMAGE=$(BASE_IMAGE) scripts/test-images.sh
