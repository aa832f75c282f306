/* test_token.c - where the cluster token comes from, and the errors that say so. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iroute/token.h"
#include "tests.h"

static char path[64];

static void setup(void)
{
	unsetenv("IROUTE_TOKEN");
	unsetenv("IROUTE_TOKEN_FILE");
	snprintf(path, sizeof(path), "/tmp/irt-token-%d", (int)getpid());
}

static void teardown(void)
{
	unlink(path);
}

static void write_file(const char *content, size_t len)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(content, 1, len, f), len);
	fclose(f);
}

START_TEST(t_env_wins)
{
	uint8_t buf[64];
	char err[256];
	write_file("from-file", 9);
	setenv("IROUTE_TOKEN_FILE", path, 1);
	setenv("IROUTE_TOKEN", "from-env\n", 1);
	int n = ir_token_load(buf, sizeof(buf), err, sizeof(err));
	ck_assert_int_eq(n, 8);
	ck_assert_mem_eq(buf, "from-env", 8);
}
END_TEST

START_TEST(t_file)
{
	uint8_t buf[64];
	char err[256];
	write_file("s3cr3t\r\n\n", 9);
	setenv("IROUTE_TOKEN_FILE", path, 1);
	int n = ir_token_load(buf, sizeof(buf), err, sizeof(err));
	ck_assert_int_eq(n, 6);
	ck_assert_mem_eq(buf, "s3cr3t", 6);
}
END_TEST

START_TEST(t_missing_file_named)
{
	uint8_t buf[64];
	char err[256];
	setenv("IROUTE_TOKEN_FILE", "/nonexistent/iroute-token", 1);
	ck_assert_int_eq(ir_token_load(buf, sizeof(buf), err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "IROUTE_TOKEN_FILE=/nonexistent/iroute-token"));
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
}
END_TEST

START_TEST(t_default_path_named)
{
	uint8_t buf[64];
	char err[256];
	if (access(IR_TOKEN_DEFAULT_FILE, F_OK) == 0)
		return; /* a real secret is mounted here: nothing to check */
	ck_assert_int_lt(ir_token_load(buf, sizeof(buf), err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(strstr(err, IR_TOKEN_DEFAULT_FILE));
}
END_TEST

START_TEST(t_empty_and_too_long)
{
	uint8_t buf[8];
	char err[256];
	write_file("\n", 1);
	setenv("IROUTE_TOKEN_FILE", path, 1);
	ck_assert_int_eq(ir_token_load(buf, sizeof(buf), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "empty"));
	write_file("0123456789", 10);
	ck_assert_int_eq(ir_token_load(buf, sizeof(buf), err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, path));
	setenv("IROUTE_TOKEN", "0123456789", 1);
	ck_assert_int_eq(ir_token_load(buf, sizeof(buf), err, sizeof(err)), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err, "IROUTE_TOKEN"));
	write_file("01234567", 8); /* exactly the capacity fits */
	unsetenv("IROUTE_TOKEN");
	ck_assert_int_eq(ir_token_load(buf, sizeof(buf), err, sizeof(err)), 8);
}
END_TEST

Suite *token_suite(void)
{
	Suite *s = suite_create("token");
	TCase *tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, t_env_wins);
	tcase_add_test(tc, t_file);
	tcase_add_test(tc, t_missing_file_named);
	tcase_add_test(tc, t_default_path_named);
	tcase_add_test(tc, t_empty_and_too_long);
	suite_add_tcase(s, tc);
	return s;
}
