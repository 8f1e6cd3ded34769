// The mutation and isolation checks' slow paths (fast paths:
// include/shoal/internal/mutation_checks.h).
//
// store_check_slow runs when the holder's header differs from the thread's store key in
// the owner bits or carries an immutability tag, or the thread is not running. In order:
//   0. the thread is not attached, or inside run_native or a handshake operation
//                                                    -> NotAttached / ThreadStateError
//   1. frozen, being frozen or deeply immutable      -> InvalidMutabilityError
//   2. no owner (allocated outside isolates, in the shared isolate or in a
//      share-everything group), or tagged kShared  -> allowed
//   3. owned by an isolate other than the writer's   -> IncorrectDereferenceError from an
//      isolate or from outside isolates, IsolationError from the shared isolate.
// read_check_slow applies 2 and 3 to reads, with every shareable object (and one being
// frozen: it cannot change any more) allowed, and only for threads in a group with
// checked_reads on.
//
// The error is thrown before the store: the holder is unchanged.
#include <string>

#include "gc/thread_registry.h"
#include "runtime/isolate_context.h"
#include "shoal/class_table.h"
#include "shoal/errors.h"
#include "shoal/internal/mutation_checks.h"

namespace shoal::internal {

constinit thread_local uint64_t tls_owner_key = kNotRunningKey;  // not attached yet
std::atomic<uint32_t> g_checked_reads{0};

namespace {
std::string class_name_of(uint64_t header_word) {
  const ClassId id = static_cast<ClassId>(header_word & header::kClassIdMask);
  const ClassInfo* c = find_class(id);
  return c ? c->name : "#" + std::to_string(id);
}

std::string describe_owner(uint32_t owner) {
  if (owner == (uint32_t{1} << header::kOwnerBits) - 1) return "no isolate (a detached graph: attach it first)";
  if (tls_isolate.group) return tls_isolate.group->describe_isolate(owner);
  return "isolate #" + std::to_string(owner);
}

std::string describe_self() {
  switch (tls_isolate.mode) {
    case IsolateMode::kIsolate:
      return "from isolate '" + tls_isolate.isolate->name + "'";
    case IsolateMode::kShared:
      return "from the shared isolate";
    case IsolateMode::kOutside:
      break;
  }
  return "from a thread outside isolates";
}

[[noreturn]] void throw_foreign(const char* what, uint64_t h, const char* access) {
  const std::string msg = std::string(what) + ": " + access + " an object of class " + class_name_of(h) +
                          " owned by " + describe_owner(header::owner_of(h)) + " " + describe_self() +
                          "; only its own isolate may touch a mutable object (freeze it to share it, "
                          "or send it through a port to copy or transfer it)";
  if (tls_isolate.mode == IsolateMode::kShared) throw IsolationError(msg);
  throw IncorrectDereferenceError(msg);
}
}  // namespace

void store_check_slow(const Object* holder, uint64_t h, const char* what) {
  (void)holder;
  // Not a running thread: NotAttached or ThreadStateError (kNotRunningKey).
  if (tls_owner_key & kNotRunningKey) require_running_thread(what);
  if (h & header::kImmutableMask) {
    const char* state = (h & header::kDeeplyImmutable) ? "deeply immutable"
                        : (h & header::kFrozen)        ? "frozen"
                                                       : "being frozen";
    throw InvalidMutabilityError(std::string(what) + ": the object (class " + class_name_of(h) + ") is " + state +
                                 "; frozen and deeply immutable objects never change (copy it to get a mutable one)");
  }
  const uint32_t owner = header::owner_of(h);
  if (owner == 0 || (h & header::kShared)) return;
  if (tls_isolate.mode == IsolateMode::kIsolate && tls_isolate.isolate->id == owner &&
      !tls_isolate.group->options.share_everything)
    return;
  throw_foreign(what, h, "write to");
}

void read_check_slow(const Object* object, uint64_t h) {
  (void)object;
  if (!tls_isolate.group || !tls_isolate.group->options.checked_reads) return;
  const uint32_t owner = header::owner_of(h);
  if (owner == 0 || (h & (header::kShareableMask | header::kShared | header::kFreezing))) return;
  if (tls_isolate.mode == IsolateMode::kIsolate && tls_isolate.isolate->id == owner) return;
  throw_foreign("read", h, "read of");
}

}  // namespace shoal::internal
