/* stack.h - an OpenFaaS stack.yml as faas-cli reads it, and the build of
 * each function the way `faas-cli build` prepares it, for `iroute local`.
 *
 * Why this design: the same stack.yml must deploy to a cluster with
 * faas-cli and run locally with `iroute local up`, so the file is read with
 * faas-cli's rules (version 1.0, provider "openfaas", ${VAR} and
 * ${VAR:-default} substituted from the environment before parsing, YAML
 * merge keys, unknown keys ignored) and only what iroute needs on top is
 * checked: every lang is one of the three iroute templates, exactly one
 * c-cc (the coordinator), at least one c-entry, handler folders that exist.
 * Every error names the file, line and function.  The build context is the
 * one faas-cli hands to `docker build` (template/<lang>/ copied, the
 * handler folder overlaid into function/, each configuration.copy path
 * copied to function/<path>), and the template's build.sh compiles it to a
 * local executable instead of an image.  Parsed with libyaml's document
 * API, which keeps each node's line.
 */
#ifndef IROUTE_STACK_H
#define IROUTE_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum ir_stack_lang { IR_LANG_CC, IR_LANG_FUNC, IR_LANG_ENTRY };

#define IR_STACK_SCALE_MIN_LABEL "com.openfaas.scale.min"

struct ir_kv {
	char *key, *value;
};

struct ir_kvlist {
	struct ir_kv *v;
	size_t n;
};

struct ir_strlist {
	char **v;
	size_t n;
};

struct ir_stack_fn {
	char *name;
	enum ir_stack_lang lang;
	char *lang_name;    /* "c-cc", "c-func", "c-entry" */
	char *handler;	    /* as written */
	char *handler_path; /* absolute */
	char *image, *fprocess, *namespace_;
	/* environment_file entries in file order, then environment: a later
	 * key replaces an earlier one (faas-cli's order), one entry per key. */
	struct ir_kvlist environment;
	struct ir_strlist environment_file, secrets, build_options, constraints;
	struct ir_kvlist labels, annotations, build_args, limits, requests;
	unsigned scale_min; /* label com.openfaas.scale.min, 0 when absent */
	bool skip_build;
	int line; /* of the function's name */
};

struct ir_stack {
	char *path; /* absolute */
	char *dir;  /* the directory of path: relative paths start here */
	char *name; /* base name without .yml/.yaml ("stack") */
	char *version, *provider, *gateway;
	struct ir_stack_fn *fns; /* in file order */
	size_t nfns;
	struct ir_strlist copy;	    /* configuration.copy, as written */
	struct ir_strlist warnings; /* unknown keys and the like, one line each */
	/* private: every allocation, freed by ir_stack_free() */
	void **pool;
	size_t npool, cpool;
};

/* Read and check @path into @st (zeroed here; free with ir_stack_free(),
 * also after a failure).  0, or -EINVAL/-errno with one message in @err:
 * "stack.yml:12:5: ..." for YAML and schema errors, "function \"x\": ..."
 * for a broken function. */
int ir_stack_load(const char *path, struct ir_stack *st, char *err, size_t errlen);
/* The same for text already in memory; @path names it and anchors relative
 * paths (handlers, environment files, copy paths). */
int ir_stack_parse(const char *text, size_t len, const char *path, struct ir_stack *st, char *err,
		   size_t errlen);
void ir_stack_free(struct ir_stack *st);

/* The one c-cc function; the function called @name; NULL when none. */
const struct ir_stack_fn *ir_stack_cc(const struct ir_stack *st);
const struct ir_stack_fn *ir_stack_find(const struct ir_stack *st, const char *name);
/* The value of @key in @l or NULL. */
const char *ir_kv_get(const struct ir_kvlist *l, const char *key);

/* faas-cli's substitution over @text: ${NAME}, ${NAME:-default} (default
 * when NAME is unset or empty), ${NAME-default} (when unset); anything else
 * with a '$' is kept.  Returns a malloc'd string or NULL with @err set
 * ("line 4: \"${\" without \"}\""). */
char *ir_stack_envsubst(const char *text, size_t len, char *err, size_t errlen);

/* ---- the build (stackbuild.c) ---- */

/* Assemble @fn's build context in @ctx (removed first): @template_dir/<lang>/
 * copied in, the handler folder's entries overlaid into @ctx/function/
 * (except "build" and "template", as faas-cli, and ".iroute", where
 * `iroute local` keeps its state), then each configuration.copy
 * path (relative to the stack file, inside its directory) copied to
 * @ctx/function/<path>.  Symbolic links are followed.  0 or -errno with a
 * message naming the path. */
int ir_stack_context(const struct ir_stack *st, const struct ir_stack_fn *fn,
		     const char *template_dir, const char *ctx, char *err, size_t errlen);

struct ir_build_opts {
	const char *template_dir; /* holds c-cc/ c-func/ c-entry/ */
	const char *prefix;	  /* the runtime's install prefix (include/, lib/, bin/) */
	const char *state_dir;	  /* contexts in build/<fn>, outputs in bin/<fn>, logs in logs/ */
	unsigned jobs;		  /* builds at once (>= 1) */
	FILE *progress;		  /* one line per build started and finished; may be NULL */
};

/* For every function of @st (skip_build ones too: locally there is no
 * image to reuse): assemble its context in <state>/build/<fn>, then run
 * <ctx>/build.sh --prefix PREFIX --out <state>/bin/<fn> with cwd = the
 * context, stdout and stderr to <state>/logs/build-<fn>.log, build_args in
 * its environment.  Up to @jobs at once.  0, or -errno with the first
 * failure in @err: which function, its exit status and the last lines of
 * its log. */
int ir_stack_build(const struct ir_stack *st, const struct ir_build_opts *o, char *err,
		   size_t errlen);

/* The last @lines lines of file @path into @buf (NUL-terminated, each line
 * indented by two spaces); "" when it cannot be read. */
void ir_file_tail(const char *path, unsigned lines, char *buf, size_t cap);

/* snprintf() for paths: 0, or -ENAMETOOLONG when @out was too small. */
int ir_pathf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* mkdir -p; rm -rf (a missing path is fine).  0 or -errno (@err names the path). */
int ir_mkdirs(const char *path, unsigned mode, char *err, size_t errlen);
int ir_rmtree(const char *path, char *err, size_t errlen);

#endif
