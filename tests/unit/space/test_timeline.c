/* test_timeline.c — the speaker timeline as it is written, and the chapters made of it: one per
 * floor change (pauses and interjections absorbed, overlap kept by whoever held the floor), one
 * per mark, a restart's resume line closing what was open, torn and foreign lines skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>
#include <sys/stat.h>

#include "spacecast/timeline.h"

static json_t *chapters(const char *text, int64_t duration_ms)
{
    json_t *c = sc_timeline_chapters(text, strlen(text), duration_ms, "T", "replay.ogg");
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "version")), "1.2.0");
    return c;
}

static void expect(json_t *c, size_t i, double start, const char *title)
{
    json_t *ch = json_array_get(json_object_get(c, "chapters"), i);
    assert_non_null(ch);
    assert_true(fabs(json_real_value(json_object_get(ch, "startTime")) - start) < 1e-9);
    assert_string_equal(json_string_value(json_object_get(ch, "title")), title);
}

static size_t count(json_t *c) { return json_array_size(json_object_get(c, "chapters")); }

static void test_turns(void **state)
{
    (void)state;
    const char *text = "{\"ms\":500,\"on\":\"alice\"}\n"
                       "{\"ms\":6000,\"off\":\"alice\"}\n"
                       "{\"ms\":6100,\"on\":\"bob\"}\n"
                       "{\"ms\":8000,\"on\":\"alice\"}\n"   /* an interjection while bob talks */
                       "{\"ms\":8500,\"off\":\"alice\"}\n"
                       "{\"ms\":9000,\"off\":\"bob\"}\n"    /* a pause, shorter than the merge gap */
                       "{\"ms\":9800,\"on\":\"bob\"}\n"
                       "{\"ms\":10000,\"mark\":\"Q&A\"}\n"
                       "{\"ms\":14000,\"off\":\"bob\"}\n"
                       "{\"ms\":14200,\"on\":\"carol\"}\n"  /* too short a turn to take the floor */
                       "{\"ms\":15000,\"off\":\"carol\"}\n"
                       "{\"ms\":16000,\"on\":\"alice\"}\n"; /* still talking at the end */
    json_t *c = chapters(text, 20000);
    assert_int_equal(count(c), 4);
    expect(c, 0, 0.0, "alice"); /* the first holder opens the recording */
    expect(c, 1, 6.1, "bob");
    expect(c, 2, 10.0, "Q&A");
    expect(c, 3, 16.0, "alice");
    json_t *ch = json_array_get(json_object_get(c, "chapters"), 1);
    assert_string_equal(json_string_value(json_object_get(ch, "speaker")), "bob");
    assert_true(fabs(json_real_value(json_object_get(ch, "endTime")) - 10.0) < 1e-9);
    ch = json_array_get(json_object_get(c, "chapters"), 3);
    assert_true(fabs(json_real_value(json_object_get(ch, "endTime")) - 20.0) < 1e-9);
    assert_null(json_object_get(json_array_get(json_object_get(c, "chapters"), 2), "speaker"));
    json_decref(c);
}

/* Both talk for a long stretch: the floor stays with whoever had it; the newcomer takes it only
 * when the holder stops, from the start of its own turn. */
static void test_overlap(void **state)
{
    (void)state;
    const char *text = "{\"ms\":0,\"on\":\"a\"}\n{\"ms\":5000,\"on\":\"b\"}\n{\"ms\":20000,\"off\":\"a\"}\n"
                       "{\"ms\":30000,\"off\":\"b\"}\n";
    json_t *c = chapters(text, 30000);
    assert_int_equal(count(c), 2);
    expect(c, 0, 0.0, "a");
    expect(c, 1, 5.0, "b");
    json_decref(c);
}

static void test_resume_and_junk(void **state)
{
    (void)state;
    const char *text = "{\"ms\":0,\"on\":\"a\"}\n"
                       "garbage\n"
                       "{\"ms\":\"x\",\"on\":\"zed\"}\n"
                       "{\"ms\":4000,\"resume\":true}\n"  /* a restart: a was cut off at 4 s */
                       "{\"ms\":4100,\"on\":\"b\"}\n"
                       "{\"ms\":9000,\"off\":\"b\"}\n"
                       "{\"ms\":9500,\"on\":\"a\""; /* torn by a crash: skipped */
    json_t *c = chapters(text, 12000);
    assert_int_equal(count(c), 2);
    expect(c, 0, 0.0, "a");
    expect(c, 1, 4.1, "b");
    json_decref(c);
    c = chapters("", 5000); /* nobody spoke */
    assert_int_equal(count(c), 0);
    json_decref(c);
    c = chapters("{\"ms\":100,\"on\":\"a\"}\n{\"ms\":900,\"off\":\"a\"}\n", 5000); /* only short turns */
    assert_int_equal(count(c), 1);
    expect(c, 0, 0.0, "a");
    json_decref(c);
}

/* What sc_timeline_* write reads back as the chapters of what happened. */
static void test_write_read(void **state)
{
    (void)state;
    char dir[] = "/tmp/sc-timeline-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char rec[600], path[700];
    snprintf(rec, sizeof rec, "%s/recordings", dir);
    assert_int_equal(mkdir(rec, 0755), 0);
    sc_timeline_t *t = sc_timeline_open(dir, "sp");
    assert_non_null(t);
    const char *a[] = { "alice" }, *b[] = { "bob" }, *ab[] = { "alice", "bob" };
    sc_timeline_speaking(t, 200, a, 1);
    sc_timeline_speaking(t, 400, a, 1); /* no change: no line */
    sc_timeline_speaking(t, 5000, ab, 2);
    sc_timeline_speaking(t, 5400, b, 1);
    assert_int_equal(sc_timeline_mark(t, 7000, "Break \"news\"\n"), 0);
    sc_timeline_close(t, 12000);
    t = sc_timeline_open(dir, "sp"); /* a restart: continues, with a resume line first */
    sc_timeline_speaking(t, 12500, a, 1);
    sc_timeline_close(t, 20000);
    sc_timeline_path(dir, "sp", path, sizeof path);
    FILE *f = fopen(path, "r");
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"resume\":true"));
    json_t *c = sc_timeline_chapters(text, n, 20000, "T", NULL);
    assert_int_equal(count(c), 4);
    expect(c, 0, 0.0, "alice");
    expect(c, 1, 5.0, "bob");
    expect(c, 2, 7.0, "Break \"news\"\n");
    expect(c, 3, 12.5, "alice");
    json_decref(c);
    unlink(path);
    rmdir(rec);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_turns),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_resume_and_junk),
        cmocka_unit_test(test_write_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
