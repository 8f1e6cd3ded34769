// Bad references in precise slots and roots: the marker stops with a report naming the
// holder, the slot and the value instead of writing a mark through them (gc/marker.h).
// Death tests: the report goes to stderr and the process aborts. Each runs with
// concurrent cycles (the concurrent marker thread finds the value) and stop-the-world.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

constexpr const char* kHex = "0x[0-9a-f]+";

// "bad reference in object <holder> (class test.Node), slot at offset 16: value <v> is <what>"
std::string in_node_right_slot(const std::string& what) {
  return std::string("shoal: fatal: bad reference in object ") + kHex + " \\(class test\\.Node\\), slot at offset 16: value " +
         kHex + " is " + what;
}

class BadPointerTest : public CycleKindTest {
 protected:
  void SetUp() override {
    // The heap has marker threads: re-run the test in a fresh process for each death.
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    heap_ = std::make_unique<Heap>(options());
    scope_.emplace(*heap_);
    holder_.emplace(*heap_, make<Node>());
  }
  void TearDown() override {
    holder_.reset();
    scope_.reset();
    heap_.reset();
  }
  Heap& heap() { return *heap_; }
  // Stores `bad` into the holder's `right` field (offset 16) with the raw API, then runs
  // a cycle of the kind under test.
  void store_and_collect(uintptr_t bad) {
    Ref<Node> holder = holder_->get();
    write(holder.object(), holder->right.slot(), Value::from_raw(bad));
    cycle(*heap_);
  }

  std::unique_ptr<Heap> heap_;
  std::optional<MutatorScope> scope_;
  std::optional<Persistent<Node>> holder_;
};

TEST_P(BadPointerTest, PointerOutsideTheHeapIsReported) {
  void* buffer = std::aligned_alloc(16, 64);
  ASSERT_NE(buffer, nullptr);
  EXPECT_DEATH(store_and_collect(reinterpret_cast<uintptr_t>(buffer)), in_node_right_slot("outside the heap"));
  alignas(16) char on_stack[64] = {};
  EXPECT_DEATH(store_and_collect(reinterpret_cast<uintptr_t>(on_stack)), in_node_right_slot("outside the heap"));
  std::free(buffer);
}

TEST_P(BadPointerTest, InteriorPointerIntoASmallObjectIsReported) {
  Persistent<Node> target(heap(), make<Node>());
  const auto start = reinterpret_cast<uintptr_t>(target.get().object());
  EXPECT_DEATH(store_and_collect(start + 16),
               in_node_right_slot(std::string("an interior pointer, 16 bytes into the small object at ") + kHex +
                                  " \\(class test\\.Node\\)"));
  // Misaligned (8 bytes in): the object's own granule, so only the alignment test sees it.
  EXPECT_DEATH(store_and_collect(start + 8),
               in_node_right_slot("an interior pointer, 8 bytes into the small object"));
}

TEST_P(BadPointerTest, PointerToAFreedCellIsReported) {
  // Objects reachable from nothing, then a stop-the-world collection: one whose cell is
  // free now is the stale reference (a conservative root may keep one or two of them).
  std::vector<HiddenPtr> victims;
  in_own_frame([&] {
    for (int i = 0; i < 64; ++i) victims.emplace_back(make<Node>().object());
  });
  clobber_stack();
  heap().collect();
  HiddenPtr freed;
  for (const HiddenPtr& v : victims)
    if (!is_allocated(heap(), v)) freed = v;
  ASSERT_TRUE(freed.address() != 0 && !is_allocated(heap(), freed)) << "every victim survived the collection";
  EXPECT_DEATH(store_and_collect(freed.address()), in_node_right_slot("a free 32-byte cell: a freed object"));
}

TEST_P(BadPointerTest, InteriorPointerIntoALargeObjectIsReported) {
  Persistent<RefArray> large(heap(), RefArray::create(4096));  // 32 KiB: a large object
  const auto start = reinterpret_cast<uintptr_t>(large.get().object());
  EXPECT_DEATH(store_and_collect(start + 16),
               in_node_right_slot(std::string("an interior pointer, 16 bytes into the large object at ") + kHex +
                                  " \\(class RefArray\\)"));
}

TEST_P(BadPointerTest, BadRootIsReportedAsARootSlot) {
  alignas(16) char on_stack[64] = {};
  Slot root;
  heap().add_root(&root);
  EXPECT_DEATH(
      {
        heap().store_root(&root, Value::from_raw(reinterpret_cast<uintptr_t>(on_stack)));
        cycle(heap());
      },
      std::string("shoal: fatal: bad reference in a root slot \\(a persistent handle or global slot\\): value ") + kHex +
          " is outside the heap");
  heap().remove_root(&root);
}

INSTANTIATE_TEST_SUITE_P(Cycles, BadPointerTest, ::testing::Values(true, false), cycle_kind_name);

// The check's one subtle acceptance: an object allocated while the marker runs has no
// object-start bit until its TLAB is flushed, and a traced slot may already refer to it.
class UnflushedObjectTest : public HeapTest {};

TEST_F(UnflushedObjectTest, ObjectsAllocatedWhileMarkingPassTheCheck) {
  Persistent<Node> root(heap(), make<Node>());
  root.get().set(&Node::left, make<Node>());
  HiddenPtr fresh;
  {
    MarkerPause pause(heap(), root.get().object());
    heap().start_collection();
    pause.wait_until_held();  // root is black, root.left grey and untraced
    in_own_frame([&] {
      Ref<Node> n = make<Node>();  // in this thread's TLAB, no start bit yet
      n->value = 7;
      root.get()->left.get().set(&Node::right, n);
      fresh = HiddenPtr(n.object());
    });
    pause.release();
  }
  heap().wait_for_collection();  // the marker traced root.left and found the new object
  ASSERT_EQ(root.get()->left.get()->right.get().object(), fresh.get<Object>());
  EXPECT_EQ(root.get()->left.get()->right.get()->value, 7);
  heap().collect();
  EXPECT_TRUE(is_allocated(heap(), fresh));
  expect_heap_ok();
}

// A stale reference to a free cell inside another allocation's current TLAB run, past
// its cursor. Cells are zeroed as they are allocated, not when a run is taken
// (heap/allocator.cc), so in the default mode such a cell may still hold its old header
// and pass the check; with poison_freed_memory the run is zeroed when taken (after its
// poison check), and the stale reference is reported as any free cell is. Without that
// zeroing the cell holds the poison pattern and the marker reads it as a header.
class StaleReferenceIntoATlabRunTest : public HeapTest {
 protected:
  HeapOptions options() override {
    HeapOptions o;
    o.poison_freed_memory = true;
    o.generational = false;  // (a plain concurrent cycle: the run is taken after its initial pause)
    return o;
  }
  void SetUp() override {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    HeapTest::SetUp();
  }
};

TEST_F(StaleReferenceIntoATlabRunTest, IsReportedWithPoisoning) {
  Persistent<Node> root(heap(), make<Node>());
  root.get().set(&Node::left, make<Node>());
  std::vector<HiddenPtr> victims;
  in_own_frame([&] {
    for (int i = 0; i < 64; ++i) victims.emplace_back(make<Node>().object());
  });
  clobber_stack();
  heap().collect();  // the victims' cells are free and poisoned
  auto freed = [&](uintptr_t a) {
    for (const HiddenPtr& v : victims)
      if (v.address() == a) return !is_allocated(heap(), v);
    return false;
  };
  EXPECT_DEATH(
      {
        MarkerPause pause(heap(), root.get().object());
        heap().start_collection();  // its initial pause retired this thread's TLABs
        pause.wait_until_held();    // root is black, root.left grey and untraced
        in_own_frame([&] {
          // A new TLAB run: the first free cell, the freed victims' block, and the cell
          // after this object - free, in the run, past the cursor.
          Ref<Node> n = make<Node>();
          const uintptr_t next = reinterpret_cast<uintptr_t>(n.object()) + 32;
          if (!freed(next)) {
            std::fprintf(stderr, "setup failed: the cell after the new object is not a freed victim\n");
            std::exit(3);
          }
          Ref<Node> left = root.get()->left.get();
          write(left.object(), left->right.slot(), Value::from_raw(next));
        });
        pause.release();
        heap().wait_for_collection();
      },
      std::string("shoal: fatal: bad reference in object ") + kHex +
          " \\(class test\\.Node\\), slot at offset 16: value " + kHex + " is a free 32-byte cell");
}

}  // namespace
}  // namespace shoal::test
