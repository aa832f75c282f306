/* replay.c - run a fuzz target over saved inputs without libFuzzer.
 *
 * `make test` uses this to replay the committed corpus with any compiler,
 * so every seed (and every crash reproducer added to it) stays a
 * regression test even where clang's libFuzzer is not installed.
 * Arguments are directories (every regular file in them, in name order)
 * or single files.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Read all of @path into a malloc'd buffer.  Returns 0 or -errno. */
static int read_file(const char *path, uint8_t **out, size_t *out_len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return errno ? -errno : -EIO;
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = bigger;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		len += n;
		if (n == 0)
			break;
	}
	int err = ferror(f) ? -EIO : 0;
	fclose(f);
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*out_len = len;
	return 0;
}

static int replay_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_file(path, &buf, &len);
	if (rc < 0) {
		fprintf(stderr, "replay: cannot read \"%s\": %s\n", path, strerror(-rc));
		return rc;
	}
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int replay_dir(const char *dir, size_t *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0) {
		fprintf(stderr, "replay: cannot list \"%s\": %s\n", dir, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (rc == 0) {
			char path[4096];
			struct stat st;
			int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			if (w < 0 || (size_t)w >= sizeof(path)) {
				fprintf(stderr, "replay: path too long: \"%s/%s\"\n", dir,
					names[i]->d_name);
				rc = -1;
			} else if (stat(path, &st) != 0) {
				fprintf(stderr, "replay: cannot read \"%s\": %s\n", path,
					strerror(errno));
				rc = -1;
			} else if (S_ISREG(st.st_mode)) {
				rc = replay_file(path);
				if (rc == 0)
					(*count)++;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		size_t count = 0;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: cannot read \"%s\": %s\n", argv[i],
				strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode)) {
			if (replay_dir(argv[i], &count) != 0)
				return 1;
		} else {
			if (replay_file(argv[i]) != 0)
				return 1;
			count = 1;
		}
		printf("replayed %zu inputs from %s\n", count, argv[i]);
	}
	return 0;
}
