/* log.c - leveled log lines to stderr or a sink (see log.h). */
#include "iroute/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ir_log_sink log_sink;
static void *log_sink_arg;
static int log_level = -1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static int level_from_env(void)
{
	const char *v = getenv("IROUTE_LOG_LEVEL");
	if (!v || !*v)
		return IR_LOG_INFO;
	for (int i = 0; i < 4; i++)
		if (!strcmp(v, level_names[i]))
			return i;
	fprintf(stderr, "iroute: IROUTE_LOG_LEVEL '%s' is not error|warn|info|debug; using info\n",
		v);
	return IR_LOG_INFO;
}

int ir_log_enabled(enum ir_log_level level)
{
	if (log_level < 0)
		log_level = level_from_env();
	return (int)level <= log_level;
}

void ir_log_set_level(enum ir_log_level level)
{
	log_level = (int)level;
}

void ir_log_set_sink(ir_log_sink sink, void *arg)
{
	log_sink = sink;
	log_sink_arg = arg;
}

void ir_log(enum ir_log_level level, const char *component, const char *fmt, ...)
{
	if (!ir_log_enabled(level))
		return;
	char line[1024];
	int n = snprintf(line, sizeof(line), "iroute[%d] %s %s: ", (int)getpid(),
			 level_names[level], component);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (log_sink) {
		log_sink(level, line, log_sink_arg);
		return;
	}
	/* One write() per line so that lines of several processes never mix. */
	size_t len = strlen(line);
	if (len < sizeof(line) - 1)
		line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
