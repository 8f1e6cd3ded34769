/* Shoal's C API: isolate groups, native callbacks and shared fields for code that is not
 * C++ - a C program, a native thread pool, another language's FFI (docs/sharing.md,
 * "Native threads").
 *
 * Any thread may call any function here, including threads Shoal has never seen (created
 * with raw pthread_create): each call attaches the thread to the group's heap for its
 * duration, runs in the group's shared isolate - never waiting for a busy isolate - and
 * detaches again, so a thread that exits between calls (or inside a callback, with
 * pthread_exit, or cancelled by pthread_cancel at a cancellation point of the callback's
 * own code) leaves nothing behind. Cancelling a thread while Shoal's own code runs -
 * a deferred cancellation acted on at a cancellation point inside a call, outside the
 * callback - is not supported: disable cancellation around calls
 * (pthread_setcancelstate) if other threads may cancel this one. No C++ exception
 * crosses this interface: every function returns a status code (SHOAL_OK or one of the
 * errors below) and, when `error` is not NULL, fills it with the code and a message.
 *
 *   shoal_group* g;
 *   shoal_group_create(NULL, &g, &err);
 *   uint32_t id;
 *   shoal_register_callback(g, "sum", sum_fn, NULL, &id, &err);
 *   int64_t args[2] = {2, 3}, result;
 *   shoal_call(g, id, args, 2, &result, &err);        // from any thread
 *   shoal_group_destroy(g, &err);
 */
#ifndef SHOAL_SHOAL_C_H_
#define SHOAL_SHOAL_C_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
  SHOAL_OK = 0,
  SHOAL_ERR_INVALID_ARGUMENT = 1,    /* bad argument, unknown callback id, destroyed object */
  SHOAL_ERR_OUT_OF_MEMORY = 2,       /* the heap limit was reached */
  SHOAL_ERR_THREAD_STATE = 3,        /* the call is not allowed in this thread's state */
  SHOAL_ERR_ISOLATION = 4,           /* the shared isolate touched isolated state */
  SHOAL_ERR_INVALID_MUTABILITY = 5,  /* a frozen or deeply immutable object was written */
  SHOAL_ERR_NOT_SHAREABLE = 6,       /* a non-shareable value where only shareable ones go */
  SHOAL_ERR_INCORRECT_DEREFERENCE = 7, /* another isolate's mutable object was touched */
  SHOAL_ERR_CALLBACK = 8,            /* the callback reported an error or threw */
  SHOAL_ERR_BUSY = 9,                /* the group still has threads inside */
  SHOAL_ERR_INTERNAL = 10            /* anything else (a std::exception, std::bad_alloc) */
};

typedef struct shoal_error {
  int code;
  char message[512];
} shoal_error;

typedef struct shoal_group shoal_group;
typedef struct shoal_field shoal_field;

typedef struct shoal_group_options {
  size_t heap_limit;    /* bytes; 0 = physical memory */
  int share_everything; /* non-zero: shared fields take any value */
  int checked_reads;    /* non-zero: reads are ownership-checked too */
} shoal_group_options;

/* A native callback. It runs in the group's shared isolate on the calling thread. It
 * returns SHOAL_OK, or an error code after filling `error` (shoal_set_error); it may
 * call the other functions of this header, which then run inside the same attachment.
 * It runs attached and running, so it must not block (a pthread mutex, a condition, I/O):
 * every collection would wait for it - a deadlock if the thread it waits for is waiting
 * for that collection. Take native locks before shoal_call, not inside the callback. */
typedef int (*shoal_callback_fn)(void* user_data, const int64_t* args, size_t nargs, int64_t* result,
                                 shoal_error* error);

/* The name of a status code ("SHOAL_OK", ...). */
const char* shoal_status_name(int code);
/* For callbacks: fills `error` (if not NULL) and returns `code`. */
int shoal_set_error(shoal_error* error, int code, const char* message);

/* `options` may be NULL (defaults). */
int shoal_group_create(const shoal_group_options* options, shoal_group** out, shoal_error* error);
/* SHOAL_ERR_BUSY (and nothing destroyed) while a call is in flight or a thread is inside
 * one of its isolates; the caller must make sure no new call starts. */
int shoal_group_destroy(shoal_group* group, shoal_error* error);

/* Registers a callback; `id_out` receives its id for shoal_call. Any thread. */
int shoal_register_callback(shoal_group* group, const char* name, shoal_callback_fn fn, void* user_data,
                            uint32_t* id_out, shoal_error* error);
/* Calls a registered callback synchronously on this thread, in the shared isolate.
 * `result` may be NULL. A callback's error code is returned as is; an exception thrown
 * by a C++ callback becomes SHOAL_ERR_CALLBACK (or the matching Shoal error code). */
int shoal_call(shoal_group* group, uint32_t id, const int64_t* args, size_t nargs, int64_t* result,
               shoal_error* error);

/* A full collection (any thread). */
int shoal_collect(shoal_group* group, shoal_error* error);
/* Sets the heap's soft limit, bytes (0 = none): HeapOptions::soft_heap_limit, as Go's
 * GOMEMLIMIT (any thread, also inside a callback). */
int shoal_set_soft_heap_limit(shoal_group* group, size_t bytes, shoal_error* error);
/* Gives the heap's free pages back to the system now (Heap::release_free_memory);
 * `released` (may be NULL) gets the byte count. Any thread, also inside a callback. */
int shoal_release_free_memory(shoal_group* group, size_t* released, shoal_error* error);

/* Shared fields (one copy per group). Values set from C are small integers or strings
 * (both shareable). */
int shoal_field_create(shoal_group* group, const char* name, shoal_field** out, shoal_error* error);
/* Frees the handle. A field may outlive its group: once the group is destroyed its calls
 * return SHOAL_ERR_INVALID_ARGUMENT, and shoal_field_destroy still frees it. */
void shoal_field_destroy(shoal_field* field);
int shoal_field_set_int(shoal_field* field, int64_t value, shoal_error* error);
/* SHOAL_ERR_INVALID_ARGUMENT if the field holds something else than a small integer. */
int shoal_field_get_int(shoal_field* field, int64_t* out, shoal_error* error);
int shoal_field_set_string(shoal_field* field, const char* utf8, size_t length, shoal_error* error);
/* Copies up to `capacity` - 1 bytes and a NUL into `buffer`; `length_out` (may be NULL)
 * gets the full length. SHOAL_ERR_INVALID_ARGUMENT if the field holds no string. */
int shoal_field_get_string(shoal_field* field, char* buffer, size_t capacity, size_t* length_out,
                           shoal_error* error);

#ifdef __cplusplus
}  /* extern "C" */

namespace shoal {
class IsolateGroup;
/* C++ embedders mixing both APIs: the IsolateGroup behind a C handle. */
IsolateGroup& group_of(shoal_group* group);
}  // namespace shoal
#endif

#endif /* SHOAL_SHOAL_C_H_ */
