// The verifier must catch what a broken collector would do: free a reachable object,
// leave a malformed header, list a page twice.
#include "tests/test_support.h"

namespace shoal::test {
namespace {

class VerifierTest : public HeapTest {};

TEST_F(VerifierTest, HealthyHeapPasses) {
  Ref<Node> t = make_tree(10);
  Ref<RefArray> a = RefArray::create(100);
  a->set(3, t.value());
  VerifyReport r = heap().verify();
  EXPECT_TRUE(r.ok) << r.summary();
  EXPECT_GE(r.objects_checked, size_t{(1 << 11) - 1});
}

TEST_F(VerifierTest, DetectsAReachableObjectThatWasFreed) {
  Ref<Node> root = make<Node>();
  Ref<Node> child = make<Node>();
  root.set(&Node::left, child);
  heap().verify();  // flushes this thread's TLAB into the object-start bitmap
  // Simulate a collector bug: free `child` although `root` still refers to it.
  internal::PageInfo& page = heap().impl().pages.page_of(child.object());
  page.alloc_bits.clear_bit(page.granule_of(child.object()));
  VerifyReport r = heap().verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("not an allocated object"), std::string::npos) << r.summary();
  page.alloc_bits.set_strided(page.granule_of(child.object()), page.granule_of(child.object()) + 1, 1);
  EXPECT_TRUE(heap().verify().ok);
  EXPECT_EQ(root->left.get(), child);  // root is live up to here
}

TEST_F(VerifierTest, DetectsAMalformedHeader) {
  Ref<Node> root = make<Node>();
  auto* header = reinterpret_cast<std::atomic<uint64_t>*>(root.object());
  const uint64_t saved = header->load();
  header->store(header::make(0xfffff0, 0));  // no such class
  VerifyReport r = heap().verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.summary().find("unknown class id"), std::string::npos) << r.summary();
  header->store(saved);
  EXPECT_TRUE(heap().verify().ok);
  EXPECT_EQ(root.object()->class_id(), class_id_of<Node>());  // root is live up to here
}

TEST_F(VerifierTest, DetectsAPageFreedTwice) {
  Ref<Node> keep = make<Node>();
  keep->value = 1;
  in_own_frame([&] {
    for (int i = 0; i < 20000; ++i) make<Node>();
  });
  clobber_stack();
  heap().collect();
  internal::PageSpace& pages = heap().impl().pages;
  // `keep` shares its page with freed cells, so the page is on the Node class's list.
  internal::PageInfo* page = pages.take_available(internal::size_class_of(kHeaderSize + sizeof(Node)));
  ASSERT_NE(page, nullptr);
  pages.give_available(page);
  pages.give_free(page);  // the bug: the page is freed while still available
  VerifyReport r = heap().verify();
  EXPECT_FALSE(r.ok) << r.summary();
  EXPECT_NE(r.summary().find("twice"), std::string::npos) << r.summary();
  EXPECT_EQ(keep->value, 1);  // keeps `keep` (and so its page) alive up to here
}

}  // namespace
}  // namespace shoal::test
