/* The C API from plain C11 and raw pthreads (threads Shoal has never seen): callbacks
 * called concurrently while another thread collects, errors as codes, a thread that
 * exits inside a callback (pthread_exit), and destroy refusing while a call is in
 * flight. Exit status 0 on success; failures print what and where. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/shoal_c.h"

static int failures = 0;
#define CHECK(cond)                                                    \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                      \
    }                                                                  \
  } while (0)

static shoal_group* group;
static shoal_field* counter_field;
static uint32_t sum_id, fail_id, exit_id, block_id, string_id;
static atomic_int stop_collector;
static atomic_int blocked_inside, release_block;

static int sum_fn(void* user, const int64_t* args, size_t n, int64_t* result, shoal_error* err) {
  (void)user;
  int64_t s = 0;
  for (size_t i = 0; i < n; ++i) s += args[i];
  *result = s;
  /* Nested calls run inside the same attachment. */
  return shoal_field_set_int(counter_field, s, err);
}

static int fail_fn(void* user, const int64_t* args, size_t n, int64_t* result, shoal_error* err) {
  (void)user, (void)args, (void)n, (void)result;
  return shoal_set_error(err, SHOAL_ERR_CALLBACK, "fail_fn says no");
}

static int exit_fn(void* user, const int64_t* args, size_t n, int64_t* result, shoal_error* err) {
  (void)user, (void)args, (void)n, (void)result, (void)err;
  pthread_exit(NULL); /* leaves the callback - and the heap - by unwinding */
  return SHOAL_OK;
}

static int block_fn(void* user, const int64_t* args, size_t n, int64_t* result, shoal_error* err) {
  (void)user, (void)args, (void)n, (void)result, (void)err;
  atomic_store(&blocked_inside, 1);
  while (!atomic_load(&release_block)) {
  }
  return SHOAL_OK;
}

static int string_fn(void* user, const int64_t* args, size_t n, int64_t* result, shoal_error* err) {
  (void)user, (void)n;
  shoal_field* f = NULL;
  int rc = shoal_field_create(group, "tmp", &f, err);
  if (rc != SHOAL_OK) return rc;
  char text[64];
  snprintf(text, sizeof text, "value-%lld", (long long)args[0]);
  rc = shoal_field_set_string(f, text, strlen(text), err);
  char back[64];
  size_t len = 0;
  if (rc == SHOAL_OK) rc = shoal_field_get_string(f, back, sizeof back, &len, err);
  if (rc == SHOAL_OK && (len != strlen(text) || strcmp(back, text) != 0)) rc = shoal_set_error(err, SHOAL_ERR_CALLBACK, "mismatch");
  shoal_field_destroy(f);
  *result = (int64_t)len;
  return rc;
}

static void* caller(void* arg) {
  const int64_t base = (int64_t)(intptr_t)arg;
  for (int64_t i = 0; i < 2000; ++i) {
    int64_t args[3] = {base, i, 1}, result = -1;
    shoal_error err;
    int rc = shoal_call(group, sum_id, args, 3, &result, &err);
    CHECK(rc == SHOAL_OK);
    CHECK(result == base + i + 1);
    if (i % 50 == 0) {
      rc = shoal_call(group, string_id, args, 1, &result, &err);
      CHECK(rc == SHOAL_OK);
    }
    if (i % 500 == 0) {
      rc = shoal_call(group, fail_id, NULL, 0, NULL, &err);
      CHECK(rc == SHOAL_ERR_CALLBACK);
      CHECK(err.code == SHOAL_ERR_CALLBACK && strcmp(err.message, "fail_fn says no") == 0);
    }
  }
  return NULL;
}

static void* collector(void* arg) {
  (void)arg;
  while (!atomic_load(&stop_collector)) {
    shoal_error err;
    CHECK(shoal_collect(group, &err) == SHOAL_OK);
  }
  return NULL;
}

static void* exiter(void* arg) {
  (void)arg;
  shoal_error err;
  shoal_call(group, exit_id, NULL, 0, NULL, &err);
  CHECK(0 && "pthread_exit returned");
  return NULL;
}

static void* blocker(void* arg) {
  (void)arg;
  shoal_error err;
  CHECK(shoal_call(group, block_id, NULL, 0, NULL, &err) == SHOAL_OK);
  return NULL;
}

int main(void) {
  shoal_error err;
  CHECK(shoal_group_create(NULL, &group, &err) == SHOAL_OK);
  CHECK(shoal_field_create(group, "counter", &counter_field, &err) == SHOAL_OK);
  CHECK(shoal_register_callback(group, "sum", sum_fn, NULL, &sum_id, &err) == SHOAL_OK);
  CHECK(shoal_register_callback(group, "fail", fail_fn, NULL, &fail_id, &err) == SHOAL_OK);
  CHECK(shoal_register_callback(group, "exit", exit_fn, NULL, &exit_id, &err) == SHOAL_OK);
  CHECK(shoal_register_callback(group, "block", block_fn, NULL, &block_id, &err) == SHOAL_OK);
  CHECK(shoal_register_callback(group, "string", string_fn, NULL, &string_id, &err) == SHOAL_OK);

  /* Errors as codes. */
  CHECK(shoal_call(group, 999, NULL, 0, NULL, &err) == SHOAL_ERR_INVALID_ARGUMENT);
  CHECK(err.code == SHOAL_ERR_INVALID_ARGUMENT && strlen(err.message) > 0);
  int64_t v = 0;
  CHECK(shoal_field_get_int(counter_field, &v, &err) == SHOAL_ERR_INVALID_ARGUMENT); /* null, not an int */
  CHECK(strcmp(shoal_status_name(SHOAL_ERR_BUSY), "SHOAL_ERR_BUSY") == 0);

  /* Raw pthreads calling in while another collects. */
  pthread_t threads[8], coll;
  pthread_create(&coll, NULL, collector, NULL);
  for (int t = 0; t < 8; ++t) pthread_create(&threads[t], NULL, caller, (void*)(intptr_t)(t * 100000));
  /* Threads that exit inside a callback, concurrently. */
  pthread_t exiters[4];
  for (int t = 0; t < 4; ++t) pthread_create(&exiters[t], NULL, exiter, NULL);
  for (int t = 0; t < 4; ++t) pthread_join(exiters[t], NULL);
  for (int t = 0; t < 8; ++t) pthread_join(threads[t], NULL);
  atomic_store(&stop_collector, 1);
  pthread_join(coll, NULL);
  CHECK(shoal_collect(group, &err) == SHOAL_OK); /* the heap survived the exits */
  CHECK(shoal_set_soft_heap_limit(group, (size_t)256 << 20, &err) == SHOAL_OK);
  CHECK(shoal_release_free_memory(group, NULL, &err) == SHOAL_OK);
  CHECK(shoal_field_get_int(counter_field, &v, &err) == SHOAL_OK);

  /* Destroy refuses while a call is in flight. */
  pthread_t b;
  pthread_create(&b, NULL, blocker, NULL);
  while (!atomic_load(&blocked_inside)) {
  }
  CHECK(shoal_group_destroy(group, &err) == SHOAL_ERR_BUSY);
  atomic_store(&release_block, 1);
  pthread_join(b, NULL);

  shoal_field_destroy(counter_field);
  CHECK(shoal_group_destroy(group, &err) == SHOAL_OK);
  if (failures) {
    fprintf(stderr, "c_api_test: %d failure(s)\n", failures);
    return 1;
  }
  printf("c_api_test: ok\n");
  return 0;
}
