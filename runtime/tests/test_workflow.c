/* test_workflow.c - workflow.json: both forms, the ordering rules, the
 * slices, every validation rule with its message, and robustness against
 * mutated input.
 *
 * Fixtures (runtime/tests/workflows/, read relative to the repository root,
 * where `make test` runs the suites):
 *   social-network.json  iRoute's stage form; DeathStarBench's compose-post
 *                        path in a plausible staging: compose-post fans out
 *                        to four uploads, compose-and-upload joins them and
 *                        fans out to the three stores.
 *   finra.json           explicit: five entries (marketdata, lastpx, side,
 *                        trddate, volume) join in margin-balance; the file
 *                        lists margin-balance and volume first, to check
 *                        that indices (and so the join order) follow "entry".
 *   excamera.json        explicit: split fans out to encode-0..3, rebase
 *                        joins them, stitch joins split (the container
 *                        header) and rebase; topological order differs from
 *                        index order.
 *   small.json, small-stages.json  one DAG in both forms.
 *   cycle.json           a cycle behind an entry.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iroute/workflow.h"
#include "tests.h"

#define WF_DIR "runtime/tests/workflows/"

static struct ir_workflow wf;
static char err[1024];

static void teardown(void)
{
	ir_workflow_free(&wf);
}

static int parse(const char *json)
{
	memset(err, 0, sizeof(err));
	return ir_workflow_parse(json, strlen(json), NULL, &wf, err, sizeof(err));
}

static int load(const char *file)
{
	memset(err, 0, sizeof(err));
	return ir_workflow_load(file, &wf, err, sizeof(err));
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	char *buf = malloc(1 << 16);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, (1 << 16) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static const char *fname(uint32_t i)
{
	ck_assert_uint_lt(i, wf.nfns);
	return wf.fns[i].name;
}

/* Names of @idx[0..n-1] joined by ','. */
static const char *names(const uint32_t *idx, size_t n)
{
	static char buf[2048];
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (i)
			strcat(buf, ",");
		strcat(buf, fname(idx[i]));
	}
	return buf;
}

static void assert_json(char *got, const char *want)
{
	ck_assert_ptr_nonnull(got);
	ck_assert_str_eq(got, want);
	free(got);
}

/* Every invariant of workflow.h, checked from the outside. */
static void assert_invariants(const struct ir_workflow *w)
{
	ck_assert_uint_ge(w->nfns, 1);
	ck_assert_uint_ge(w->nentry, 1);
	ck_assert_uint_ge(w->nsinks, 1);
	size_t *pos = calloc(w->nfns, sizeof(*pos));
	ck_assert_ptr_nonnull(pos);
	for (size_t i = 0; i < w->nentry; i++) {
		ck_assert_uint_eq(w->entry[i], i);
		ck_assert(w->fns[i].entry);
		ck_assert_uint_eq(w->fns[i].nprev, 0);
	}
	for (size_t t = 0; t < w->nfns; t++)
		pos[w->topo[t]] = t + 1;
	size_t ns = 0;
	for (size_t i = 0; i < w->nfns; i++) {
		const struct ir_wf_fn *f = &w->fns[i];
		ck_assert_uint_ne(pos[i], 0);
		ck_assert_int_eq(f->sink, f->nnext == 0);
		ck_assert_int_eq(f->entry, i < w->nentry);
		ck_assert_int_eq(ir_workflow_find(w, f->name), (int)i);
		if (f->sink)
			ck_assert_uint_eq(w->sinks[ns++], i);
		for (size_t k = 0; k < f->nnext; k++)
			ck_assert_uint_lt(pos[i], pos[f->next[k]]);
		for (size_t k = 1; k < f->nprev; k++)
			ck_assert_uint_lt(f->prev[k - 1], f->prev[k]);
	}
	ck_assert_uint_eq(ns, w->nsinks);
	free(pos);
}

/* ---- the two forms ---- */

START_TEST(t_stage_form)
{
	ck_assert_int_eq(parse("{\"name\": \"x\", \"dag\": [[\"a\"], [\"b\", \"c\"], [\"d\"]]}"),
			 0);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(wf.name, "x");
	ck_assert_uint_eq(wf.nfns, 4);
	ck_assert_str_eq(names(wf.entry, wf.nentry), "a");
	ck_assert_str_eq(names(wf.fns[0].next, wf.fns[0].nnext), "b,c");
	ck_assert_str_eq(names(wf.fns[1].next, wf.fns[1].nnext), "d");
	ck_assert_str_eq(names(wf.fns[3].prev, wf.fns[3].nprev), "b,c");
	ck_assert_str_eq(names(wf.topo, wf.nfns), "a,b,c,d");
	ck_assert_str_eq(names(wf.sinks, wf.nsinks), "d");
	assert_invariants(&wf);
}
END_TEST

START_TEST(t_stage_form_every_to_every)
{
	ck_assert_int_eq(
	    parse("{\"dag\": [[\"a\", \"b\"], [\"c\", \"d\", \"e\"], [\"f\", \"g\"]]}"), 0);
	ck_assert_str_eq(wf.name, "workflow"); /* no name, no default */
	ck_assert_str_eq(names(wf.entry, wf.nentry), "a,b");
	for (uint32_t i = 0; i < 2; i++)
		ck_assert_str_eq(names(wf.fns[i].next, wf.fns[i].nnext), "c,d,e");
	for (uint32_t i = 2; i < 5; i++) {
		ck_assert_str_eq(names(wf.fns[i].prev, wf.fns[i].nprev), "a,b");
		ck_assert_str_eq(names(wf.fns[i].next, wf.fns[i].nnext), "f,g");
	}
	ck_assert_str_eq(names(wf.fns[6].prev, wf.fns[6].nprev), "c,d,e");
	ck_assert_str_eq(names(wf.sinks, wf.nsinks), "f,g");
	assert_invariants(&wf);
}
END_TEST

START_TEST(t_explicit_form)
{
	ck_assert_int_eq(parse("{\"name\": \"finra\", \"functions\": {\"marketdata\": {\"next\": "
			       "[\"margin-balance\"]}, \"lastpx\": {\"next\": "
			       "[\"margin-balance\"]}, \"margin-balance\": {}}, \"entry\": "
			       "[\"marketdata\", \"lastpx\"]}"),
			 0);
	ck_assert_str_eq(wf.name, "finra");
	ck_assert_str_eq(names(wf.entry, wf.nentry), "marketdata,lastpx");
	ck_assert_str_eq(names(wf.fns[2].prev, wf.fns[2].nprev), "marketdata,lastpx");
	ck_assert(wf.fns[2].sink);
	assert_invariants(&wf);
}
END_TEST

START_TEST(t_default_name)
{
	const char *j = "{\"dag\": [[\"a\"]]}";
	ck_assert_int_eq(ir_workflow_parse(j, strlen(j), "flow-1", &wf, err, sizeof(err)), 0);
	ck_assert_str_eq(wf.name, "flow-1");
	ir_workflow_free(&wf);
	/* An explicit "name" wins over the default. */
	j = "{\"name\": \"mine\", \"dag\": [[\"a\"]]}";
	ck_assert_int_eq(ir_workflow_parse(j, strlen(j), "flow-1", &wf, err, sizeof(err)), 0);
	ck_assert_str_eq(wf.name, "mine");
}
END_TEST

START_TEST(t_both_forms_same_json)
{
	char *a, *b;
	ck_assert_int_eq(load(WF_DIR "small.json"), 0);
	a = ir_workflow_to_json(&wf);
	ir_workflow_free(&wf);
	ck_assert_int_eq(load(WF_DIR "small-stages.json"), 0);
	b = ir_workflow_to_json(&wf);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(a,
			 "{\"name\":\"small\",\"functions\":{\"a\":{\"next\":[\"b\",\"c\"]},"
			 "\"b\":{\"next\":[\"d\"]},\"c\":{\"next\":[\"d\"]},\"d\":{\"next\":[]}},"
			 "\"entry\":[\"a\"]}");
	free(a);
	free(b);
}
END_TEST

/* to_json, parsed again, gives the same workflow and the same text. */
static void assert_round_trip(void)
{
	char *a = ir_workflow_to_json(&wf);
	ck_assert_ptr_nonnull(a);
	struct ir_workflow w2;
	char e2[512];
	ck_assert_int_eq(ir_workflow_parse(a, strlen(a), NULL, &w2, e2, sizeof(e2)), 0);
	char *b = ir_workflow_to_json(&w2);
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(a, b);
	ck_assert_uint_eq(w2.nfns, wf.nfns);
	for (size_t i = 0; i < wf.nfns; i++) {
		ck_assert_str_eq(w2.fns[i].name, wf.fns[i].name);
		ck_assert_uint_eq(w2.fns[i].nprev, wf.fns[i].nprev);
		if (wf.fns[i].nprev) /* prev is NULL when empty */
			ck_assert_mem_eq(w2.fns[i].prev, wf.fns[i].prev,
					 wf.fns[i].nprev * sizeof(uint32_t));
	}
	ck_assert_mem_eq(w2.topo, wf.topo, wf.nfns * sizeof(uint32_t));
	ir_workflow_free(&w2);
	free(a);
	free(b);
}

/* ---- the project's workflows ---- */

START_TEST(t_social_network)
{
	ck_assert_int_eq(load(WF_DIR "social-network.json"), 0);
	ck_assert_str_eq(wf.name, "social-network");
	ck_assert_uint_eq(wf.nfns, 9);
	ck_assert_str_eq(names(wf.entry, wf.nentry), "compose-post");
	ck_assert_str_eq(names(wf.fns[0].next, wf.fns[0].nnext),
			 "upload-text,upload-media,upload-user-mentions,upload-unique-id");
	int j = ir_workflow_find(&wf, "compose-and-upload");
	ck_assert_int_eq(j, 5);
	ck_assert_str_eq(names(wf.fns[j].prev, wf.fns[j].nprev),
			 "upload-text,upload-media,upload-user-mentions,upload-unique-id");
	ck_assert_str_eq(names(wf.sinks, wf.nsinks), "post-storage,user-timeline,home-timeline");
	assert_json(ir_workflow_slice_json(&wf, "upload-user-mentions"),
		    "{\"workflow\":\"social-network\",\"function\":\"upload-user-mentions\","
		    "\"entry\":false,\"sink\":false,\"join\":false,\"index\":3,\"next\":[{\"name\":"
		    "\"compose-and-upload\",\"index\":5,\"join\":true,\"branch\":2,\"inputs\":4}],"
		    "\"prev\":[\"compose-post\"]}");
	assert_json(ir_workflow_slice_json(&wf, "compose-and-upload"),
		    "{\"workflow\":\"social-network\",\"function\":\"compose-and-upload\","
		    "\"entry\":false,\"sink\":false,\"join\":true,\"index\":5,\"next\":["
		    "{\"name\":\"post-storage\",\"index\":6,\"join\":false,\"branch\":0,\"inputs\":1},"
		    "{\"name\":\"user-timeline\",\"index\":7,\"join\":false,\"branch\":0,\"inputs\":1},"
		    "{\"name\":\"home-timeline\",\"index\":8,\"join\":false,\"branch\":0,\"inputs\":1}],"
		    "\"prev\":[\"upload-text\",\"upload-media\",\"upload-user-mentions\","
		    "\"upload-unique-id\"]}");
	assert_invariants(&wf);
	assert_round_trip();
}
END_TEST

START_TEST(t_finra)
{
	ck_assert_int_eq(load(WF_DIR "finra.json"), 0);
	ck_assert_str_eq(wf.name, "finra");
	/* Entries first, in "entry" order, although the file lists
	 * margin-balance and volume first. */
	ck_assert_str_eq(names(wf.topo, wf.nfns),
			 "marketdata,lastpx,side,trddate,volume,margin-balance");
	ck_assert_uint_eq(wf.nentry, 5);
	int mb = ir_workflow_find(&wf, "margin-balance");
	ck_assert_int_eq(mb, 5);
	ck_assert_uint_eq(wf.fns[mb].nprev, 5);
	ck_assert_str_eq(names(wf.fns[mb].prev, wf.fns[mb].nprev),
			 "marketdata,lastpx,side,trddate,volume");
	ck_assert_str_eq(names(wf.sinks, wf.nsinks), "margin-balance");
	/* Each entry's branch into the join is its position in that order. */
	static const char *const ent[] = {"marketdata", "lastpx", "side", "trddate", "volume"};
	for (int b = 0; b < 5; b++) {
		char want[512];
		snprintf(
		    want, sizeof(want),
		    "{\"workflow\":\"finra\",\"function\":\"%s\",\"entry\":true,\"sink\":false,"
		    "\"join\":false,\"index\":%d,\"next\":[{\"name\":\"margin-balance\","
		    "\"index\":5,\"join\":true,\"branch\":%d,\"inputs\":5}],\"prev\":[]}",
		    ent[b], b, b);
		assert_json(ir_workflow_slice_json(&wf, ent[b]), want);
	}
	assert_json(ir_workflow_slice_json(&wf, "margin-balance"),
		    "{\"workflow\":\"finra\",\"function\":\"margin-balance\",\"entry\":false,"
		    "\"sink\":true,\"join\":true,\"index\":5,\"next\":[],\"prev\":[\"marketdata\",\"lastpx\","
		    "\"side\",\"trddate\",\"volume\"]}");
	assert_json(ir_workflow_to_json(&wf),
		    "{\"name\":\"finra\",\"functions\":{"
		    "\"marketdata\":{\"next\":[\"margin-balance\"]},"
		    "\"lastpx\":{\"next\":[\"margin-balance\"]},"
		    "\"side\":{\"next\":[\"margin-balance\"]},"
		    "\"trddate\":{\"next\":[\"margin-balance\"]},"
		    "\"volume\":{\"next\":[\"margin-balance\"]},"
		    "\"margin-balance\":{\"next\":[]}},"
		    "\"entry\":[\"marketdata\",\"lastpx\",\"side\",\"trddate\",\"volume\"]}");
	assert_invariants(&wf);
	assert_round_trip();
}
END_TEST

START_TEST(t_excamera)
{
	ck_assert_int_eq(load(WF_DIR "excamera.json"), 0);
	/* Index order: split (entry), then file order. */
	ck_assert_str_eq(wf.fns[0].name, "split");
	ck_assert_str_eq(wf.fns[1].name, "stitch");
	ck_assert_str_eq(wf.fns[2].name, "rebase");
	/* Kahn, lowest ready index first. */
	ck_assert_str_eq(names(wf.topo, wf.nfns),
			 "split,encode-0,encode-1,encode-2,encode-3,rebase,stitch");
	ck_assert_str_eq(names(wf.fns[2].prev, wf.fns[2].nprev),
			 "encode-0,encode-1,encode-2,encode-3");
	ck_assert_str_eq(names(wf.fns[1].prev, wf.fns[1].nprev), "split,rebase");
	ck_assert_str_eq(names(wf.sinks, wf.nsinks), "stitch");
	assert_json(ir_workflow_slice_json(&wf, "split"),
		    "{\"workflow\":\"excamera\",\"function\":\"split\",\"entry\":true,"
		    "\"sink\":false,\"join\":false,\"index\":0,\"next\":["
		    "{\"name\":\"encode-0\",\"index\":3,\"join\":false,\"branch\":0,\"inputs\":1},"
		    "{\"name\":\"encode-1\",\"index\":4,\"join\":false,\"branch\":0,\"inputs\":1},"
		    "{\"name\":\"encode-2\",\"index\":5,\"join\":false,\"branch\":0,\"inputs\":1},"
		    "{\"name\":\"encode-3\",\"index\":6,\"join\":false,\"branch\":0,\"inputs\":1},"
		    "{\"name\":\"stitch\",\"index\":1,\"join\":true,\"branch\":0,\"inputs\":2}],"
		    "\"prev\":[]}");
	assert_json(ir_workflow_slice_json(&wf, "rebase"),
		    "{\"workflow\":\"excamera\",\"function\":\"rebase\",\"entry\":false,"
		    "\"sink\":false,\"join\":true,\"index\":2,\"next\":[{\"name\":\"stitch\","
		    "\"index\":1,\"join\":true,"
		    "\"branch\":1,\"inputs\":2}],\"prev\":[\"encode-0\",\"encode-1\","
		    "\"encode-2\",\"encode-3\"]}");
	assert_invariants(&wf);
	assert_round_trip();
}
END_TEST

START_TEST(t_find_and_unknown_slice)
{
	ck_assert_int_eq(load(WF_DIR "small.json"), 0);
	ck_assert_int_eq(ir_workflow_find(&wf, "c"), 2);
	ck_assert_int_eq(ir_workflow_find(&wf, "zz"), -1);
	ck_assert_int_eq(ir_workflow_find(&wf, ""), -1);
	ck_assert_ptr_null(ir_workflow_slice_json(&wf, "zz"));
}
END_TEST

START_TEST(t_free_twice)
{
	ck_assert_int_eq(load(WF_DIR "small.json"), 0);
	ir_workflow_free(&wf);
	ir_workflow_free(&wf);
	struct ir_workflow zero;
	memset(&zero, 0, sizeof(zero));
	ck_assert_mem_eq(&wf, &zero, sizeof(wf));
	ir_workflow_free(NULL);
}
END_TEST

/* ---- validation: one rule per row, the message substring asserted ---- */

static const struct rule {
	const char *what, *json, *msg;
} rules[] = {
    {"invalid JSON", "{\"dag\": [[\"a\"]}", "workflow.json: line 1, column 15: invalid JSON near"},
    {"invalid JSON, line and column", "{\n  \"dag\": [[\"a\"]],\n  x\n}",
     "workflow.json: line 3, column 4: invalid JSON near \"\\x0a}\""},
    {"invalid JSON at end", "{\"dag\": [[\"a\"]]", "invalid JSON at end of input"},
    {"trailing garbage", "{\"dag\": [[\"a\"]]} x", "line 1, column 18: invalid JSON near \"x\""},
    {"top level not an object", "[[\"a\"]]", "workflow.json: top level must be an object"},
    {"top level a string", "\"a\"", "workflow.json: top level must be an object"},
    {"unknown key", "{\"dags\": [[\"a\"]]}",
     "workflow.json: unknown key \"dags\" (want name, dag, functions, entry)"},
    {"key twice", "{\"dag\": [[\"a\"]], \"dag\": [[\"b\"]]}", "key \"dag\" listed twice"},
    {"empty file", "", "workflow.json: empty file"},
    {"blank file", " \n\t\r\n", "workflow.json: empty file"},
    {"\\u0000", "{\"dag\": [[\"a\\u0000b\"]]}",
     "line 1, column 13: \\u0000 in a string (not allowed"},
    {"nesting", "{\"dag\": [[[[[[[[[[[[[[[[\"a\"]]]]]]]]]]]]]]]]}",
     "line 1, column 24: nested deeper than 16 levels"},
    {"name not a string", "{\"name\": 5, \"dag\": [[\"a\"]]}", "\"name\" must be a string"},
    {"workflow name rule", "{\"name\": \"Fin_ra\", \"dag\": [[\"a\"]]}",
     "workflow.json: workflow name \"Fin_ra\": name has \"F\" at position 1"},
    {"both forms", "{\"dag\": [[\"a\"]], \"functions\": {\"a\": {}}}",
     "workflow \"workflow\": both \"dag\" and \"functions\": use one form"},
    {"neither form", "{\"name\": \"x\"}", "workflow \"x\": no \"dag\" or \"functions\""},
    {"entry with dag", "{\"dag\": [[\"a\"]], \"entry\": [\"a\"]}",
     "\"entry\" goes with \"functions\"; with \"dag\" the entry is stage 0"},
    {"dag not an array", "{\"dag\": {\"a\": 1}}", "\"dag\" must be an array of stages"},
    {"dag empty", "{\"dag\": []}", "no entry function (\"dag\" has no stages)"},
    {"stage not an array", "{\"dag\": [[\"a\"], \"b\"]}",
     "\"dag\" stage 1 must be an array of function names"},
    {"stage empty", "{\"dag\": [[\"a\"], [\"b\"], []]}", "\"dag\" stage 2 is empty"},
    {"stage item not a string", "{\"dag\": [[\"a\", 7]]}",
     "\"dag\" stage 0 item 1 must be a string (a function name)"},
    {"twice in one stage", "{\"dag\": [[\"a\"], [\"b\", \"c\", \"b\"]]}",
     "function \"b\" listed twice (stage 1)"},
    {"twice across stages", "{\"dag\": [[\"a\"], [\"b\"], [\"a\"]]}",
     "function \"a\" listed twice (stages 0 and 2)"},
    {"name empty", "{\"dag\": [[\"\"]]}", "function \"\": name is empty"},
    {"name too long",
     "{\"dag\": [[\"a123456789a123456789a123456789a123456789a123456789a123456789abcd\"]]}",
     "name is 64 characters, over the 63 of a Kubernetes DNS label"},
    {"name upper case", "{\"dag\": [[\"Abc\"]]}",
     "function \"Abc\": name has \"A\" at position 1: a Kubernetes DNS label"},
    {"name underscore", "{\"dag\": [[\"a_b\"]]}", "function \"a_b\": name has \"_\" at position 2"},
    {"name dot", "{\"dag\": [[\"a.b\"]]}", "function \"a.b\": name has \".\" at position 2"},
    {"name non-ASCII", "{\"dag\": [[\"caf\xc3\xa9\"]]}",
     "function \"caf\\xc3\\xa9\": name has \"\\xc3\" at position 4"},
    {"name control byte", "{\"functions\": {\"a\\tb\": {}}, \"entry\": [\"a\"]}",
     "function \"a\\x09b\": name has \"\\x09\" at position 2"},
    {"name leading dash", "{\"dag\": [[\"-a\"]]}",
     "function \"-a\": name must start and end with a letter or digit"},
    {"name trailing dash", "{\"dag\": [[\"a-\"]]}",
     "function \"a-\": name must start and end with a letter or digit"},
    {"functions not an object", "{\"functions\": [\"a\"], \"entry\": [\"a\"]}",
     "\"functions\" must be an object"},
    {"functions empty", "{\"functions\": {}, \"entry\": [\"a\"]}", "\"functions\" is empty"},
    {"function twice", "{\"functions\": {\"x\": {}, \"y\": {}, \"x\": {}}, \"entry\": [\"x\"]}",
     "function \"x\" listed twice in \"functions\""},
    {"function not an object", "{\"functions\": {\"a\": [\"b\"]}, \"entry\": [\"a\"]}",
     "function \"a\" must be an object, e.g. {\"next\": [\"b\"]}"},
    {"function unknown key", "{\"functions\": {\"a\": {\"nxt\": []}}, \"entry\": [\"a\"]}",
     "function \"a\": unknown key \"nxt\" (want next)"},
    {"function next twice",
     "{\"functions\": {\"a\": {\"next\": [], \"next\": []}}, \"entry\": [\"a\"]}",
     "function \"a\": key \"next\" listed twice"},
    {"next not an array",
     "{\"functions\": {\"a\": {\"next\": \"b\"}, \"b\": {}}, \"entry\": [\"a\"]}",
     "\"next\" of \"a\" must be an array of strings"},
    {"next item not a string",
     "{\"functions\": {\"a\": {\"next\": [\"b\", null]}, \"b\": {}}, \"entry\": [\"a\"]}",
     "\"next\" of \"a\" must be an array of strings"},
    {"successor unknown",
     "{\"name\": \"finra\", \"functions\": {\"a\": {\"next\": [\"b\"]}, \"b\": {\"next\": "
     "[\"zz\"]}}, \"entry\": [\"a\"]}",
     "workflow \"finra\": function \"b\": successor \"zz\" is not a function"},
    {"successor twice",
     "{\"functions\": {\"a\": {\"next\": [\"b\", \"b\"]}, \"b\": {}}, \"entry\": [\"a\"]}",
     "function \"a\": successor \"b\" listed twice"},
    {"entry missing", "{\"functions\": {\"a\": {}}}", "\"entry\" is missing"},
    {"entry not strings", "{\"functions\": {\"a\": {}}, \"entry\": \"a\"}",
     "\"entry\" must be an array of strings"},
    {"entry empty", "{\"functions\": {\"a\": {}}, \"entry\": []}",
     "no entry function (\"entry\" is empty)"},
    {"entry unknown", "{\"functions\": {\"a\": {}}, \"entry\": [\"a\", \"q\"]}",
     "entry \"q\" is not a function"},
    {"entry twice", "{\"functions\": {\"a\": {}}, \"entry\": [\"a\", \"a\"]}",
     "entry \"a\" listed twice"},
    {"cycle",
     "{\"functions\": {\"x\": {\"next\": [\"a\"]}, \"a\": {\"next\": [\"b\"]}, \"b\": "
     "{\"next\": [\"c\"]}, \"c\": {\"next\": [\"a\"]}}, \"entry\": [\"x\"]}",
     "workflow \"workflow\": cycle: a -> b -> c -> a"},
    {"cycle, printed from its first function",
     "{\"functions\": {\"x\": {\"next\": [\"c\"]}, \"a\": {\"next\": [\"b\"]}, \"b\": "
     "{\"next\": [\"c\"]}, \"c\": {\"next\": [\"a\"]}}, \"entry\": [\"x\"]}",
     "cycle: a -> b -> c -> a"},
    {"self-loop",
     "{\"functions\": {\"x\": {\"next\": [\"a\"]}, \"a\": {\"next\": [\"a\"]}}, "
     "\"entry\": [\"x\"]}",
     "cycle: a -> a"},
    {"self-loop on an entry", "{\"functions\": {\"a\": {\"next\": [\"a\"]}}, \"entry\": [\"a\"]}",
     "cycle: a -> a"},
    {"entry with a predecessor",
     "{\"functions\": {\"a\": {}, \"b\": {\"next\": [\"a\"]}}, \"entry\": [\"a\", \"b\"]}",
     "function \"a\" is both an entry and a successor of \"b\""},
    {"unreachable",
     "{\"functions\": {\"a\": {\"next\": [\"b\"]}, \"b\": {}, \"c\": {\"next\": [\"b\"]}}, "
     "\"entry\": [\"a\"]}",
     "function \"c\" is not reachable from an entry"},
    {"unreachable cycle is a cycle",
     "{\"functions\": {\"a\": {}, \"c\": {\"next\": [\"d\"]}, \"d\": {\"next\": [\"c\"]}}, "
     "\"entry\": [\"a\"]}",
     "cycle: c -> d -> c"},
};

START_TEST(t_rule)
{
	const struct rule *r = &rules[_i];
	int rc = parse(r->json);
	ck_assert_msg(rc == -EINVAL, "%s: parse returned %d (want -EINVAL)", r->what, rc);
	ck_assert_msg(strstr(err, r->msg) != NULL, "%s: message \"%s\" lacks \"%s\"", r->what, err,
		      r->msg);
	struct ir_workflow zero;
	memset(&zero, 0, sizeof(zero));
	ck_assert_msg(!memcmp(&wf, &zero, sizeof(wf)), "%s: wf not zeroed", r->what);
}
END_TEST

START_TEST(t_exact_message)
{
	ck_assert_int_eq(parse("{\"name\": \"finra\", \"functions\": {\"a\": {\"next\": [\"b\"]}, "
			       "\"b\": {\"next\": [\"zz\"]}}, \"entry\": [\"a\"]}"),
			 -EINVAL);
	ck_assert_str_eq(err,
			 "workflow \"finra\": function \"b\": successor \"zz\" is not a function");
	ck_assert_int_eq(parse("{\"functions\": {\"x\": {\"next\": [\"a\"]}, \"a\": {\"next\": "
			       "[\"b\"]}, \"b\": {\"next\": [\"c\"]}, \"c\": {\"next\": [\"a\"]}}, "
			       "\"entry\": [\"x\"]}"),
			 -EINVAL);
	ck_assert_str_eq(err, "workflow \"workflow\": cycle: a -> b -> c -> a");
	ck_assert_int_eq(parse("{\"dags\": []}"), -EINVAL);
	ck_assert_str_eq(err,
			 "workflow.json: unknown key \"dags\" (want name, dag, functions, entry)");
}
END_TEST

START_TEST(t_valid_name_limits)
{
	/* 63 characters, digits, inner dashes, a one-character name. */
	ck_assert_int_eq(
	    parse(
		"{\"dag\": [[\"a23456789a123456789a123456789a123456789a123456789a123456789abcd\"], "
		"[\"0\"], [\"a--9\"]]}"),
	    0);
	ck_assert_uint_eq(strlen(wf.fns[0].name), 63);
}
END_TEST

START_TEST(t_default_name_rule)
{
	const char *j = "{\"dag\": [[\"a\"]]}";
	ck_assert_int_eq(ir_workflow_parse(j, strlen(j), "Bad_Name", &wf, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err,
			 "workflow.json: no \"name\", and the default name \"Bad_Name\": name "
			 "has \"B\" at position 1: a Kubernetes DNS label (an OpenFaaS function "
			 "name) has only a-z, 0-9 and '-'");
}
END_TEST

START_TEST(t_nul_byte)
{
	const char j[] = "{\"dag\": [[\"a\"]]}\0";
	ck_assert_int_eq(ir_workflow_parse(j, sizeof(j) - 1, NULL, &wf, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "workflow.json: line 1, column 17: NUL byte (not allowed in "
			      "workflow.json)");
}
END_TEST

START_TEST(t_not_nul_terminated)
{
	/* The length bounds the input: no read past it. */
	char *j = malloc(16);
	memcpy(j, "{\"dag\":[[\"a\"]]}x", 16);
	ck_assert_int_eq(ir_workflow_parse(j, 15, NULL, &wf, err, sizeof(err)), 0);
	free(j);
}
END_TEST

START_TEST(t_bom)
{
	ck_assert_int_eq(parse("\xef\xbb\xbf{\"dag\": [[\"a\"]]}"), 0);
}
END_TEST

START_TEST(t_depth_limit)
{
	/* 16 levels pass the depth check (and then fail as "not an object"). */
	char j[64];
	memset(j, 0, sizeof(j));
	memset(j, '[', 16);
	memset(j + 16, ']', 16);
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err, "workflow.json: top level must be an object");
	memset(j, 0, sizeof(j));
	memset(j, '[', 17);
	memset(j + 17, ']', 17);
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err, "workflow.json: line 1, column 17: nested deeper than 16 levels (the "
			      "limit for workflow.json)");
	/* Brackets inside strings do not count. */
	ck_assert_int_eq(parse("{\"dag\": [[\"a\"]], \"name\": \"[[[[[[[[[[[[[[[[[[[[\"}"),
			 -EINVAL);
	ck_assert_ptr_null(strstr(err, "nested"));
	ck_assert_ptr_nonnull(strstr(err, "workflow name"));
	/* Very deep input is refused before cJSON recurses into it. */
	size_t n = 100000;
	char *deep = malloc(2 * n + 1);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	ck_assert_int_eq(parse(deep), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "nested deeper than 16 levels"));
	free(deep);
}
END_TEST

START_TEST(t_too_large)
{
	size_t n = IR_WF_MAX_BYTES + 1;
	char *j = malloc(n);
	memset(j, ' ', n);
	ck_assert_int_eq(ir_workflow_parse(j, n, NULL, &wf, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "workflow.json: larger than 1 MiB (1048577 bytes)");
	free(j);
}
END_TEST

/* @form 0: {"dag": [["root"], ["f0", ..., "f<n-1>"]]}; @form 1: n
 * functions "f0".."f<n-1>" without edges, entry f0.  Malloc'ed. */
static char *gen(size_t n, int form)
{
	size_t cap = 64 + n * 32;
	char *j = malloc(cap), *p = j;
	if (form == 0) {
		p += sprintf(p, "{\"dag\": [[\"root\"], [");
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "%s\"f%zu\"", i ? ", " : "", i);
		p += sprintf(p, "]]}");
	} else {
		p += sprintf(p, "{\"functions\": {");
		for (size_t i = 0; i < n; i++)
			p += sprintf(p, "%s\"f%zu\": {}", i ? ", " : "", i);
		p += sprintf(p, "}, \"entry\": [\"f0\"]}");
	}
	return j;
}

START_TEST(t_too_many_functions)
{
	char *j = gen(1024, 0); /* 1025 with root */
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err, "workflow \"workflow\": more than 1024 functions (1025)");
	free(j);
	j = gen(1025, 1);
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err, "workflow \"workflow\": more than 1024 functions (1025)");
	free(j);
	/* 1024 is fine (f1..f1023 unreachable: that rule, not the count). */
	j = gen(1024, 1);
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err,
			 "workflow \"workflow\": function \"f1\" is not reachable from an entry");
	free(j);
}
END_TEST

START_TEST(t_too_many_successors)
{
	char *j = gen(257, 0);
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err,
			 "workflow \"workflow\": function \"root\" has 257 successors (at most "
			 "256): \"dag\" stage 1 has 257 functions");
	free(j);
	j = gen(256, 0);
	ck_assert_int_eq(parse(j), 0);
	ck_assert_uint_eq(wf.fns[0].nnext, 256);
	ir_workflow_free(&wf);
	free(j);
	/* Explicit: root -> f0..f256. */
	char *p = j = malloc(64 * 1024);
	p += sprintf(p, "{\"functions\": {\"root\": {\"next\": [");
	for (int i = 0; i < 257; i++)
		p += sprintf(p, "%s\"f%d\"", i ? ", " : "", i);
	p += sprintf(p, "]}");
	for (int i = 0; i < 257; i++)
		p += sprintf(p, ", \"f%d\": {}", i);
	sprintf(p, "}, \"entry\": [\"root\"]}");
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_str_eq(err,
			 "workflow \"workflow\": function \"root\" has 257 successors (at most "
			 "256)");
	free(j);
}
END_TEST

START_TEST(t_long_name_in_message)
{
	/* A huge bad name is cut in the message, which stays readable. */
	char *j = malloc(20000);
	char *p = j + sprintf(j, "{\"dag\": [[\"");
	memset(p, 'A', 10000);
	strcpy(p + 10000, "\"]]}");
	ck_assert_int_eq(parse(j), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "AAAA...\": name is 10000 characters"));
	free(j);
	/* A small err buffer is always NUL-terminated, a NULL one is allowed. */
	char small[8];
	const char *bad = "{\"dags\": 1}";
	ck_assert_int_eq(ir_workflow_parse(bad, strlen(bad), NULL, &wf, small, sizeof(small)),
			 -EINVAL);
	ck_assert_str_eq(small, "workflo");
	ck_assert_int_eq(ir_workflow_parse(bad, strlen(bad), NULL, &wf, NULL, 0), -EINVAL);
}
END_TEST

/* ---- files ---- */

static char tmpdir[64];

static void tmp_setup(void)
{
	strcpy(tmpdir, "/tmp/iroute-wf-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	ck_assert_int_eq(system(cmd), 0);
	ir_workflow_free(&wf);
}

static const char *write_file(const char *name, const char *data, size_t len)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

START_TEST(t_load_base_name)
{
	const char *j = "{\"dag\": [[\"a\"], [\"b\"]]}";
	ck_assert_int_eq(load(write_file("my-flow.json", j, strlen(j))), 0);
	ck_assert_str_eq(wf.name, "my-flow");
	ir_workflow_free(&wf);
	ck_assert_int_eq(load(write_file("other", j, strlen(j))), 0);
	ck_assert_str_eq(wf.name, "other");
	ir_workflow_free(&wf);
	const char *path = write_file("My_Flow.json", j, strlen(j));
	ck_assert_int_eq(load(path), -EINVAL);
	char want[512];
	snprintf(want, sizeof(want),
		 "%s: no \"name\", and the default name \"My_Flow\" (the file's base name): name "
		 "has \"M\" at position 1",
		 path);
	ck_assert_msg(!strncmp(err, want, strlen(want)), "%s", err);
}
END_TEST

START_TEST(t_load_errors_start_with_path)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/missing.json", tmpdir);
	ck_assert_int_eq(load(path), -ENOENT);
	char want[512];
	snprintf(want, sizeof(want), "%s: open(): No such file or directory", path);
	ck_assert_str_eq(err, want);

	ck_assert_int_eq(load(tmpdir), -EISDIR);
	snprintf(want, sizeof(want), "%s: is a directory (want workflow.json)", tmpdir);
	ck_assert_str_eq(err, want);

	const char *p = write_file("empty.json", "", 0);
	ck_assert_int_eq(load(p), -EINVAL);
	snprintf(want, sizeof(want), "%s: empty file (want a JSON object)", p);
	ck_assert_str_eq(err, want);

	const char *j = "{\"name\": \"x\", \"dag\": [[\"a\"], []]}";
	p = write_file("x.json", j, strlen(j));
	ck_assert_int_eq(load(p), -EINVAL);
	snprintf(want, sizeof(want), "%s: workflow \"x\": \"dag\" stage 1 is empty", p);
	ck_assert_str_eq(err, want);

	j = "{\"dag\": [[\"a\"],\n [\"b\",]]}";
	p = write_file("bad.json", j, strlen(j));
	ck_assert_int_eq(load(p), -EINVAL);
	snprintf(want, sizeof(want), "%s: line 2, column 7: invalid JSON near \"]]}\"", p);
	ck_assert_str_eq(err, want);

	size_t n = IR_WF_MAX_BYTES + 1;
	char *big = malloc(n);
	memset(big, ' ', n);
	p = write_file("big.json", big, n);
	free(big);
	ck_assert_int_eq(load(p), -EINVAL);
	snprintf(want, sizeof(want), "%s: larger than 1 MiB (more than 1048576 bytes)", p);
	ck_assert_str_eq(err, want);

	/* Exactly 1 MiB of a valid file (padded with spaces) loads. */
	big = malloc(IR_WF_MAX_BYTES);
	memset(big, ' ', IR_WF_MAX_BYTES);
	memcpy(big, "{\"dag\": [[\"a\"]]}", 16);
	p = write_file("max.json", big, IR_WF_MAX_BYTES);
	free(big);
	ck_assert_int_eq(load(p), 0);
}
END_TEST

START_TEST(t_load_cycle_fixture)
{
	ck_assert_int_eq(load(WF_DIR "cycle.json"), -EINVAL);
	ck_assert_str_eq(err, WF_DIR "cycle.json: workflow \"loop\": cycle: a -> b -> c -> a");
}
END_TEST

/* ---- robustness ---- */

/* Every byte of @file set to each of a few values, and every prefix:
 * parse returns 0 (then the result is a consistent workflow that
 * round-trips) or -EINVAL with a message; never anything else. */
static void mutate_file(const char *file)
{
	static const unsigned char vals[] = {0x00, 0x01, '"', '\\', '[',  ']', '{',
					     '}',  ',',	 ':', 'a',  'Z',  '-', ' ',
					     '\n', 'u',	 '0', 0x7f, 0xc3, 0xff};
	size_t len;
	char *orig = read_all(file, &len);
	char *buf = malloc(len + 1);
	size_t ok = 0, bad = 0;
	for (size_t pos = 0; pos < len; pos++) {
		for (size_t v = 0; v <= sizeof(vals); v++) {
			memcpy(buf, orig, len);
			/* The last "value" flips one bit of the original. */
			buf[pos] = v < sizeof(vals) ? (char)vals[v] : (char)(orig[pos] ^ 0x20);
			err[0] = 'x';
			int r = ir_workflow_parse(buf, len, NULL, &wf, err, sizeof(err));
			if (r == 0) {
				ok++;
				assert_invariants(&wf);
				assert_round_trip();
				ir_workflow_free(&wf);
			} else {
				bad++;
				ck_assert_msg(r == -EINVAL, "byte %zu = 0x%02x: %d", pos,
					      (unsigned char)buf[pos], r);
				ck_assert_msg(err[0] && strcmp(err, "x"), "byte %zu: no message",
					      pos);
			}
		}
	}
	for (size_t n = 0; n < len; n++) {
		memcpy(buf, orig, n);
		int r = ir_workflow_parse(buf, n, NULL, &wf, err, sizeof(err));
		ck_assert(r == 0 || (r == -EINVAL && err[0]));
		ir_workflow_free(&wf);
	}
	ck_assert_uint_gt(ok, 0);
	ck_assert_uint_gt(bad, 0);
	free(buf);
	free(orig);
}

START_TEST(t_mutate_explicit)
{
	mutate_file(WF_DIR "small.json");
}
END_TEST

START_TEST(t_mutate_stages)
{
	mutate_file(WF_DIR "small-stages.json");
}
END_TEST

START_TEST(t_mutate_finra)
{
	mutate_file(WF_DIR "finra.json");
}
END_TEST

Suite *workflow_suite(void)
{
	Suite *s = suite_create("workflow");
	TCase *tc = tcase_create("forms");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, t_stage_form);
	tcase_add_test(tc, t_stage_form_every_to_every);
	tcase_add_test(tc, t_explicit_form);
	tcase_add_test(tc, t_default_name);
	tcase_add_test(tc, t_both_forms_same_json);
	tcase_add_test(tc, t_find_and_unknown_slice);
	tcase_add_test(tc, t_free_twice);
	suite_add_tcase(s, tc);

	tc = tcase_create("project");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, t_social_network);
	tcase_add_test(tc, t_finra);
	tcase_add_test(tc, t_excamera);
	suite_add_tcase(s, tc);

	tc = tcase_create("validation");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_loop_test(tc, t_rule, 0, (int)(sizeof(rules) / sizeof(rules[0])));
	tcase_add_test(tc, t_exact_message);
	tcase_add_test(tc, t_valid_name_limits);
	tcase_add_test(tc, t_default_name_rule);
	tcase_add_test(tc, t_nul_byte);
	tcase_add_test(tc, t_not_nul_terminated);
	tcase_add_test(tc, t_bom);
	tcase_add_test(tc, t_depth_limit);
	tcase_add_test(tc, t_too_large);
	tcase_add_test(tc, t_too_many_functions);
	tcase_add_test(tc, t_too_many_successors);
	tcase_add_test(tc, t_long_name_in_message);
	suite_add_tcase(s, tc);

	tc = tcase_create("files");
	tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
	tcase_add_test(tc, t_load_base_name);
	tcase_add_test(tc, t_load_errors_start_with_path);
	tcase_add_test(tc, t_load_cycle_fixture);
	suite_add_tcase(s, tc);

	tc = tcase_create("robustness");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, t_mutate_explicit);
	tcase_add_test(tc, t_mutate_stages);
	tcase_add_test(tc, t_mutate_finra);
	suite_add_tcase(s, tc);
	return s;
}
