// The C API (include/shoal/shoal_c.h): a thin layer that turns every call into "attach,
// enter the group's shared isolate, run, leave, detach" (SharedIsolateScope does all
// of it, and nests when the thread is already attached) and every exception into a
// status code and message. Forced unwinding (pthread_exit, pthread_cancel inside a
// callback: a foreign exception, with no C++ type) is let through, so the scopes' destructors detach the exiting thread.
#include "shoal/internal/mutator.h"
#include "shoal/internal/preemption.h"
#include "shoal/shoal_c.h"

#include <cxxabi.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "gc/preempt_safe_lock.h"
#include "gc/thread_registry.h"
#include "heap/heap_impl.h"
#include "runtime/isolate_context.h"
#include "shoal/builtins.h"
#include "shoal/errors.h"
#include "shoal/isolate.h"
#include "shoal/ports.h"

struct shoal_group {
  explicit shoal_group(shoal::IsolateGroupOptions o) : group(std::move(o)) {}
  shoal::IsolateGroup group;
  struct Callback {
    std::string name;
    shoal_callback_fn fn;
    void* user_data;
  };
  std::mutex mu;
  std::vector<Callback> callbacks;  // guarded by mu; index = id
  std::unordered_set<shoal_field*> fields;  // guarded by mu: told when the group goes
  std::atomic<int> in_flight{0};    // C calls under way
};

struct shoal_field {
  shoal_group* group;  // null once the group is destroyed (its calls: INVALID_ARGUMENT)
  shoal::SharedField field;
};

namespace {

int fill(shoal_error* error, int code, const char* message) {
  if (error) {
    error->code = code;
    std::snprintf(error->message, sizeof(error->message), "%s", message ? message : "");
  }
  return code;
}

// The status code of a Shoal error: its own, or SHOAL_ERR_INTERNAL for those the C API
// has no code for (a callback's are SHOAL_ERR_CALLBACK: invoke_callback).
int status_code_of(const shoal::Error& e) {
  if (dynamic_cast<const shoal::OutOfMemory*>(&e)) return SHOAL_ERR_OUT_OF_MEMORY;
  if (dynamic_cast<const shoal::IsolationError*>(&e)) return SHOAL_ERR_ISOLATION;
  if (dynamic_cast<const shoal::InvalidMutabilityError*>(&e)) return SHOAL_ERR_INVALID_MUTABILITY;
  if (dynamic_cast<const shoal::NotShareableError*>(&e)) return SHOAL_ERR_NOT_SHAREABLE;
  if (dynamic_cast<const shoal::IncorrectDereferenceError*>(&e)) return SHOAL_ERR_INCORRECT_DEREFERENCE;
  if (dynamic_cast<const shoal::ThreadStateError*>(&e) || dynamic_cast<const shoal::NotAttached*>(&e))
    return SHOAL_ERR_THREAD_STATE;
  if (dynamic_cast<const shoal::InvalidArgument*>(&e)) return SHOAL_ERR_INVALID_ARGUMENT;
  return SHOAL_ERR_INTERNAL;
}

// Runs f() and maps what it throws to a status code.
template <class F>
int guarded(shoal_error* error, F&& f) {
  try {
    const int code = f();
    if (code == SHOAL_OK) fill(error, SHOAL_OK, "");
    return code;
  } catch (abi::__forced_unwind&) {
    // glibc's forced unwinding (pthread_exit, pthread_cancel) must go on: the scopes'
    // destructors detach the exiting thread. (Not __cxa_current_exception_type() ==
    // nullptr: for this foreign exception libstdc++ reads a type from memory in front of
    // glibc's unwind header, which is not zero on a detached thread.)
    throw;
  } catch (const shoal::Error& e) {
    return fill(error, status_code_of(e), e.what());
  } catch (const std::exception& e) {
    return fill(error, SHOAL_ERR_INTERNAL, e.what());
  } catch (...) {
    return fill(error, SHOAL_ERR_INTERNAL, "an unknown exception");
  }
}

// Runs a callback; false (with `code` and `error` filled) when it threw something that
// becomes SHOAL_ERR_CALLBACK. A Shoal error with a code of its own, and glibc's forced
// unwinding, go on to guarded().
// (catch (abi::__forced_unwind&): UBSan's null check is off for this file, CMakeLists.txt.)
bool invoke_callback(const shoal_group::Callback& cb, const int64_t* args, size_t nargs, int64_t* out,
                     shoal_error* error, int& code) {
  try {
    code = cb.fn(cb.user_data, args, nargs, out, error);
    return true;
  } catch (abi::__forced_unwind&) {
    throw;  // pthread_exit / pthread_cancel in the callback (see guarded)
  } catch (const shoal::Error& e) {
    // Any other (LockError, RangeError, CancelledError, ...) is the callback's failure.
    if (status_code_of(e) != SHOAL_ERR_INTERNAL) throw;
    code = fill(error, SHOAL_ERR_CALLBACK, (std::string("callback '") + cb.name + "' threw: " + e.what()).c_str());
  } catch (const std::exception& e) {
    code = fill(error, SHOAL_ERR_CALLBACK, (std::string("callback '") + cb.name + "' threw: " + e.what()).c_str());
  } catch (...) {
    code = fill(error, SHOAL_ERR_CALLBACK, (std::string("callback '") + cb.name + "' threw").c_str());
  }
  return false;
}

// Counts a call in flight for shoal_group_destroy.
class InFlight {
 public:
  explicit InFlight(shoal_group* g) : g_(g) { g_->in_flight.fetch_add(1, std::memory_order_acq_rel); }
  ~InFlight() { g_->in_flight.fetch_sub(1, std::memory_order_acq_rel); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  shoal_group* g_;
};

// A field whose group was destroyed: every call on it is refused.
int field_gone(shoal_error* error, const char* what) {
  return fill(error, SHOAL_ERR_INVALID_ARGUMENT, (std::string(what) + ": the field's group has been destroyed").c_str());
}

}  // namespace

namespace shoal {
IsolateGroup& group_of(shoal_group* group) { return group->group; }
}  // namespace shoal

extern "C" {

const char* shoal_status_name(int code) {
  switch (code) {
    case SHOAL_OK: return "SHOAL_OK";
    case SHOAL_ERR_INVALID_ARGUMENT: return "SHOAL_ERR_INVALID_ARGUMENT";
    case SHOAL_ERR_OUT_OF_MEMORY: return "SHOAL_ERR_OUT_OF_MEMORY";
    case SHOAL_ERR_THREAD_STATE: return "SHOAL_ERR_THREAD_STATE";
    case SHOAL_ERR_ISOLATION: return "SHOAL_ERR_ISOLATION";
    case SHOAL_ERR_INVALID_MUTABILITY: return "SHOAL_ERR_INVALID_MUTABILITY";
    case SHOAL_ERR_NOT_SHAREABLE: return "SHOAL_ERR_NOT_SHAREABLE";
    case SHOAL_ERR_INCORRECT_DEREFERENCE: return "SHOAL_ERR_INCORRECT_DEREFERENCE";
    case SHOAL_ERR_CALLBACK: return "SHOAL_ERR_CALLBACK";
    case SHOAL_ERR_BUSY: return "SHOAL_ERR_BUSY";
    case SHOAL_ERR_INTERNAL: return "SHOAL_ERR_INTERNAL";
    default: return "SHOAL_ERR_UNKNOWN";
  }
}

int shoal_set_error(shoal_error* error, int code, const char* message) { return fill(error, code, message); }

int shoal_group_create(const shoal_group_options* options, shoal_group** out, shoal_error* error) {
  if (!out) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_group_create: out is NULL");
  *out = nullptr;
  return guarded(error, [&]() -> int {
    shoal::IsolateGroupOptions o;
    o.name = "c-api";
    if (options) {
      o.heap.heap_limit = options->heap_limit;
      o.share_everything = options->share_everything != 0;
      o.checked_reads = options->checked_reads != 0;
    }
    *out = new shoal_group(std::move(o));
    return SHOAL_OK;
  });
}

int shoal_group_destroy(shoal_group* group, shoal_error* error) {
  if (!group) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_group_destroy: group is NULL");
  // Inside a handshake operation (its requester waits for it, holding its heap's thread
  // registry): refused, as shoal_call is there.
  if (shoal::internal::in_handshake_op())
    return fill(error, SHOAL_ERR_THREAD_STATE, "shoal_group_destroy: called inside a handshake operation");
  return guarded(error, [&]() -> int {
    if (group->in_flight.load(std::memory_order_acquire) != 0 ||
        group->group.impl().threads_inside.load(std::memory_order_acquire) != 0 ||
        group->group.heap().impl().threads.count() != 0)
      return fill(error, SHOAL_ERR_BUSY, "shoal_group_destroy: calls are in flight or threads are attached");
    {
      shoal::internal::PreemptSafeLock lock(group->mu);
      for (shoal_field* f : group->fields) f->group = nullptr;  // (their handles outlive it)
    }
    delete group;
    return SHOAL_OK;
  });
}

int shoal_register_callback(shoal_group* group, const char* name, shoal_callback_fn fn, void* user_data,
                            uint32_t* id_out, shoal_error* error) {
  if (!group || !fn || !id_out)
    return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_register_callback: group, fn and id_out are required");
  return guarded(error, [&]() -> int {
    shoal::internal::PreemptSafeLock lock(group->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    group->callbacks.push_back({name ? name : "", fn, user_data});
    *id_out = static_cast<uint32_t>(group->callbacks.size() - 1);
    return SHOAL_OK;
  });
}

int shoal_call(shoal_group* group, uint32_t id, const int64_t* args, size_t nargs, int64_t* result,
               shoal_error* error) {
  if (!group) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_call: group is NULL");
  if (nargs != 0 && !args) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_call: args is NULL");
  // Attached but barred from the heap (inside run_native or a handshake operation): the
  // callback could not touch the heap, so the call is refused as a whole (docs/sharing.md,
  // "Thread states") - not only when the callback happens to touch it.
  if (const shoal::internal::MutatorState* m = shoal::internal::current_mutator();
      m && (m->native_depth | m->no_heap_depth) != 0)
    return fill(error, SHOAL_ERR_THREAD_STATE,
                "shoal_call: the calling thread is inside run_native or a handshake operation; call from outside it");
  InFlight counted(group);
  shoal_group::Callback cb;
  {
    shoal::internal::PreemptSafeLock lock(group->mu);  // (a no-preempt region: gc/preempt_safe_lock.h)
    if (id >= group->callbacks.size())
      return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_call: no callback with that id");
    cb = group->callbacks[id];
  }
  return guarded(error, [&]() -> int {
    shoal::SharedIsolateScope shared(group->group);
    int64_t out = 0;
    int code;
    if (!invoke_callback(cb, args, nargs, &out, error, code)) return code;
    if (code != SHOAL_OK) {
      if (error && error->code != code) fill(error, code, ("callback '" + cb.name + "' failed").c_str());
      return code;
    }
    if (result) *result = out;
    return SHOAL_OK;
  });
}

int shoal_collect(shoal_group* group, shoal_error* error) {
  if (!group) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_collect: group is NULL");
  InFlight counted(group);
  return guarded(error, [&]() -> int {
    shoal::MutatorScope attach(group->group.heap());
    group->group.heap().collect();
    return SHOAL_OK;
  });
}

int shoal_set_soft_heap_limit(shoal_group* group, size_t bytes, shoal_error* error) {
  if (!group) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_set_soft_heap_limit: group is NULL");
  InFlight counted(group);
  return guarded(error, [&]() -> int {
    group->group.heap().set_soft_heap_limit(bytes);  // (no attachment needed)
    return SHOAL_OK;
  });
}

int shoal_release_free_memory(shoal_group* group, size_t* released, shoal_error* error) {
  if (!group) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_release_free_memory: group is NULL");
  InFlight counted(group);
  return guarded(error, [&]() -> int {
    const size_t bytes = group->group.heap().release_free_memory();  // (no attachment needed)
    if (released) *released = bytes;
    return SHOAL_OK;
  });
}

int shoal_field_create(shoal_group* group, const char* name, shoal_field** out, shoal_error* error) {
  if (!group || !out) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_create: group and out are required");
  *out = nullptr;
  InFlight counted(group);
  return guarded(error, [&]() -> int {
    std::unique_ptr<shoal_field> field(new shoal_field{group, shoal::SharedField(group->group, name ? name : "")});
    shoal::internal::PreemptSafeLock lock(group->mu);
    group->fields.insert(field.get());
    *out = field.release();
    return SHOAL_OK;
  });
}

void shoal_field_destroy(shoal_field* field) {
  if (!field) return;
  if (shoal_group* g = field->group) {
    shoal::internal::PreemptSafeLock lock(g->mu);
    g->fields.erase(field);
  }
  delete field;
}

int shoal_field_set_int(shoal_field* field, int64_t value, shoal_error* error) {
  if (!field) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_set_int: field is NULL");
  if (!field->group) return field_gone(error, "shoal_field_set_int");
  InFlight counted(field->group);
  return guarded(error, [&]() -> int {
    shoal::SharedIsolateScope shared(field->group->group);
    field->field.set(shoal::Value::from_int(value));
    return SHOAL_OK;
  });
}

int shoal_field_get_int(shoal_field* field, int64_t* out, shoal_error* error) {
  if (!field || !out) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_get_int: field and out are required");
  if (!field->group) return field_gone(error, "shoal_field_get_int");
  InFlight counted(field->group);
  return guarded(error, [&]() -> int {
    shoal::SharedIsolateScope shared(field->group->group);
    const shoal::Value v = field->field.get();
    if (!v.is_int()) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_get_int: the field holds no integer");
    *out = v.as_int();
    return SHOAL_OK;
  });
}

int shoal_field_set_string(shoal_field* field, const char* utf8, size_t length, shoal_error* error) {
  if (!field || (!utf8 && length)) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_set_string: bad arguments");
  if (!field->group) return field_gone(error, "shoal_field_set_string");
  InFlight counted(field->group);
  return guarded(error, [&]() -> int {
    shoal::SharedIsolateScope shared(field->group->group);
    field->field.set(shoal::String::create(std::string_view(utf8 ? utf8 : "", length)).value());
    return SHOAL_OK;
  });
}

int shoal_field_get_string(shoal_field* field, char* buffer, size_t capacity, size_t* length_out,
                           shoal_error* error) {
  if (!field || (!buffer && capacity))
    return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_get_string: bad arguments");
  if (!field->group) return field_gone(error, "shoal_field_get_string");
  InFlight counted(field->group);
  return guarded(error, [&]() -> int {
    shoal::SharedIsolateScope shared(field->group->group);
    shoal::Ref<shoal::String> s = shoal::try_cast<shoal::String>(field->field.get());
    if (!s) return fill(error, SHOAL_ERR_INVALID_ARGUMENT, "shoal_field_get_string: the field holds no string");
    const std::string_view text = s->view();
    if (length_out) *length_out = text.size();
    if (capacity) {
      const size_t n = std::min(text.size(), capacity - 1);
      std::memcpy(buffer, text.data(), n);
      buffer[n] = '\0';
    }
    return SHOAL_OK;
  });
}

}  // extern "C"
