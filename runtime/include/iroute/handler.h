/* handler.h - the C handler ABI of a workflow function (template c-func):
 * what a user writes in function/handler.c, and the output object the
 * handler writes into.
 *
 * Why this design: a handler is a plain C function over byte buffers - no
 * framework types, no serialization library, no callbacks to register -
 * so any C code can become a workflow function, and the runtime is free to
 * place the bytes where they travel best (in the shared-memory ring for
 * ipc).  The input of a join is one buffer per branch in predecessor order
 * (workflow.h), so the handler indexes in[] and never searches.  Output is
 * written through struct ir_out rather than returned: the runtime owns the
 * memory (bounded, freed on every path), a handler can send different
 * bytes to different successors (per-edge output), and it can hand its
 * output on before it returns (ir_out_emit(): the successors start while
 * the handler does its own cleanup, e.g. a store write).  Errors are
 * values, not crashes: a handler reports a failed request with
 * ir_out_error() and the caller gets that status and message; a handler
 * that crashes or overruns its deadline fails that request, not the
 * instance (the runtime runs handlers on a worker pool and isolates them).
 *
 * The contract, for function/handler.c:
 *
 *     #include <iroute/handler.h>
 *
 *     int handle(void *state, const struct ir_req *req,
 *                const struct ir_in *in, size_t nin, struct ir_out *out)
 *     {
 *             // in[0..nin-1]: one input per predecessor branch (nin == 1
 *             // for a function with one predecessor, or an entry function:
 *             // the HTTP request body)
 *             return ir_out_write(out, in[0].data, in[0].len);
 *     }
 *
 *     // optional, once per instance before the first request / at exit:
 *     int handler_init(void **state);
 *     void handler_teardown(void *state);
 *
 * handle() returns 0 (the output is sent: to every successor, or back to
 * the caller for a sink), or a negative value (the request fails with 500
 * and "handler returned <n>", unless ir_out_error() set a status and a
 * message first).  It runs on a worker thread, several at once (capacity):
 * it must be thread-safe; @state is what handler_init() returned.
 *
 * Output rules:
 *   - ir_out_write() appends to the output every successor receives.
 *   - ir_out_write_to(out, "b", ...) appends to successor "b"'s own
 *     output; a successor that got any per-edge write receives only its
 *     own bytes, the others receive the common output.
 *   - ir_out_reserve()/ir_out_commit() fill an output in place (no copy).
 *   - ir_out_emit() sends everything written so far and ends the output:
 *     later writes fail with -EALREADY.
 *   - Writes return 0, -ENOENT for a name that is not a successor,
 *     -EALREADY after ir_out_emit(), -E2BIG or -ENOMEM.
 *   - An output over the instance's limit (ir_out_new()'s max, 64 MiB by default)
 *     fails the write with -E2BIG; the request then fails with 413 unless
 *     the handler recovers.
 */
#ifndef IROUTE_HANDLER_H
#define IROUTE_HANDLER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IR_OUT_DEFAULT_MAX (64u << 20)
#define IR_OUT_MAX_EDGES 256 /* successors of one function (IR_WF_MAX_NEXT) */

/* The request being handled (borrowed for the call). */
struct ir_req {
	uint64_t id;	      /* request id, unique per request */
	uint64_t epoch;	      /* routing epoch the request started in */
	uint64_t deadline_ns; /* CLOCK_MONOTONIC; the request fails after it */
	const char *function; /* this function's name */
	const char *call_id;  /* X-Call-Id of the HTTP request at the entry */
};

/* One input (borrowed for the call). */
struct ir_in {
	const void *data;
	size_t len;
	const char *from; /* the predecessor's name ("" at an entry function) */
};

/* The output of one handler call. */
struct ir_out;

int ir_out_write(struct ir_out *o, const void *p, size_t len);
int ir_out_write_to(struct ir_out *o, const char *next, const void *p, size_t len);
/* A writable area of @len bytes at the end of the output (@next NULL: the
 * common one), valid until the next call on @o; ir_out_commit() then adds
 * the first @used of them (<= len; more is -EINVAL).  NULL when over the limit, out of
 * memory, emitted already, or @next is not a successor. */
void *ir_out_reserve(struct ir_out *o, const char *next, size_t len);
int ir_out_commit(struct ir_out *o, const char *next, size_t used);
/* Send the output now (see above).  0, -EALREADY when emitted twice, or
 * the runtime's error. */
int ir_out_emit(struct ir_out *o);
/* Fail the request with HTTP @status (400-599) and a message (printf
 * format); returns -1, so a handler can `return ir_out_error(...)`. */
int ir_out_error(struct ir_out *o, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- for the runtime (not for handlers) ---- */

/* Called by ir_out_emit() (borrowed @o; 0 or -errno). */
typedef int (*ir_out_emit_fn)(void *arg, struct ir_out *o);

/* An output for a function with successors @next (borrowed for the life
 * of @o; nnext 0 for a sink: everything goes to the common output) and a
 * limit of @max bytes per output (0 = IR_OUT_DEFAULT_MAX).  NULL when out
 * of memory or nnext > IR_OUT_MAX_EDGES. */
struct ir_out *ir_out_new(const char *const *next, size_t nnext, size_t max, ir_out_emit_fn emit,
			  void *arg);
void ir_out_free(struct ir_out *o);

/* The bytes for successor @i (0..nnext-1; any i for a sink: the common
 * output): its own when it got per-edge writes, else the common ones.
 * Borrowed until ir_out_free(). */
void ir_out_get(const struct ir_out *o, size_t i, const void **p, size_t *len);
/* The error set by ir_out_error(): its status (0 = none) and message. */
int ir_out_status(const struct ir_out *o, const char **msg);
bool ir_out_emitted(const struct ir_out *o);

/* ---- the binaries' main() (libiroute_func.a, libiroute_entry.a) ---- */

/* What a c-func binary links: handle() and its optional hooks (weak
 * symbols in runtime/main/func_main.c; NULL when not defined). */
struct ir_handler_vt {
	int (*handle)(void *state, const struct ir_req *req, const struct ir_in *in, size_t nin,
		      struct ir_out *out);
	int (*init)(void **state);
	void (*teardown)(void *state);
};

/* Serve a workflow function with @vt until SIGTERM (README "Configuration"
 * lists the environment).  Returns the exit status: 0 after a drain, 2
 * for a configuration error, 1 when serving failed. */
int ir_func_main(const struct ir_handler_vt *vt);

/* c-entry: the optional load generator for POST /bench, defined in the
 * entry's function/ folder:
 *     int generate_data(uint64_t seq, struct ir_out *out);
 * writes the body of the @seq-th request (seq = 0, 1, ...) with
 * ir_out_write(); returns 0, or < 0 to fail the bench.  Deterministic in
 * @seq, so a run can be repeated. */
typedef int (*ir_generate_fn)(uint64_t seq, struct ir_out *out);

/* Serve a workflow entry (@gen may be NULL: /bench then repeats the
 * request body).  Exit status as ir_func_main(). */
int ir_entry_main(ir_generate_fn gen);

#endif
