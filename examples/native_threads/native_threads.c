/* Native threads calling into Shoal through the C API (include/shoal/shoal_c.h).
 *
 *   native_threads [THREADS] [ITEMS_PER_THREAD]
 *
 * Raw pthreads - threads Shoal has never seen - search Collatz chains in native code and
 * report into a group's shared isolate: a registered callback keeps the best chain in
 * shared fields (an integer and a string, the string allocated on the heap by whichever
 * native thread found it), another adds up progress; one of the threads also asks for
 * full collections now and then. Each C call attaches the calling thread for its
 * duration and detaches it again, so the threads simply exit when they are done.
 * Errors come back as status codes with a message: the program provokes one (an unknown
 * callback id) and checks it. At the end the fields are checked against a sequential
 * recomputation; "native_threads: ok" and exit status 0 when everything agrees.
 *
 * One rule of the C API shows here: a callback runs attached to the heap, so it must not
 * block - a thread waiting on a pthread mutex inside a callback would hold up every
 * collection, and the thread holding the mutex may be the one waiting for that
 * collection. The workers take the mutex that orders the fields' read-modify-write
 * sequences *before* shoal_call, while they are not attached. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shoal/shoal_c.h"

typedef struct {
  shoal_group* group;
  shoal_field* best_length;
  shoal_field* best_start;
  shoal_field* best_text;
  shoal_field* done;
  pthread_mutex_t lock; /* the fields' read-modify-write sequences; taken outside calls */
  uint32_t offer_id, progress_id;
  int64_t items;
} shared_state;

typedef struct {
  shared_state* state;
  int index;
  int status;
} worker_arg;

static int64_t collatz_length(int64_t n) {
  int64_t steps = 0;
  while (n != 1) {
    n = (n % 2) ? 3 * n + 1 : n / 2;
    ++steps;
  }
  return steps;
}

/* Callback: args = {start, length}; keeps the longest chain (smallest start on ties).
 * The caller holds s->lock. */
static int offer(void* user_data, const int64_t* args, size_t nargs, int64_t* result, shoal_error* error) {
  shared_state* s = (shared_state*)user_data;
  if (nargs != 2) return shoal_set_error(error, SHOAL_ERR_INVALID_ARGUMENT, "offer takes (start, length)");
  int rc = SHOAL_OK;
  int64_t best = 0, best_start = 0;
  rc = shoal_field_get_int(s->best_length, &best, error);
  if (rc == SHOAL_OK) rc = shoal_field_get_int(s->best_start, &best_start, error);
  if (rc == SHOAL_OK && (args[1] > best || (args[1] == best && args[0] < best_start))) {
    char text[96];
    int n = snprintf(text, sizeof text, "%" PRId64 " takes %" PRId64 " steps", args[0], args[1]);
    rc = shoal_field_set_int(s->best_length, args[1], error);
    if (rc == SHOAL_OK) rc = shoal_field_set_int(s->best_start, args[0], error);
    if (rc == SHOAL_OK) rc = shoal_field_set_string(s->best_text, text, (size_t)n, error); /* a heap String */
  }
  *result = args[1];
  return rc;
}

/* Callback: args = {count}; adds to the "done" field. The caller holds s->lock. */
static int progress(void* user_data, const int64_t* args, size_t nargs, int64_t* result, shoal_error* error) {
  shared_state* s = (shared_state*)user_data;
  if (nargs != 1) return shoal_set_error(error, SHOAL_ERR_INVALID_ARGUMENT, "progress takes (count)");
  int64_t done = 0;
  int rc = shoal_field_get_int(s->done, &done, error);
  if (rc == SHOAL_OK) rc = shoal_field_set_int(s->done, done + args[0], error);
  *result = done + args[0];
  return rc;
}

/* shoal_call with s->lock held: the thread waits for the mutex unattached. */
static int locked_call(shared_state* s, uint32_t id, const int64_t* args, size_t n, shoal_error* err) {
  int64_t r;
  pthread_mutex_lock(&s->lock);
  const int rc = shoal_call(s->group, id, args, n, &r, err);
  pthread_mutex_unlock(&s->lock);
  return rc;
}

static void* worker(void* p) {
  worker_arg* a = (worker_arg*)p;
  shared_state* s = a->state;
  shoal_error err;
  int64_t local_best = -1, pending = 0;
  const int64_t first = 1 + (int64_t)a->index * s->items;
  for (int64_t n = first; n < first + s->items; ++n) {
    const int64_t length = collatz_length(n); /* native work: no heap, no attachment */
    if (length > local_best) {
      local_best = length;
      const int64_t args[2] = {n, length};
      if ((a->status = locked_call(s, s->offer_id, args, 2, &err)) != SHOAL_OK) goto failed;
    }
    if (++pending == 250) {
      if ((a->status = locked_call(s, s->progress_id, &pending, 1, &err)) != SHOAL_OK) goto failed;
      pending = 0;
    }
    if (a->index == 0 && n % 1000 == 0 && (a->status = shoal_collect(s->group, &err)) != SHOAL_OK) goto failed;
  }
  if (pending) {
    if ((a->status = locked_call(s, s->progress_id, &pending, 1, &err)) != SHOAL_OK) goto failed;
  }
  return NULL;
failed:
  fprintf(stderr, "thread %d: %s: %s\n", a->index, shoal_status_name(err.code), err.message);
  return NULL;
}

#define CHECK(call)                                                                          \
  do {                                                                                       \
    if ((call) != SHOAL_OK) {                                                                \
      fprintf(stderr, "native_threads: %s failed: %s: %s\n", #call, shoal_status_name(err.code), err.message); \
      return 1;                                                                              \
    }                                                                                        \
  } while (0)

int main(int argc, char** argv) {
  const int threads = argc > 1 ? atoi(argv[1]) : 4;
  const int64_t items = argc > 2 ? atoll(argv[2]) : 20000;
  if (threads < 1 || threads > 256 || items < 1) return 2;
  shoal_error err;
  shared_state s;
  memset(&s, 0, sizeof s);
  pthread_mutex_init(&s.lock, NULL);
  s.items = items;
  CHECK(shoal_group_create(NULL, &s.group, &err));
  CHECK(shoal_field_create(s.group, "best_length", &s.best_length, &err));
  CHECK(shoal_field_create(s.group, "best_start", &s.best_start, &err));
  CHECK(shoal_field_create(s.group, "best_text", &s.best_text, &err));
  CHECK(shoal_field_create(s.group, "done", &s.done, &err));
  CHECK(shoal_field_set_int(s.best_length, -1, &err));  /* below any chain: the first offer wins */
  CHECK(shoal_field_set_int(s.best_start, 0, &err));
  CHECK(shoal_field_set_int(s.done, 0, &err));
  CHECK(shoal_register_callback(s.group, "offer", offer, &s, &s.offer_id, &err));
  CHECK(shoal_register_callback(s.group, "progress", progress, &s, &s.progress_id, &err));

  /* Misuse is a status code and a message, never a crash. */
  int64_t r;
  const int rc = shoal_call(s.group, 12345, NULL, 0, &r, &err);
  if (rc != SHOAL_ERR_INVALID_ARGUMENT) {
    fprintf(stderr, "native_threads: an unknown callback id gave %s\n", shoal_status_name(rc));
    return 1;
  }
  printf("an unknown callback id: %s (%s)\n", shoal_status_name(rc), err.message);

  pthread_t tids[256];
  worker_arg args[256];
  int started = 0, failed = 0;
  for (int t = 0; t < threads; ++t) {
    args[t].state = &s;
    args[t].index = t;
    args[t].status = SHOAL_OK;
    if (pthread_create(&tids[t], NULL, worker, &args[t]) != 0) {
      fprintf(stderr, "native_threads: pthread_create failed\n");
      failed = 1;
      break;
    }
    ++started;
  }
  for (int t = 0; t < started; ++t) {  /* the started ones use s: wait for them */
    pthread_join(tids[t], NULL);
    failed |= args[t].status != SHOAL_OK;
  }

  /* The answer, sequentially. */
  int64_t want_length = -1, want_start = 0;
  for (int64_t n = 1; n <= (int64_t)threads * items; ++n) {
    const int64_t l = collatz_length(n);
    if (l > want_length) want_length = l, want_start = n;
  }
  int64_t got_length, got_start, done;
  char text[96];
  CHECK(shoal_field_get_int(s.best_length, &got_length, &err));
  CHECK(shoal_field_get_int(s.best_start, &got_start, &err));
  CHECK(shoal_field_get_int(s.done, &done, &err));
  CHECK(shoal_field_get_string(s.best_text, text, sizeof text, NULL, &err));
  CHECK(shoal_collect(s.group, &err));
  printf("%d native threads, %" PRId64 " numbers: the longest chain: %s\n", threads, done, text);
  const int ok = !failed && got_length == want_length && got_start == want_start && done == (int64_t)threads * items;
  shoal_field_destroy(s.best_length);
  shoal_field_destroy(s.best_start);
  shoal_field_destroy(s.best_text);
  shoal_field_destroy(s.done);
  CHECK(shoal_group_destroy(s.group, &err));
  pthread_mutex_destroy(&s.lock);
  printf("native_threads: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
