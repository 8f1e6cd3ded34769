// Misuse gets a typed error, never a crash.
#include <atomic>
#include <thread>

#include <memory>
#include <optional>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

TEST(MisuseTest, AllocatingOnAnUnattachedThreadThrowsNotAttached) {
  Heap heap;
  EXPECT_THROW(make<Node>(), NotAttached);
  EXPECT_THROW(String::create("x"), NotAttached);
  EXPECT_THROW(heap.collect(), NotAttached);
  EXPECT_THROW(heap.verify(), NotAttached);
  EXPECT_THROW(safepoint(), NotAttached);
  EXPECT_THROW(run_native([] {}), NotAttached);
  std::thread t([&] { EXPECT_THROW(make<Node>(), NotAttached); });
  t.join();
  EXPECT_EQ(current_heap(), nullptr);
}

TEST(MisuseTest, AttachingToASecondHeapThrows) {
  Heap a, b;
  MutatorScope attach(a);
  EXPECT_EQ(current_heap(), &a);
  EXPECT_THROW(MutatorScope second(b), ThreadStateError);
  EXPECT_THROW(b.collect(), NotAttached);
  { MutatorScope nested(a); }  // nesting on the same heap is fine
  EXPECT_EQ(current_heap(), &a);
  make<Node>();
}

TEST(MisuseTest, DetachedThreadCanAttachAgain) {
  Heap heap;
  { MutatorScope attach(heap); make<Node>(); }
  EXPECT_THROW(make<Node>(), NotAttached);
  { MutatorScope attach(heap); make<Node>(); heap.collect(); }
}

TEST(MisuseTest, HeapLimitTooSmall) {
  HeapOptions o;
  o.heap_limit = 1000;
  try {
    Heap heap(o);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("smaller than one heap page"), std::string::npos);
  }
  o.heap_limit = internal::kPageSize;  // legal, but too small for real work
  Heap heap(o);
  MutatorScope attach(heap);
  EXPECT_THROW(ByteArray::create(internal::kPageSize * 2), OutOfMemory);
  auto fill = [&] {
    Persistent<Node> keep(heap, Ref<Node>());
    for (;;) {
      Ref<Node> n = make<Node>();
      n.set(&Node::left, keep.get());
      keep.set(n);
    }
  };
  EXPECT_THROW(fill(), OutOfMemory);
}

TEST(MisuseTest, TouchingTheHeapInsideRunNativeThrows) {
  Heap heap;
  MutatorScope attach(heap);
  Ref<Node> warm = make<Node>();  // the TLAB has room: the fast path must still refuse
  run_native([&] {
    EXPECT_THROW(make<Node>(), ThreadStateError);
    EXPECT_THROW(String::create("x"), ThreadStateError);
    EXPECT_THROW(safepoint(), ThreadStateError);
    EXPECT_THROW(heap.collect(), ThreadStateError);
    EXPECT_THROW(heap.verify(), ThreadStateError);
    EXPECT_THROW(handshake_all(heap, [](size_t) {}), ThreadStateError);
    run_native([] {});  // nesting is fine
  });
  Ref<Node> after = make<Node>();  // running again: allowed, and from the same TLAB
  EXPECT_EQ(reinterpret_cast<char*>(after.object()) - reinterpret_cast<char*>(warm.object()), 32);
  EXPECT_TRUE(heap.verify().ok);
}

TEST(MisuseTest, AllocatingInsideAHandshakeOperationThrowsToTheRequester) {
  Heap heap;
  std::atomic<bool> stop{false}, ready{false};
  std::thread other([&] {
    MutatorScope attach(heap);
    ready = true;
    while (!stop.load()) {
      make<Node>();
      safepoint();
    }
  });
  MutatorScope attach(heap);
  while (!ready.load()) safepoint();
  EXPECT_THROW(handshake_all(heap, [](size_t) { make<Node>(); }), ThreadStateError);
  std::atomic<int> ran{0};
  handshake_all(heap, [&](size_t) { ran++; });  // later handshakes are unaffected
  EXPECT_EQ(ran.load(), 2);
  stop = true;
  run_native([&] { other.join(); });
}

// A reference store from a thread that may not touch the heap is refused before it
// happens, whether or not a cycle is marking (the store key's not-running bit sends it to
// the slow path): unattached -> NotAttached; inside run_native or a handshake operation ->
// ThreadStateError. Running again, the same stores succeed.
TEST(MisuseTest, StoresFromAThreadThatIsNotRunningThrowWithoutACycle) {
  Heap heap;
  MutatorScope attach(heap);
  Persistent<Node> holder(heap, make<Node>());
  Persistent<Node> value(heap, make<Node>());
  Persistent<RefArray> array(heap, RefArray::create(4));
  ASSERT_FALSE(heap.is_marking());
  const Ref<Node> h = holder.get(), v = value.get();  // (the handles keep them alive)
  const Ref<RefArray> a = array.get();
  auto stores = [&](auto expect_error) {
    expect_error([&] { h.set(&Node::left, v); });
    expect_error([&] { h.set(&Node::left, Ref<Node>()); });  // null too: it could still drop an edge
    expect_error([&] { h.compare_and_swap(&Node::right, Ref<Node>(), v); });
    expect_error([&] { h.exchange(&Node::right, v); });
    expect_error([&] { a->set(0, v.value()); });
  };
  std::thread([&] {
    stores([](auto store) { EXPECT_THROW(store(), NotAttached); });
  }).join();
  run_native([&] { stores([](auto store) { EXPECT_THROW(store(), ThreadStateError); }); });
  std::atomic<int> refused{0};
  handshake_all(heap, [&](size_t) {
    try {
      h.set(&Node::left, v);
    } catch (const ThreadStateError&) {
      ++refused;
    }
  });
  EXPECT_EQ(refused.load(), 1);
  EXPECT_FALSE(holder->left.get()) << "a refused store must not happen";
  EXPECT_FALSE(holder->right.get());
  EXPECT_TRUE(array->get(0).is_null());
  stores([](auto store) { EXPECT_NO_THROW(store()); });  // running: allowed
  EXPECT_TRUE(heap.verify().ok);
}

TEST(MisuseTest, SettingAnEmptyPersistentThrows) {
  Heap heap;
  MutatorScope attach(heap);
  Persistent<Node> empty;
  EXPECT_THROW(empty.set(make<Node>()), InvalidArgument);
  EXPECT_FALSE(empty.get());
}

TEST(MisuseTest, AllErrorsShareTheBaseClass) {
  Heap heap;
  try {
    make<Node>();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MutatorScope"), std::string::npos);
  }
}

// Destroying a heap while a thread is still attached stops the process with a message,
// also while a concurrent cycle is under way (the marker thread would otherwise wait for
// the attached thread for ever, before the check ran).
TEST(MisuseDeathTest, DestroyingAHeapWithAnAttachedThreadDuringACycle) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto heap = std::make_unique<Heap>();
        new MutatorScope(*heap);  // leaked: never detaches
        Persistent<Node> keep(*heap, make_tree(8));
        MarkerPause pause(*heap, nullptr);
        heap->start_collection();
        keep.reset();
        heap.reset();
      },
      "heap destroyed while 1 thread\\(s\\) are still attached");
}

TEST(MisuseTest, OrphanedWeakRefLocksToNull) {
  WeakRef<Node> weak;
  PersistentValue number;
  {
    Heap heap;
    MutatorScope attach(heap);
    Ref<Node> n = make<Node>();
    weak = WeakRef<Node>(heap, n);
    number = PersistentValue(heap, Value::from_int(5));
  }
  EXPECT_TRUE(weak.expired());
  EXPECT_FALSE(weak.lock());
  EXPECT_TRUE(number.get().is_null());  // an orphaned handle reads as null
}

// What a handle that outlives its heap keeps is its own chunk of nodes, until it is
// destroyed: a heap that once held 2,000 handles left all eight chunks (64 KiB) for the
// rest of the process behind one late handle (found by review).
TEST(MisuseTest, OrphanedHandlesKeepOnlyTheirOwnChunkWhileTheyLive) {
  const size_t before = internal::orphaned_handle_chunks();
  for (int round = 0; round < 50; ++round) {
    std::optional<PersistentValue> late;
    std::optional<PersistentValue> later;
    {
      Heap heap;
      MutatorScope attach(heap);
      std::vector<PersistentValue> batch;
      for (int k = 0; k < 2000; ++k) batch.emplace_back(heap, Value::from_int(k));
      late.emplace(heap, Value::from_int(1));
      later.emplace(heap, Value::from_int(2));  // (the same chunk as `late`)
    }
    EXPECT_EQ(internal::orphaned_handle_chunks(), before + 1);
    late.reset();
    EXPECT_EQ(internal::orphaned_handle_chunks(), before + 1);
    EXPECT_TRUE(later->get().is_null());
    later.reset();
    EXPECT_EQ(internal::orphaned_handle_chunks(), before);
  }
}

}  // namespace
}  // namespace shoal::test
