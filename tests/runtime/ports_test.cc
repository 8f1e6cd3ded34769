// Ports: share / copy / transfer (SAFE and UNSAFE), blocking receive with timeout, the
// callback form, closing; detach / attach.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "tests/test_support.h"

namespace shoal::test {
namespace {

using namespace std::chrono_literals;

class PortsTest : public ::testing::Test {
 protected:
  IsolateGroup group;
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
};

TEST_F(PortsTest, ShareSendsTheReferenceItself) {
  ReceivePort inbox(b);
  SendPort to_b = inbox.send_port();
  IsolateScope in_a(a);
  Ref<Node> frozen = freeze(make_tree(4));
  to_b.send(frozen.value(), SendMode::kShare);
  to_b.send(String::create("hi").value(), SendMode::kShare);
  to_b.send(Value::from_int(5), SendMode::kShare);
  Ref<Node> mutable_node = make<Node>();
  EXPECT_THROW(to_b.send(mutable_node.value(), SendMode::kShare), NotShareableError);
  EXPECT_EQ(inbox.pending(), 3u);
  EXPECT_THROW(inbox.receive(), ThreadStateError);  // a is not the port's isolate
  run_in(b, [&] {
    EXPECT_EQ(inbox.receive(), frozen.value());  // zero copy
    EXPECT_EQ(cast<String>(inbox.receive())->view(), "hi");
    EXPECT_EQ(inbox.receive().as_int(), 5);
    EXPECT_FALSE(inbox.try_receive());
  });
}

TEST_F(PortsTest, CopyPreservesCyclesAndSharingAndBelongsToTheReceiver) {
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  // root -> x, y; x -> y (shared), y -> root (cycle); y -> frozen string (not copied).
  Ref<Node> root = make<Node>();
  Ref<Node> x = make<Node>();
  Ref<RefArray> y = RefArray::create(3);
  Ref<String> str = String::create("shared");
  root.set(&Node::left, x);
  x.set(&Node::left, Ref<Node>());
  root->value = 7;
  Ref<Node> holder_y = make<Node>();
  y->set(0, root.value());
  y->set(1, str.value());
  Ref<ByteArray> bytes = ByteArray::create(5);
  bytes->set(4, 99);
  y->set(2, bytes.value());
  Ref<Node> yn = make<Node>();
  yn.set(&Node::right, Ref<Node>::from_value(Value()));
  root.set(&Node::right, yn);
  yn.set(&Node::left, x);  // x reachable twice
  inbox.send_port().send(root.value(), SendMode::kCopy);
  // The original is untouched and still a's.
  EXPECT_EQ(root.object()->owner(), a.id());
  root.set(&Node::left, Ref<Node>());  // still writable by a
  run_in(b, [&] {
    Ref<Node> c = cast<Node>(inbox.receive());
    EXPECT_NE(c, root);
    EXPECT_EQ(c.object()->owner(), b.id());
    EXPECT_EQ(c->value, 7);
    Ref<Node> cx = c->left.get();
    ASSERT_TRUE(cx);
    EXPECT_NE(cx, x);
    EXPECT_EQ(cx.object()->owner(), b.id());
    Ref<Node> cyn = c->right.get();
    EXPECT_EQ(cyn->left.get(), cx);  // sharing preserved: one copy of x
    c.set(&Node::left, make<Node>());  // b owns the copy
    group.heap().collect();
  });
  // A cycle through a RefArray, a byte array and a string.
  Ref<RefArray> cyc = RefArray::create(3);
  cyc->set(0, cyc.value());
  cyc->set(1, str.value());
  cyc->set(2, bytes.value());
  inbox.send_port().send(cyc.value());  // kCopy is the default
  run_in(b, [&] {
    Ref<RefArray> c = cast<RefArray>(inbox.receive());
    EXPECT_NE(c, cyc);
    EXPECT_EQ(c->get(0), c.value());
    EXPECT_EQ(c->get(1), str.value());  // shareable: referenced, not copied
    Ref<ByteArray> cb = cast<ByteArray>(c->get(2));
    EXPECT_NE(cb, bytes);
    EXPECT_EQ(cb->get(4), 99);
    cb->set(0, 1);
  });
  (void)holder_y;
}

// Ephemerons in a copy: a key that is copied too (reachable from the root) gives the
// copy's entry the key's copy and the value's copy; a shareable key is kept; a key that
// is not copied (held elsewhere by the sender) is dead in the copy - and so is its
// value: a copied entry with a cleared key but a value would keep the value for ever.
TEST_F(PortsTest, CopiedEphemeronsFollowTheirKeys) {
  ReceivePort inbox(b);
  Persistent<Node> held_elsewhere;
  Persistent<String> shared_key_alive;  // (the copy's ephemeron refers to it weakly)
  {
    IsolateScope in_a(a);
    held_elsewhere = Persistent<Node>(group.heap(), make<Node>());
    Ref<Node> copied_key = make<Node>();
    Ref<String> shared_key = String::create("shared");
    shared_key_alive = Persistent<String>(group.heap(), shared_key);
    Ref<RefArray> root = RefArray::create(4);
    auto value = [](int64_t v) {
      Ref<Node> n = make<Node>();
      n->value = v;
      return n.value();
    };
    root->set(0, Ephemeron::create(held_elsewhere.get().value(), value(1)).value());
    root->set(1, Ephemeron::create(copied_key.value(), value(2)).value());
    root->set(2, Ephemeron::create(shared_key.value(), value(3)).value());
    root->set(3, copied_key.value());
    inbox.send_port().send(root.value(), SendMode::kCopy);
  }
  run_in(b, [&] {
    Ref<RefArray> copy = cast<RefArray>(inbox.receive());
    group.heap().collect();
    Ref<Ephemeron> dead = cast<Ephemeron>(copy->get(0));
    EXPECT_TRUE(dead->expired());
    EXPECT_TRUE(dead->value().is_null()) << "an expired ephemeron kept its value";
    Ref<Ephemeron> kept = cast<Ephemeron>(copy->get(1));
    EXPECT_EQ(kept->key(), copy->get(3));  // the key's copy
    EXPECT_EQ(cast<Node>(kept->value())->value, 2);
    EXPECT_EQ(kept->value().as_object()->owner(), b.id());
    Ref<Ephemeron> shared = cast<Ephemeron>(copy->get(2));
    EXPECT_EQ(cast<String>(shared->key())->view(), "shared");
    EXPECT_EQ(cast<Node>(shared->value())->value, 3);
    EXPECT_TRUE(group.heap().verify().ok);
  });
}

// A copy made while a young cycle marks: a large copy is old after that cycle's sweep,
// and its references to the sender's newborns (young again after the sweep) must be
// remembered. The copy's slots were plain-copied and never went through the barrier:
// once the sender dropped its own references, the next young cycles freed every element
// under the copy (found by review).
TEST_F(PortsTest, ACopyMadeWhileACycleMarksKeepsItsYoungReferences) {
  constexpr int kN = 2000;  // 16 KiB of slots: a large object
  ReceivePort inbox(b);
  Heap& heap = group.heap();
  Persistent<RefArray> received;
  {
    IsolateScope in_a(a);
    heap.collect();
    {
      MarkerPause hold(heap, MarkerPause::BeforeTracing{});
      heap.start_collection(CollectionScope::kYoung);
      ASSERT_TRUE(heap.is_marking());
      in_own_frame([&] {
        Ref<RefArray> sent = RefArray::create(kN);
        for (int i = 0; i < kN; ++i) sent->set(i, String::create(std::to_string(7 * i + 1)).value());
        inbox.send_port().send(sent.value(), SendMode::kCopy);
        for (int i = 0; i < kN; ++i) sent->set(i, Value::null());  // the sender moves on
      });
    }
    heap.wait_for_collection();
  }
  run_in(b, [&] { received = Persistent<RefArray>(heap, cast<RefArray>(inbox.receive())); });
  {
    IsolateScope in_a(a);
    clobber_stack();
    for (int k = 0; k < 3; ++k) {
      heap.start_collection(CollectionScope::kYoung);
      heap.wait_for_collection();
    }
    for (int i = 0; i < 20000; ++i) (void)String::create("XXXXXXXX");  // reuses what was freed
    const VerifyReport report = heap.verify();
    EXPECT_TRUE(report.ok) << report.summary();
  }
  run_in(b, [&] {
    int wrong = 0;
    for (int i = 0; i < kN; ++i) {
      const Value v = received->get(i);
      wrong += !v.is_object() || v.as_object()->class_id() != kStringClassId ||
               cast<String>(v)->view() != std::to_string(7 * i + 1);
    }
    EXPECT_EQ(wrong, 0);
  });
}

// Collections while a copy is being allocated (a small heap, verified after every
// collection): no copy holds a reference that did not go through the barrier at a
// safepoint - a copy made old by a young cycle in the middle of the copy held
// plain-copied references to young originals, which the verifier reported as a broken
// remembered set (found by review).
TEST(PortsCopyTest, CollectionsInTheMiddleOfACopyFindItsBarrierInvariants) {
  IsolateGroupOptions options;
  options.heap.heap_limit = size_t{3} << 20;
  options.heap.verify_after_gc = true;
  options.heap.min_gc_trigger = size_t{256} << 10;
  IsolateGroup group(options);
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Persistent<RefArray> root(group.heap(), RefArray::create(64));
  int copies = 0;
  for (int round = 0; round < 200; ++round) {
    try {
      Ref<Map> m = Map::create();
      for (int i = 0; i < 300; ++i) m->set(make<Node>().value(), String::create("v").value());
      root->set(round % 64, m.value());
      inbox.send_port().send(root.get().value(), SendMode::kCopy);
      run_in(b, [&] { (void)inbox.receive(); });
      ++copies;
    } catch (const OutOfMemory&) {
      root->set(round % 64, Value::null());
    }
  }
  EXPECT_GT(copies, 10);
}

TEST_F(PortsTest, CopyOfALongListNeedsNoRecursion) {
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<Node> list = make_list(200000);
  inbox.send_port().send(list.value(), SendMode::kCopy);
  run_in(b, [&] {
    Ref<Node> c = cast<Node>(inbox.receive());
    EXPECT_EQ(list_length_checked(c), 200000u);
    EXPECT_EQ(c->left.get().object()->owner(), b.id());
  });
}

TEST_F(PortsTest, SafeTransferMovesOwnershipAndTheSenderLosesWriteAccess) {
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<Node> tree = make_tree(5);
  Ref<Node> left = tree->left.get();
  inbox.send_port().send(tree.value(), SendMode::kTransfer);
  EXPECT_EQ(tree.object()->owner(), b.id());
  EXPECT_EQ(left.object()->owner(), b.id());
  EXPECT_THROW(tree.set(&Node::left, Ref<Node>()), IncorrectDereferenceError);
  EXPECT_THROW(left.set(&Node::left, Ref<Node>()), IncorrectDereferenceError);
  run_in(b, [&] {
    Ref<Node> t = cast<Node>(inbox.receive());
    EXPECT_EQ(t, tree);  // no copy
    EXPECT_EQ(check_tree(t, 5), 63);
    t.set(&Node::left, Ref<Node>());
  });
}

TEST_F(PortsTest, SafeTransferRefusesWhileSomethingOutsideRefersIn) {
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<Node> graph = make_tree(3);
  Ref<Node> inner = graph->left.get();
  Ref<Node> outside = make<Node>();
  outside.set(&Node::left, inner);  // a reference into the subgraph from outside
  try {
    inbox.send_port().send(graph.value(), SendMode::kTransfer);
    FAIL();
  } catch (const TransferError& e) {
    EXPECT_NE(std::string(e.what()).find("test.Node"), std::string::npos) << e.what();
  }
  EXPECT_EQ(inbox.pending(), 0u);
  EXPECT_EQ(graph.object()->owner(), a.id());  // nothing moved
  EXPECT_EQ(inner.object()->owner(), a.id());
  // A persistent handle counts too.
  outside.set(&Node::left, Ref<Node>());
  {
    Persistent<Node> handle(group.heap(), inner);
    EXPECT_THROW(inbox.send_port().send(graph.value(), SendMode::kTransfer), TransferError);
  }
  // Once dropped, it goes; the stack references do not count.
  inbox.send_port().send(graph.value(), SendMode::kTransfer);
  EXPECT_EQ(inner.object()->owner(), b.id());
  // UNSAFE does not check.
  Ref<Node> g2 = make_tree(2);
  outside.set(&Node::right, g2->left.get());
  inbox.send_port().send(g2.value(), SendMode::kTransferUnsafe);
  EXPECT_EQ(g2->left.get().object()->owner(), b.id());
}

TEST_F(PortsTest, TransferStopsAtSharedAndUnownedObjects) {
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<Node> unowned = run_shared([] { return make<Node>(); });
  Ref<Node> frozen = freeze(make<Node>());
  Ref<Node> root = make<Node>();
  root.set(&Node::left, unowned);
  root.set(&Node::right, frozen);
  inbox.send_port().send(root.value(), SendMode::kTransfer);
  EXPECT_EQ(root.object()->owner(), b.id());
  EXPECT_EQ(unowned.object()->owner(), 0u);
  EXPECT_EQ(frozen.object()->owner(), a.id());
}

TEST_F(PortsTest, ForeignObjectsCannotBeSentAndNothingChanges) {
  ReceivePort inbox(b);
  IsolateScope in_a(a);
  Ref<Node> theirs = run_in(b, [] { return make<Node>(); });
  Ref<Node> unowned = run_shared([] { return make<Node>(); });
  run_in(b, [&] { unowned.set(&Node::left, theirs); });
  Ref<Node> mine = make<Node>();
  mine.set(&Node::left, unowned);
  EXPECT_THROW(inbox.send_port().send(mine.value(), SendMode::kCopy), IncorrectDereferenceError);
  EXPECT_EQ(inbox.pending(), 0u);
  // Transfer moves only a's objects: the unowned one is the boundary.
  inbox.send_port().send(mine.value(), SendMode::kTransfer);
  EXPECT_EQ(theirs.object()->owner(), b.id());
  EXPECT_EQ(unowned.object()->owner(), 0u);
}

TEST_F(PortsTest, BlockingReceiveTimeoutsAndTheCallbackForm) {
  ReceivePort inbox(b);
  SendPort to_b = inbox.send_port();
  std::thread receiver([&] {
    IsolateScope s(b);
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_FALSE(inbox.receive_for(20ms));
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    Value first = inbox.receive();  // blocks until the sender sends (GC-safe)
    EXPECT_EQ(first.as_int(), 1);
    std::vector<int64_t> got;
    const size_t n = inbox.dispatch([&](Value v) { got.push_back(cast<Node>(v)->value); }, 2s, 3);
    EXPECT_EQ(n, 3u);
    EXPECT_EQ(got, (std::vector<int64_t>{10, 11, 12}));
  });
  {
    IsolateScope s(a);
    std::this_thread::sleep_for(40ms);
    run_native([] { std::this_thread::sleep_for(10ms); });
    group.heap().collect();  // the blocked receiver does not hold this up
    to_b.send(Value::from_int(1));
    for (int i = 10; i < 13; ++i) {
      Ref<Node> n = make<Node>();
      n->value = i;
      to_b.send(n.value());
      group.heap().collect();  // queued messages are roots
    }
  }
  receiver.join();
}

// A receive blocks in the library like any other wait: a pool task waiting in
// receive() ends with CancelledError when the pool shuts down now (shutdown_now hung
// waiting for it), and one under a cancelled token does not block at all.
TEST_F(PortsTest, ABlockedReceiveIsCancellable) {
  ReceivePort inbox(b);
  ThreadPool pool(group.heap(), 1);
  std::atomic<bool> waiting{false};
  Future<int> f = pool.submit([&] {
    IsolateScope in_b(b);
    waiting = true;
    (void)inbox.receive();  // nothing is ever sent
    return 1;
  });
  while (!waiting.load()) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);  // (into the wait)
  {
    MutatorScope m(group.heap());
    pool.shutdown_now();
    EXPECT_THROW(f.get(), CancelledError);
  }
  IsolateScope in_b(b);
  CancellationToken token;
  token.cancel();
  CancellationScope cancelled(token);
  EXPECT_THROW(inbox.receive(), CancelledError);
  EXPECT_THROW((void)inbox.receive_for(10s), CancelledError);
}

TEST_F(PortsTest, ClosedPorts) {
  auto inbox = std::make_unique<ReceivePort>(b);
  SendPort to_b = inbox->send_port();
  IsolateScope in_a(a);
  to_b.send(Value::from_int(1));
  run_in(b, [&] {
    inbox->close();
    EXPECT_THROW(inbox->receive(), PortClosedError);
    EXPECT_FALSE(inbox->receive_for(1ms));
  });
  EXPECT_TRUE(to_b.is_closed());
  EXPECT_THROW(to_b.send(Value::from_int(2)), PortClosedError);
  inbox.reset();
  EXPECT_THROW(to_b.send(Value::from_int(3)), PortClosedError);
  EXPECT_THROW(SendPort().send(Value::null()), InvalidArgument);
}

// A transfer whose port is closed by another thread while the graph moves: the send
// fails with PortClosedError and changes nothing - the graph is the sender's again,
// writable (it was left owned by the receiver, in no queue, for ever; found by review).
TEST_F(PortsTest, ATransferToAPortClosedMeanwhileHandsTheGraphBack) {
  for (SendMode mode : {SendMode::kTransfer, SendMode::kTransferUnsafe}) {
    int refused = 0;
    for (int attempt = 0; attempt < 5 && refused == 0; ++attempt) {
      auto inbox = std::make_unique<ReceivePort>(b);
      SendPort to_b = inbox->send_port();
      IsolateScope in_a(a);
      Ref<Node> head = make_list(300000);  // a transfer of some milliseconds
      std::atomic<bool> sending{false};
      std::thread closer([&] {  // (unattached: closing needs no heap access)
        while (!sending) std::this_thread::yield();
        std::this_thread::sleep_for(2ms);
        inbox->close();
      });
      sending = true;
      try {
        to_b.send(head.value(), mode);  // (the close came after it queued the message)
      } catch (const PortClosedError&) {
        ++refused;
        for (Ref<Node> n = head; n; n = n->left.get()) ASSERT_EQ(n.object()->owner(), a.id());
        EXPECT_EQ(list_length_checked(head), 300000u);
        head->value = 1;
        head.set(&Node::right, make<Node>());  // writable again
      }
      run_native([&] { closer.join(); });
    }
    EXPECT_EQ(refused, 1) << "the close never fell inside the transfer";
  }
}

TEST_F(PortsTest, DetachAndAttachOnAnotherThread) {
  DetachedGraph parked;
  HiddenPtr hidden;
  {
    IsolateScope in_a(a);
    Ref<Node> tree = make_tree(6);
    hidden = HiddenPtr(tree.object());
    parked = detach(tree.value());
    EXPECT_EQ(tree.object()->owner(), (uint32_t{1} << header::kOwnerBits) - 1);
    try {
      tree.set(&Node::left, Ref<Node>());
      FAIL();
    } catch (const IncorrectDereferenceError& e) {
      EXPECT_NE(std::string(e.what()).find("detached"), std::string::npos) << e.what();
    }
    group.heap().collect();  // the handle keeps it alive
  }
  EXPECT_FALSE(parked.empty());
  std::thread([&] {
    // Attaching needs an isolate.
    MutatorScope m(group.heap());
    EXPECT_THROW(attach(parked), ThreadStateError);
  }).join();
  std::thread([&] {
    IsolateScope in_b(b);
    Ref<Node> t = cast<Node>(attach(parked));
    EXPECT_EQ(t.object(), hidden.get<Object>());
    EXPECT_EQ(check_tree(t, 6), 127);
    EXPECT_EQ(t->left.get().object()->owner(), b.id());
    t.set(&Node::left, Ref<Node>());
    EXPECT_TRUE(parked.empty());
    EXPECT_THROW(attach(parked), InvalidArgument);
  }).join();
}

TEST_F(PortsTest, SafeDetachChecksReferrers) {
  IsolateScope in_a(a);
  Ref<Node> tree = make_tree(2);
  Ref<Node> outside = make<Node>();
  outside.set(&Node::left, tree->right.get());
  EXPECT_THROW(detach(tree.value()), TransferError);
  EXPECT_EQ(tree.object()->owner(), a.id());
  keep_alive(outside);  // the referrer must stay reachable until here
  DetachedGraph g = detach(tree.value(), /*safe=*/false);
  EXPECT_FALSE(g.empty());
  run_shared([&] { EXPECT_THROW(detach(make<Node>().value()), ThreadStateError); });
}

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

TEST(PortsLifetimeTest, PortsOutlivingTheirGroupAreClosed) {
  auto group = std::make_unique<IsolateGroup>();
  Isolate& a = group->create_isolate("a");
  auto inbox = std::make_unique<ReceivePort>(a);
  SendPort to_a = inbox->send_port();
  {
    IsolateScope s(a);
    to_a.send(make<Node>().value());  // queued when the group dies
  }
  group.reset();
  EXPECT_TRUE(to_a.is_closed());
  EXPECT_THROW(to_a.send(Value::from_int(1)), PortClosedError);
  EXPECT_THROW(inbox->receive(), PortClosedError);
  EXPECT_THROW(inbox->isolate(), PortClosedError);
  EXPECT_EQ(inbox->pending(), 0u);
  inbox.reset();
}

}  // namespace
}  // namespace shoal::test

namespace shoal::test {
namespace {

// Copy, transfer and detach / attach while a concurrent cycle marks. The UNSAFE forms
// and the copy run with the marker held after its first object (the snapshot only
// partly traced): the copies are new objects, the transferred and detached graphs
// change owner but not reachability - the sender drops its references once sent. The
// SAFE forms need a stop-the-world pass of their own: they wait for the cycle under
// way, then check. After the cycles every graph is whole, owned by its receiver, and
// the heap verifies. Full and young cycles.
class PortsMarkingTest : public ::testing::TestWithParam<bool> {};

TEST_P(PortsMarkingTest, CopyTransferAndDetachWhileACycleMarks) {
  IsolateGroupOptions o;
  o.heap.concurrent_marking = true;
  o.heap.generational = GetParam();
  o.heap.marker_threads = 1;
  o.heap.mark_assists = false;  // (the held marker is the only tracer)
  o.heap.verify_after_gc = true;
  IsolateGroup group(o);
  Isolate& a = group.create_isolate("a");
  Isolate& b = group.create_isolate("b");
  ReceivePort inbox(b);
  DetachedGraph parked, parked_safe;
  {
    IsolateScope in_a(a);
    Heap& heap = group.heap();
    heap.collect();  // (generational: the old generation holds what came before)
    Persistent<Node> anchor(heap, make_tree(4));  // something for the marker to start on
    {
      MarkerPause pause(heap, nullptr);
      heap.start_collection();
      pause.wait_until_held();
      ASSERT_TRUE(heap.is_marking());
      {
        // Allocated while marking: black. Each is sent or detached, then only the
        // message queue or the handle refers to it.
        inbox.send_port().send(make_tree(7).value(), SendMode::kCopy);
        inbox.send_port().send(make_tree(7).value(), SendMode::kTransferUnsafe);
        parked = detach(make_tree(7).value(), /*safe=*/false);
      }
      ASSERT_TRUE(heap.is_marking());
      pause.release();
      // (Most likely still marking: these wait for the cycle's end.)
      inbox.send_port().send(make_tree(7).value(), SendMode::kTransfer);
      parked_safe = detach(make_tree(7).value());
      heap.wait_for_collection();
    }
    heap.collect();
    EXPECT_TRUE(heap.verify().ok);
    EXPECT_EQ(check_tree(anchor.get(), 4), 31);
  }
  std::thread([&] {
    IsolateScope in_b(b);
    std::vector<Persistent<Node>> graphs;  // (a std::vector's buffer is not scanned)
    for (int i = 0; i < 3; ++i) graphs.emplace_back(group.heap(), cast<Node>(inbox.receive()));
    graphs.emplace_back(group.heap(), cast<Node>(attach(parked)));
    graphs.emplace_back(group.heap(), cast<Node>(attach(parked_safe)));
    group.heap().collect();
    for (const Persistent<Node>& p : graphs) {
      Ref<Node> t = p.get();
      EXPECT_EQ(check_tree(t, 7), 255);
      EXPECT_EQ(t.object()->owner(), b.id());
      EXPECT_EQ(t->left.get()->right.get().object()->owner(), b.id());
      t.set(&Node::left, Ref<Node>());  // b's to write
    }
    EXPECT_TRUE(group.heap().verify().ok);
  }).join();
}

INSTANTIATE_TEST_SUITE_P(Cycles, PortsMarkingTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Generational") : std::string("FullOnly");
                         });

}  // namespace
}  // namespace shoal::test
