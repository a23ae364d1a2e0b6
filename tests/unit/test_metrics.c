/*
 * Unit tests for src/metrics.c: the counters live in the segment's
 * extension area and are shared by every mapping, the area's layout stamp
 * is checked, the exposition names routes, statuses, histogram buckets,
 * rate-limit classes and database events, and /metrics answers only the
 * clients METRICS_ALLOW names.
 */
#include <check.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "metrics.h"
#include "ratelimit.h"
#include "router.h"
#include "segment.h"
#include "worker.h"

static struct worker w;
static char name[64];

static void setup(void)
{
	char *env[] = {"APP_MODE=DEV", "SECRET_KEY=unit-test-key", "METRICS_ALLOW=127.0.0.1", NULL};
	struct config_problems p = {0};
	char err[SEG_ERR_LEN];

	memset(&w, 0, sizeof w);
	ck_assert_int_eq(config_load(&w.cfg, env, &p), 0);
	snprintf(name, sizeof name, "/chat-test-metrics-%d", (int)getpid());
	seg_unlink(name, err, sizeof err);
	ck_assert_int_eq(rl_open(name, 1024, &w.rl, err, sizeof err), 0);
	ck_assert_msg(metrics_attach(rl_segment(w.rl), &w.metrics, err, sizeof err) == 0, "%s",
	              err);
}

static void teardown(void)
{
	char err[SEG_ERR_LEN];

	rl_close(w.rl);
	seg_unlink(name, err, sizeof err);
	config_free(&w.cfg);
}

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	ck_assert_int_eq(metrics_render(w.metrics, w.rl, &text, &len), 0);
	ck_assert_uint_eq(strlen(text), len);
	return text;
}

START_TEST(counters_are_rendered)
{
	struct rl_table *other;
	struct metrics_shm *m2;
	char err[SEG_ERR_LEN], *text;

	metrics_record(w.metrics, 0, 200, 1500000); /* healthz, 1.5 ms */
	metrics_record(w.metrics, 0, 200, 3000000); /* 3 ms */
	metrics_record(w.metrics, -1, 404, 100000); /* no route */
	metrics_record(w.metrics, 0, 418, 100000);  /* a status we do not list */
	metrics_record(NULL, 0, 200, 1);            /* no segment: ignored */
	/* Another mapping of the same segment adds to the same counters. */
	ck_assert_int_eq(rl_attach(name, &other, err, sizeof err), 0);
	ck_assert_int_eq(metrics_attach(rl_segment(other), &m2, err, sizeof err), 0);
	metrics_add_db(m2, 2, 3, 4);
	metrics_add_db(NULL, 1, 1, 1);
	metrics_add_event(w.metrics, AUDIT_LOGIN_FAILED);
	metrics_add_event(m2, AUDIT_LOGIN_FAILED);
	metrics_add_event(w.metrics, AUDIT_EVENTS); /* out of range: ignored */
	metrics_add_event(NULL, AUDIT_LOGIN_FAILED);
	text = render();
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_requests_total{route=\"healthz\",status=\"200\"} 2\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_requests_total{route=\"healthz\",status=\"other\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(
	    text, "chat_http_request_duration_seconds_bucket{route=\"healthz\",le=\"0.001\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(
	    text,
	    "chat_http_request_duration_seconds_bucket{route=\"healthz\",le=\"0.0025\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(
	    text, "chat_http_request_duration_seconds_bucket{route=\"healthz\",le=\"+Inf\"} 3\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_http_request_duration_seconds_count{route=\"healthz\"} 3\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_rate_limit_rejections_total{class=\"login\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "chat_rate_limit_slots 1024\n"));
	ck_assert_ptr_nonnull(strstr(text, "chat_db_connects_total 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "chat_db_connect_failures_total 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "chat_db_errors_total 4\n"));
	/* Every event type is there, zeros included; one add is one count. */
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_security_events_total{event=\"login_failed\"} 2\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_security_events_total{event=\"metrics_denied\"} 0\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "chat_security_events_total{event=\"config_rejected\"} 0\n"));
	free(text);
	rl_close(other);
}
END_TEST

/* Prometheus buckets are "less than or equal": exactly 1 ms is in le=0.001,
 * one microsecond more is not. */
START_TEST(bucket_bounds_are_inclusive)
{
	char *text;

	metrics_record(w.metrics, 1, 200, 1000000);
	metrics_record(w.metrics, 1, 200, 1001000);
	text = render();
	ck_assert_ptr_nonnull(strstr(
	    text, "chat_http_request_duration_seconds_bucket{route=\"readyz\",le=\"0.001\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(
	    text, "chat_http_request_duration_seconds_bucket{route=\"readyz\",le=\"0.0025\"} 2\n"));
	free(text);
}
END_TEST

START_TEST(another_layout_is_refused)
{
	struct metrics_shm *m;
	char err[SEG_ERR_LEN];

	/* The stamp is the area's first word. */
	atomic_store((_Atomic uint32_t *)seg_extension(rl_segment(w.rl)), 2);
	ck_assert_int_eq(metrics_attach(rl_segment(w.rl), &m, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "layout 2"));
}
END_TEST

static int serve(const char *remote)
{
	struct request req;
	struct response res;
	int status;

	memset(&req, 0, sizeof req);
	req.remote_addr = (char *)remote;
	http_response_init(&res);
	metrics_handler(&w, &req, &res);
	status = res.status;
	if (status == 200)
		ck_assert_ptr_nonnull(strstr(res.text, "chat_rate_limit_slots"));
	http_response_free(&res);
	return status;
}

START_TEST(only_allowed_clients_see_it)
{
	ck_assert_int_eq(serve("127.0.0.1"), 200);
	ck_assert_int_eq(serve("192.0.2.1"), 404);
	ck_assert_int_eq(serve(NULL), 404);
	w.metrics = NULL;
	ck_assert_int_eq(serve("127.0.0.1"), 404);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("shared counters");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, counters_are_rendered);
	tcase_add_test(tc, bucket_bounds_are_inclusive);
	tcase_add_test(tc, another_layout_is_refused);
	tcase_add_test(tc, only_allowed_clients_see_it);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
