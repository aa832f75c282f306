/* log.h - one log line per decision, to stderr, with level and component.
 *
 * Lines look like "iroute[1234] warn tcp: auth failed from 127.0.0.1:5311".
 * IROUTE_LOG_LEVEL (error|warn|info|debug, default info) filters.  Tests and
 * embedders can divert lines with ir_log_set_sink().
 */
#ifndef IROUTE_LOG_H
#define IROUTE_LOG_H

enum ir_log_level { IR_LOG_ERROR = 0, IR_LOG_WARN = 1, IR_LOG_INFO = 2, IR_LOG_DEBUG = 3 };

/* Receives each formatted line (no trailing newline); borrowed for the call. */
typedef void (*ir_log_sink)(enum ir_log_level level, const char *line, void *arg);

void ir_log(enum ir_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* NULL restores stderr.  Not thread-safe against concurrent ir_log(). */
void ir_log_set_sink(ir_log_sink sink, void *arg);
void ir_log_set_level(enum ir_log_level level);
int ir_log_enabled(enum ir_log_level level);

#define ir_error(comp, ...) ir_log(IR_LOG_ERROR, comp, __VA_ARGS__)
#define ir_warn(comp, ...) ir_log(IR_LOG_WARN, comp, __VA_ARGS__)
#define ir_info(comp, ...) ir_log(IR_LOG_INFO, comp, __VA_ARGS__)
#define ir_debug(comp, ...)                                                                        \
	do {                                                                                       \
		if (ir_log_enabled(IR_LOG_DEBUG))                                                  \
			ir_log(IR_LOG_DEBUG, comp, __VA_ARGS__);                                   \
	} while (0)

#endif
