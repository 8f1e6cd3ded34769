// The C API's error mapping for C++ callbacks: exceptions become codes with messages,
// the shared isolate's rules hold inside callbacks, and the calling thread's own state
// is restored afterwards.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>

#include "runtime/isolate_context.h"
#include "shoal/shoal_c.h"
#include "tests/test_support.h"

namespace shoal::test {
namespace {

struct Context {
  IsolatedGlobal* global = nullptr;
  Persistent<Node>* isolate_object = nullptr;
};

TEST(CApiErrorsTest, CallbackExceptionsAndIsolationBecomeCodes) {
  shoal_group* g = nullptr;
  shoal_error err;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  IsolateGroup& group = group_of(g);
  Isolate& a = group.create_isolate("a");
  IsolatedGlobal global(group, "secret");
  Persistent<Node> isolate_object;
  {
    IsolateScope s(a);
    isolate_object = Persistent<Node>(group.heap(), make<Node>());
  }
  Context ctx{&global, &isolate_object};
  uint32_t throws_id, global_id, write_id, shared_id;
  auto throws = [](void*, const int64_t*, size_t, int64_t*, shoal_error*) -> int { throw std::runtime_error("boom"); };
  auto reads_global = [](void* c, const int64_t*, size_t, int64_t*, shoal_error*) -> int {
    (void)static_cast<Context*>(c)->global->get();
    return SHOAL_OK;
  };
  auto writes_isolated = [](void* c, const int64_t*, size_t, int64_t*, shoal_error*) -> int {
    static_cast<Context*>(c)->isolate_object->get().set(&Node::left, make<Node>());
    return SHOAL_OK;
  };
  auto checks_shared = [](void*, const int64_t*, size_t, int64_t* result, shoal_error*) -> int {
    *result = in_shared_isolate() ? 1 : 0;
    return SHOAL_OK;
  };
  ASSERT_EQ(shoal_register_callback(g, "throws", throws, &ctx, &throws_id, &err), SHOAL_OK);
  ASSERT_EQ(shoal_register_callback(g, "global", reads_global, &ctx, &global_id, &err), SHOAL_OK);
  ASSERT_EQ(shoal_register_callback(g, "write", writes_isolated, &ctx, &write_id, &err), SHOAL_OK);
  ASSERT_EQ(shoal_register_callback(g, "shared", checks_shared, &ctx, &shared_id, &err), SHOAL_OK);

  EXPECT_EQ(shoal_call(g, throws_id, nullptr, 0, nullptr, &err), SHOAL_ERR_CALLBACK);
  EXPECT_NE(std::string(err.message).find("boom"), std::string::npos) << err.message;
  EXPECT_EQ(shoal_call(g, global_id, nullptr, 0, nullptr, &err), SHOAL_ERR_ISOLATION);
  EXPECT_NE(std::string(err.message).find("'secret'"), std::string::npos) << err.message;
  EXPECT_EQ(shoal_call(g, write_id, nullptr, 0, nullptr, &err), SHOAL_ERR_ISOLATION);
  int64_t r = 0;
  EXPECT_EQ(shoal_call(g, shared_id, nullptr, 0, &r, &err), SHOAL_OK);
  EXPECT_EQ(r, 1);
  EXPECT_EQ(current_heap(), nullptr);  // detached again after each call

  // From a thread inside an isolate of the group: runs in the shared isolate, and the
  // thread is back in its isolate afterwards.
  {
    IsolateScope s(a);
    EXPECT_EQ(shoal_call(g, shared_id, nullptr, 0, &r, &err), SHOAL_OK);
    EXPECT_EQ(r, 1);
    EXPECT_EQ(current_isolate(), &a);
    EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_ERR_BUSY);
  }
  // From a thread attached to another heap: a thread-state error, not a crash.
  std::thread([&] {
    Heap other;
    MutatorScope m(other);
    shoal_error e;
    EXPECT_EQ(shoal_call(g, shared_id, nullptr, 0, nullptr, &e), SHOAL_ERR_THREAD_STATE);
  }).join();
  isolate_object.reset();
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

// shoal_set_soft_heap_limit: from an unattached thread, from inside a callback (attached,
// in the shared isolate), and a NULL group as a code.
TEST(CApiErrorsTest, SoftHeapLimitFromAnyThreadAndInsideACallback) {
  shoal_group* g = nullptr;
  shoal_error err;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  const Heap& heap = group_of(g).heap();
  EXPECT_EQ(heap.soft_heap_limit(), 0u);
  ASSERT_EQ(shoal_set_soft_heap_limit(g, size_t{64} << 20, &err), SHOAL_OK);
  EXPECT_EQ(heap.soft_heap_limit(), size_t{64} << 20);
  uint32_t id;
  auto sets_limit = [](void* group, const int64_t*, size_t, int64_t*, shoal_error* e) -> int {
    return shoal_set_soft_heap_limit(static_cast<shoal_group*>(group), size_t{32} << 20, e);
  };
  ASSERT_EQ(shoal_register_callback(g, "soft", sets_limit, g, &id, &err), SHOAL_OK);
  std::thread([&] {
    shoal_error e;
    EXPECT_EQ(shoal_call(g, id, nullptr, 0, nullptr, &e), SHOAL_OK) << e.message;
  }).join();
  EXPECT_EQ(heap.soft_heap_limit(), size_t{32} << 20);
  EXPECT_EQ(shoal_set_soft_heap_limit(nullptr, 0, &err), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

// shoal_release_free_memory: from an unattached thread and inside a callback; the
// byte count matches the heap's; a NULL group is a code, a NULL count is allowed.
TEST(CApiErrorsTest, ReleaseFreeMemoryFromAnyThreadAndInsideACallback) {
  shoal_group* g = nullptr;
  shoal_error err;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  const Heap& heap = group_of(g).heap();
  uint32_t id;
  auto churns = [](void*, const int64_t*, size_t, int64_t*, shoal_error*) -> int {
    for (int i = 0; i < 40000; ++i) (void)RefArray::create(30);  // ~10 MiB of garbage
    return SHOAL_OK;
  };
  auto releases = [](void* group, const int64_t*, size_t, int64_t* out, shoal_error* e) -> int {
    size_t bytes = 0;
    const int rc = shoal_release_free_memory(static_cast<shoal_group*>(group), &bytes, e);
    *out = static_cast<int64_t>(bytes);
    return rc;
  };
  uint32_t release_id;
  ASSERT_EQ(shoal_register_callback(g, "churn", churns, nullptr, &id, &err), SHOAL_OK);
  ASSERT_EQ(shoal_register_callback(g, "release", releases, g, &release_id, &err), SHOAL_OK);
  for (const bool in_callback : {false, true}) {
    std::thread([&] {
      shoal_error e;
      int64_t ignored = 0;
      ASSERT_EQ(shoal_call(g, id, nullptr, 0, &ignored, &e), SHOAL_OK) << e.message;
      ASSERT_EQ(shoal_collect(g, &e), SHOAL_OK) << e.message;
      const uint64_t before = heap.stats().bytes_released;
      size_t bytes = 0;
      if (in_callback) {
        int64_t out = 0;
        ASSERT_EQ(shoal_call(g, release_id, nullptr, 0, &out, &e), SHOAL_OK) << e.message;
        bytes = static_cast<size_t>(out);
      } else {
        ASSERT_EQ(shoal_release_free_memory(g, &bytes, &e), SHOAL_OK) << e.message;
      }
      EXPECT_GT(bytes, 0u) << in_callback;
      EXPECT_EQ(heap.stats().bytes_released - before, bytes) << in_callback;
    }).join();
  }
  EXPECT_EQ(shoal_release_free_memory(g, nullptr, &err), SHOAL_OK);
  EXPECT_EQ(shoal_release_free_memory(nullptr, nullptr, &err), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

}  // namespace
// A field handle may outlive its group: its calls are refused with
// SHOAL_ERR_INVALID_ARGUMENT (they read the freed group before), and destroying it
// later is fine - as is destroying a field before its group.
TEST(CApiErrorsTest, AFieldOutlivingItsGroupIsRefused) {
  shoal_error err{};
  shoal_group* g = nullptr;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  shoal_field* kept = nullptr;
  shoal_field* dropped = nullptr;
  ASSERT_EQ(shoal_field_create(g, "kept", &kept, &err), SHOAL_OK);
  ASSERT_EQ(shoal_field_create(g, "dropped", &dropped, &err), SHOAL_OK);
  ASSERT_EQ(shoal_field_set_int(kept, 7, &err), SHOAL_OK);
  shoal_field_destroy(dropped);  // before the group: unregistered
  ASSERT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
  int64_t v = 0;
  EXPECT_EQ(shoal_field_get_int(kept, &v, &err), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(err.message).find("destroyed"), std::string::npos) << err.message;
  EXPECT_EQ(shoal_field_set_int(kept, 1, &err), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(shoal_field_set_string(kept, "x", 1, &err), SHOAL_ERR_INVALID_ARGUMENT);
  char buffer[8];
  EXPECT_EQ(shoal_field_get_string(kept, buffer, sizeof buffer, nullptr, &err), SHOAL_ERR_INVALID_ARGUMENT);
  shoal_field_destroy(kept);
}

// shoal_call from a thread barred from the heap - inside run_native, or in a handshake
// operation - is refused as a whole with SHOAL_ERR_THREAD_STATE, also when the callback
// would not touch the heap (docs/sharing.md, "Thread states").
TEST(CApiErrorsTest, CallsFromRunNativeOrAHandshakeAreRefused) {
  shoal_error err{};
  shoal_group* g = nullptr;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  uint32_t id = 0;
  auto five = [](void*, const int64_t*, size_t, int64_t* r, shoal_error*) -> int {
    *r = 5;
    return SHOAL_OK;
  };
  ASSERT_EQ(shoal_register_callback(g, "five", five, nullptr, &id, &err), SHOAL_OK);
  int64_t r = 0;
  {
    MutatorScope attach(group_of(g).heap());
    EXPECT_EQ(shoal_call(g, id, nullptr, 0, &r, &err), SHOAL_OK);  // running: fine
    EXPECT_EQ(r, 5);
    run_native([&] { EXPECT_EQ(shoal_call(g, id, nullptr, 0, &r, &err), SHOAL_ERR_THREAD_STATE) << err.message; });
    handshake_all(group_of(g).heap(),
                  [&](size_t) { EXPECT_EQ(shoal_call(g, id, nullptr, 0, &r, &err), SHOAL_ERR_THREAD_STATE); });
    // (The requester holds the thread registry's lock there: this hung.)
    handshake_all(group_of(g).heap(),
                  [&](size_t) { EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_ERR_THREAD_STATE); });
  }
  EXPECT_EQ(shoal_call(g, id, nullptr, 0, &r, &err), SHOAL_OK);  // unattached: attaches per call
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

namespace {

// Shoal errors without a C code of their own (LockError, RangeError, ...) thrown by a
// C++ callback are the callback's failure, SHOAL_ERR_CALLBACK naming it (they came back
// as SHOAL_ERR_INTERNAL); those with a code keep it.
TEST(CApiErrorsTest, ShoalErrorsWithoutACodeAreCallbackErrors) {
  shoal_error err{};
  shoal_group* g = nullptr;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  uint32_t lock_error = 0, range_error = 0, invalid = 0;
  auto throws_lock = [](void*, const int64_t*, size_t, int64_t*, shoal_error*) -> int { throw LockError("held"); };
  auto throws_range = [](void*, const int64_t*, size_t, int64_t*, shoal_error*) -> int { throw RangeError("far"); };
  auto throws_invalid = [](void*, const int64_t*, size_t, int64_t*, shoal_error*) -> int {
    throw InvalidArgument("bad");
  };
  ASSERT_EQ(shoal_register_callback(g, "locks", throws_lock, nullptr, &lock_error, &err), SHOAL_OK);
  ASSERT_EQ(shoal_register_callback(g, "ranges", throws_range, nullptr, &range_error, &err), SHOAL_OK);
  ASSERT_EQ(shoal_register_callback(g, "invalid", throws_invalid, nullptr, &invalid, &err), SHOAL_OK);
  EXPECT_EQ(shoal_call(g, lock_error, nullptr, 0, nullptr, &err), SHOAL_ERR_CALLBACK);
  EXPECT_NE(std::string(err.message).find("callback 'locks' threw: held"), std::string::npos) << err.message;
  EXPECT_EQ(shoal_call(g, range_error, nullptr, 0, nullptr, &err), SHOAL_ERR_CALLBACK);
  EXPECT_NE(std::string(err.message).find("'ranges'"), std::string::npos) << err.message;
  EXPECT_EQ(shoal_call(g, invalid, nullptr, 0, nullptr, &err), SHOAL_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

// pthread_exit inside a callback on a DETACHED thread: the forced unwinding goes through
// (it was taken for an ordinary exception there and swallowed: "FATAL: exception not
// rethrown", abort), the thread leaves nothing behind, and the group can be destroyed.
TEST(CApiErrorsTest, PthreadExitInACallbackOnADetachedThread) {
  shoal_error err{};
  shoal_group* g = nullptr;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  static std::atomic<int> entered{0};
  entered = 0;
  uint32_t id = 0;
  auto exits = [](void*, const int64_t*, size_t, int64_t*, shoal_error*) -> int {
    entered.fetch_add(1);
    pthread_exit(nullptr);
  };
  ASSERT_EQ(shoal_register_callback(g, "exits", exits, nullptr, &id, &err), SHOAL_OK);
  struct Arg {
    shoal_group* g;
    uint32_t id;
  } arg{g, id};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void* p) -> void* {
                  auto* a = static_cast<Arg*>(p);
                  shoal_error e{};
                  (void)shoal_call(a->g, a->id, nullptr, 0, nullptr, &e);
                  return nullptr;
                },
                &arg),
            0);
  pthread_attr_destroy(&attr);
  // The thread is gone once its call is no longer in flight: destroy returns OK then.
  int code = SHOAL_ERR_BUSY;
  for (int i = 0; i < 2000 && code == SHOAL_ERR_BUSY; ++i) {
    if (entered.load() != 0) code = shoal_group_destroy(g, &err);
    if (code == SHOAL_ERR_BUSY) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(code, SHOAL_OK) << err.message;
  EXPECT_EQ(entered.load(), 1);
}

// A heap_limit no heap can reserve (SIZE_MAX overflowed to one page; 2^62 spent minutes
// zeroing a side table) is an invalid argument.
TEST(CApiErrorsTest, AnImpossibleHeapLimitIsAnInvalidArgument) {
  for (size_t limit : {SIZE_MAX, size_t{1} << 62, kMaxHeapLimit + 1}) {
    shoal_group_options o{};
    o.heap_limit = limit;
    shoal_group* g = nullptr;
    shoal_error err{};
    EXPECT_EQ(shoal_group_create(&o, &g, &err), SHOAL_ERR_INVALID_ARGUMENT) << limit;
    EXPECT_NE(std::string(err.message).find("heap_limit"), std::string::npos) << err.message;
    EXPECT_EQ(g, nullptr);
  }
}

// Fields made and dropped on a long-lived group are forgotten by it (each left a
// registration - and, through it, its whole state block - behind: 275 bytes a field).
// shoal_group_destroy from a thread attached (and running) on the group's heap while
// another thread collects: BUSY every time. Counting the attached threads took the
// thread registry's lock, which a pause holds while it waits for the running threads -
// this one among them, blocked on that lock: both waited for ever, within a second.
TEST(CApiErrorsTest, DestroyRefusedByAnAttachedThreadWhileCollectionsRun) {
  shoal_error err{};
  shoal_group* g = nullptr;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  Heap& heap = group_of(g).heap();
  std::atomic<bool> stop{false};
  std::atomic<int> collections{0};
  std::thread collector([&] {
    MutatorScope m(heap);
    while (!stop.load()) {
      heap.collect();
      collections++;
    }
  });
  {
    MutatorScope m(heap);
    for (int i = 0; i < 20000 || collections.load() < 20; ++i) {
      safepoint();  // (builds without asynchronous preemption: TSan)
      shoal_error e{};
      const int rc = shoal_group_destroy(g, &e);
      if (rc != SHOAL_ERR_BUSY) {
        ADD_FAILURE() << "shoal_group_destroy: " << rc;
        break;
      }
    }
  }
  stop = true;
  collector.join();
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

TEST(CApiErrorsTest, DroppedFieldsAreForgottenByTheirGroup) {
  shoal_error err{};
  shoal_group* g = nullptr;
  ASSERT_EQ(shoal_group_create(nullptr, &g, &err), SHOAL_OK);
  // Unattached, as a native thread calls in: each call attaches and detaches (cheap
  // since a thread's stack bounds are read once; before, each attach of the main thread
  // parsed /proc/self/maps and under qemu-user 10,000 iterations passed the timeout).
  for (int i = 0; i < 2000; ++i) {
    shoal_field* f = nullptr;
    ASSERT_EQ(shoal_field_create(g, "f", &f, &err), SHOAL_OK);
    ASSERT_EQ(shoal_field_set_int(f, i, &err), SHOAL_OK);
    shoal_field_destroy(f);
  }
  EXPECT_LT(group_of(g).impl().registered_fields(), 64u);
  EXPECT_EQ(shoal_group_destroy(g, &err), SHOAL_OK);
}

}  // namespace
}  // namespace shoal::test
