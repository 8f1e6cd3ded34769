// Every public Heap call from every thread state the docs allow (include/shoal/heap.h):
// attached and running, never attached, inside run_native, in a handshake callback (run
// on the requesting thread, and for another thread that keeps entering and leaving
// run_native - run by that thread itself or by the requester on its behalf), in a
// finalizer callback on an attached and on an unattached thread, and on a running
// thread while a concurrent cycle marks. Each call either does its work or throws the
// typed error its documentation names - never a crash, a hang or a silent no-op - and
// the heap verifies afterwards.
//
// The table: calls documented "from any thread" succeed everywhere; calls that need
// "the calling thread attached" succeed on a running thread of the heap (a finalizer run
// by an attached thread included, and while a cycle marks) and throw NotAttached on a
// thread that never attached or ThreadStateError where the thread may not touch the heap
// (run_native, handshake callbacks); calls that store a raw reference throw
// ThreadStateError on any thread that is not running on the heap.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using std::chrono::milliseconds;

enum class Outcome { kNotRun, kOk, kNotAttached, kThreadState, kOtherError };

const char* name(Outcome o) {
  switch (o) {
    case Outcome::kNotRun: return "not run";
    case Outcome::kOk: return "ok";
    case Outcome::kNotAttached: return "NotAttached";
    case Outcome::kThreadState: return "ThreadStateError";
    case Outcome::kOtherError: return "another error";
  }
  return "?";
}

Outcome classify(const std::function<void()>& call) {
  try {
    call();
    return Outcome::kOk;
  } catch (const NotAttached&) {
    return Outcome::kNotAttached;
  } catch (const ThreadStateError&) {
    return Outcome::kThreadState;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected error: " << e.what();
    return Outcome::kOtherError;
  }
}

enum class State {
  kRunning,
  kUnattached,
  kNative,
  kHandshakeOnRequester,
  kHandshakeForAThreadLeavingNative,
  kFinalizerOnAttachedThread,
  kFinalizerOnUnattachedThread,
  kWhileMarking,
};

const char* name(State s) {
  switch (s) {
    case State::kRunning: return "running";
    case State::kUnattached: return "unattached";
    case State::kNative: return "run_native";
    case State::kHandshakeOnRequester: return "handshake callback on the requester";
    case State::kHandshakeForAThreadLeavingNative: return "handshake callback for a thread leaving run_native";
    case State::kFinalizerOnAttachedThread: return "finalizer on an attached thread";
    case State::kFinalizerOnUnattachedThread: return "finalizer on an unattached thread";
    case State::kWhileMarking: return "running, while a cycle marks";
  }
  return "?";
}

constexpr State kStates[] = {State::kRunning,
                             State::kUnattached,
                             State::kNative,
                             State::kHandshakeOnRequester,
                             State::kHandshakeForAThreadLeavingNative,
                             State::kFinalizerOnAttachedThread,
                             State::kFinalizerOnUnattachedThread,
                             State::kWhileMarking};

// What a call that needs a running thread of the heap gives in each state.
Outcome needs_running(State s) {
  switch (s) {
    case State::kRunning:
    case State::kFinalizerOnAttachedThread:
    case State::kWhileMarking:
      return Outcome::kOk;
    case State::kUnattached:
    case State::kFinalizerOnUnattachedThread:
      return Outcome::kNotAttached;
    default:
      return Outcome::kThreadState;
  }
}

// Calls that take or store a raw reference (handles, store_root of a reference) throw
// ThreadStateError on every thread that is not a running thread of the heap, attached or
// not (gc/roots.h).
Outcome needs_running_for_a_reference(State s) {
  return needs_running(s) == Outcome::kOk ? Outcome::kOk : Outcome::kThreadState;
}

class HeapApiStatesTest : public ::testing::Test {
 protected:
  HeapApiStatesTest() : heap_(options()), attach_(heap_) {}
  static HeapOptions options() {
    HeapOptions o;
    o.poison_freed_memory = true;
    return o;
  }

  // Runs `call` in state `s` (once, or once per thread for a handshake) and returns
  // its outcome; every run in a state must give the same one.
  Outcome run_in(State s, const std::function<void()>& call) {
    Outcome out = Outcome::kNotRun;
    auto record = [&](Outcome o) {
      if (out != Outcome::kNotRun && out != o) ADD_FAILURE() << "outcomes differ within one state";
      out = o;
    };
    switch (s) {
      case State::kRunning:
        record(classify(call));
        break;
      case State::kUnattached: {
        std::thread t([&] { record(classify(call)); });
        run_native([&] { t.join(); });
        break;
      }
      case State::kNative:
        run_native([&] { record(classify(call)); });
        break;
      case State::kHandshakeOnRequester:
        handshake_all(heap_, [&](size_t) { record(classify(call)); });  // (this thread is the only one)
        break;
      case State::kHandshakeForAThreadLeavingNative: {
        ThreadLeavingNative leaving(heap_);
        std::mutex mu;
        for (int i = 0; i < 20; ++i)
          handshake_all(heap_, [&](size_t) {
            const Outcome o = classify(call);
            std::lock_guard<std::mutex> lock(mu);
            record(o);
          });
        break;
      }
      case State::kFinalizerOnAttachedThread:
      case State::kFinalizerOnUnattachedThread: {
        std::atomic<bool> ran{false};
        // The target is made on a thread that exits: no word of this thread's stack can
        // hold it (conservative scanning), whatever the frames' layout (ASan's differs).
        on_helper_thread(heap_, [&] {
          (void)heap_.add_finalizer(make<Node>().value(), [&] {
            record(classify(call));
            ran = true;
          });
        });
        for (int i = 0; i < 20 && heap_.pending_finalizers() == 0; ++i) heap_.collect();
        if (s == State::kFinalizerOnAttachedThread) {
          heap_.run_finalizers();
        } else {
          std::thread t([&] { heap_.run_finalizers(); });
          run_native([&] { t.join(); });
        }
        EXPECT_TRUE(ran.load()) << "the finalizer never became pending";
        break;
      }
      case State::kWhileMarking: {
        // The marker is held before it traces, so the cycle is surely marking when the
        // call starts; a call that waits for the cycle (collect, verify,
        // wait_for_collection) gets it released after a while by another thread.
        auto hold = std::make_unique<MarkerPause>(heap_, MarkerPause::BeforeTracing{});
        heap_.start_collection();
        EXPECT_TRUE(heap_.is_marking());
        std::thread releaser([&] {
          std::this_thread::sleep_for(milliseconds(20));
          hold->release();
        });
        record(classify(call));
        run_native([&] { releaser.join(); });
        hold.reset();
        heap_.wait_for_collection();
        break;
      }
    }
    return out;
  }

  // Checks `call` in every state against `expected(state)`.
  void check(const char* call_name, const std::function<void()>& call, Outcome (*expected)(State)) {
    for (State s : kStates) {
      const Outcome got = run_in(s, call);
      EXPECT_EQ(got, expected(s)) << call_name << " in state \"" << name(s) << "\": got " << name(got)
                                  << ", expected " << name(expected(s));
      const VerifyReport r = heap_.verify();
      ASSERT_TRUE(r.ok) << call_name << " in state \"" << name(s) << "\": " << r.summary();
    }
  }
  static Outcome anywhere(State) { return Outcome::kOk; }

  Heap heap_;
  MutatorScope attach_;
};

TEST_F(HeapApiStatesTest, CallsForAnyThread) {
  Persistent<Node> live(heap_, make_list(100));
  check("stats", [&] { (void)heap_.stats(); }, anywhere);
  check("options", [&] { (void)heap_.options(); }, anywhere);
  check("is_marking", [&] { (void)heap_.is_marking(); }, anywhere);
  check("set_soft_heap_limit / soft_heap_limit", [&] {
    heap_.set_soft_heap_limit(size_t{512} << 20);
    EXPECT_EQ(heap_.soft_heap_limit(), size_t{512} << 20);
    heap_.set_soft_heap_limit(0);
  }, anywhere);
  check("release_free_memory", [&] { (void)heap_.release_free_memory(); }, anywhere);
  check("async_preemption_active / status", [&] {
    (void)heap_.async_preemption_active();
    EXPECT_FALSE(heap_.async_preemption_status().empty());
  }, anywhere);
  check("chrome_trace_json", [&] { EXPECT_FALSE(heap_.chrome_trace_json().empty()); }, anywhere);
  check("pending_finalizers / cancel_finalizer", [&] {
    (void)heap_.pending_finalizers();
    EXPECT_FALSE(heap_.cancel_finalizer(FinalizerToken{~uint64_t{0}}));  // never issued
  }, anywhere);
  check("forget_stack", [&] {
    int not_a_fiber = 0;
    EXPECT_FALSE(heap_.forget_stack(&not_a_fiber));
  }, anywhere);
  static Slot global;
  check("add_root / store_root(null) / remove_root", [&] {
    heap_.add_root(&global);
    heap_.store_root(&global, Value::null());
    heap_.remove_root(&global);
  }, anywhere);
  EXPECT_EQ(list_length_checked(live.get()), 100u);
}

TEST_F(HeapApiStatesTest, CallsForARunningThreadOfTheHeap) {
  Persistent<Node> live(heap_, make_list(100));
  check("collect", [&] { heap_.collect(); }, needs_running);
  check("start_collection", [&] { heap_.start_collection(); }, needs_running);
  check("start_collection(young)", [&] { heap_.start_collection(CollectionScope::kYoung); }, needs_running);
  check("wait_for_collection", [&] { heap_.wait_for_collection(); }, needs_running);
  check("verify", [&] { EXPECT_TRUE(heap_.verify().ok); }, needs_running);
  check("idle", [&] { (void)heap_.idle(milliseconds(1)); }, needs_running);
  static Slot global;
  heap_.add_root(&global);
  const Value value = live.get().value();  // (read here: get() itself needs a running thread)
  check("store_root(a reference)", [&] { heap_.store_root(&global, value); }, needs_running_for_a_reference);
  heap_.store_root(&global, Value::null());
  heap_.remove_root(&global);
  EXPECT_EQ(list_length_checked(live.get()), 100u);
}

}  // namespace
}  // namespace shoal::test
