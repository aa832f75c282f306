/* watchdog_int.h - what watchdog.c shares with wdproxy.c (mode=http).
 *
 * Why this design: the HTTP front (watchdog.c) owns the request flow and
 * the connection list; the reverse proxy is one more mode but big enough
 * (the upstream child, keep-alive upstream connections, streaming both
 * ways) to be its own file.  Internal to the watchdog.
 */
#ifndef IROUTE_WATCHDOG_INT_H
#define IROUTE_WATCHDOG_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iroute/metrics.h"
#include "iroute/wdconfig.h"
#include "watchdog.h"

struct ir_httpc;
struct wd_proxy;
struct wd_preq;

#define WD_LOG "watchdog"
#define WD_LOCK_DEFAULT "/tmp/.lock"
#define WD_MAX_ENV 256 /* CGI variables per request; more headers are dropped */

/* One client connection, for the request deadline (see "Hardening"). */
struct wd_conn {
	struct wd_conn *prev, *next;
	int fd;		      /* MHD's socket; shut down, never closed, here */
	uint64_t deadline_ns; /* 0 = not reading a request (handler or response running) */
	char peer[64];
	struct ir_httpc *up; /* mode=http: this connection's upstream keep-alive connection */
};

struct wd {
	const struct ir_wd_config *cfg;
	const char *lock_path;
	struct ir_metrics *metrics;
	struct MHD_Daemon *http;
	struct MHD_Daemon *mhttp;
	ir_wd_handler_fn handler; /* mode=iroute */
	void *handler_arg;
	void (*on_drain)(void *arg);
	void *drain_arg;
	atomic_int inflight; /* function requests running (limiter) */
	atomic_int active;   /* requests of any path not yet completed (drain) */
	atomic_bool draining;

	/* Request deadlines: the reaper thread shuts down a connection whose
	 * request was not read whole within read_timeout. */
	pthread_mutex_t conns_mu;
	pthread_cond_t conns_cv; /* CLOCK_MONOTONIC */
	struct wd_conn conns;	 /* list head */
	pthread_t reaper;
	bool reaper_started, reaper_stop;

	struct wd_proxy *proxy; /* mode=http (wdproxy.c) */
};

/* Per request, created by the URI log callback, freed when completed. */
struct wd_req {
	char *uri; /* raw request target, query included */
	uint64_t start_ns;
	unsigned char *body;
	size_t len, cap;
	bool started;	      /* access handler has seen this request */
	bool received;	      /* the whole request is in: its read deadline is off */
	uint64_t body_seen;   /* request body bytes so far (IROUTE_MAX_BODY_BYTES) */
	bool too_large;	      /* body_seen passed the cap: discard, then 413 */
	bool counted;	      /* holds an inflight slot */
	bool responded;	      /* a response was queued */
	struct wd_preq *preq; /* mode=http: the upstream exchange (wdproxy.c) */
};

uint64_t wd_now_ns(void);
/* The connection's entry in the list (MHD's socket context), or NULL. */
struct wd_conn *wd_conn_of(struct MHD_Connection *con);
/* exec_timeout, or a shorter X-Timeout of the request; 0 = none. */
uint64_t wd_request_timeout(const struct ir_wd_config *cfg, struct MHD_Connection *con);
/* X-Call-Id and X-Start-Time from the request, unless @resp has them. */
void wd_add_passthrough(struct MHD_Connection *con, struct MHD_Response *resp);
/* Queue @resp (destroyed here; NULL = MHD_NO) with X-Duration-Seconds and
 * the pass-through headers; @record counts it in the metrics now. */
enum MHD_Result wd_finish(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
			  const char *method, unsigned int status, struct MHD_Response *resp,
			  bool record);
enum MHD_Result wd_queue_text(struct MHD_Connection *con, unsigned int status, const char *text);

/* ---- wdproxy.c ---- */

/* Check upstream_url, start fprocess once (its stdout and stderr logged
 * line by line), and start watching it.  0 or -errno with @err. */
int wd_proxy_start(struct wd *wd, char *err, size_t errlen);
/* An fd that becomes readable when the child has exited (poll it with
 * the signalfd), or -1 when there is no proxy. */
int wd_proxy_exit_fd(const struct wd *wd);
/* Whether upstream_url accepts a TCP connection now. */
bool wd_proxy_upstream_up(const struct wd *wd);
/* Forward SIGTERM to the child and wait up to @wait_ns for it, then
 * SIGKILL its group; join the logger.  The struct stays (request threads
 * may still read it).  Safe with no proxy and twice. */
void wd_proxy_stop(struct wd *wd, uint64_t wait_ns);
/* wd_proxy_stop() and free the rest; wd->proxy is NULL after. */
void wd_proxy_free(struct wd *wd);
/* Describe how the child ended, after wd_proxy_exit_fd() fired. */
void wd_proxy_exit_status(struct wd *wd, char *buf, size_t len);

/* The request flow of mode=http, called by serve_function(): each body
 * piece as it arrives (@len > 0), then once with @len 0 at the end. */
enum MHD_Result wd_proxy_request(struct wd *wd, struct MHD_Connection *con, struct wd_req *r,
				 const char *method, const char *upload, size_t len);
/* /_/ready with ready_path set: a GET of it upstream; 200 on 2xx. */
enum MHD_Result wd_proxy_ready(struct wd *wd, struct MHD_Connection *con, struct wd_req *r);
/* The client connection closed: drop its upstream connection. */
void wd_proxy_conn_closed(struct wd_conn *c);
/* The request ended (completed_cb): release its proxy state. */
void wd_proxy_req_done(struct wd_req *r);

#endif
