// The AST corpus loader (ast/): the file checks, the section decoder's typed errors, the
// Shoal forest against the native one, every mode of the main job on a small corpus, and
// the loader under GC torture.
#include <gtest/gtest.h>

#include <thread>

#include "ast/corpus_file.h"
#include "ast/digest.h"
#include "ast/message_codec.h"
#include "ast/native_forest.h"
#include "ast/section_decoder.h"
#include "ast/shoal_forest.h"
#include "tests/ast/corpus_writer.h"
#include "tests/test_support.h"

namespace shoal::ast {
namespace {

using testing::CorpusSpec;
using testing::SectionBuilder;
using testing::sample_spec;
using testing::write_corpus;

ForestDigest native_digest(const CorpusFile& f) {
  native::StringTable<native::NewDeletePolicy> strings(f);
  native::Builder<native::NewDeletePolicy> b(f, strings);
  DigestSink sink(f.kind_count());
  std::vector<native::Word> stack;
  for (size_t m = 0; m < f.module_count(); ++m) {
    const native::Word root = native::load_module(f, m, b);
    native::digest_tree(root, sink, stack);
    native::free_tree<native::NewDeletePolicy>(root, stack);
  }
  return sink.finish();
}

std::vector<uint64_t> counts(const CorpusFile& f) {
  CountingBuilder c(f.kind_count());
  for (size_t m = 0; m < f.module_count(); ++m) decode_module(f, m, c);
  return c.per_kind();
}

// Loads every module with one thread into a forest (a RefArray) and digests it.
ForestDigest shoal_digest(Heap& heap, const CorpusFile& f) {
  const NodeClasses classes(f);
  StringTable strings(heap, f);
  ShoalBuilder b(heap, f, classes, strings);
  Ref<RefArray> forest = RefArray::create(f.module_count());
  for (size_t m = 0; m < f.module_count(); ++m) forest->set(m, load_module(f, m, b));
  return digest_forest(forest, classes);
}

// Expects `fn` to throw a FormatError whose expectation mentions `expected` (at `offset`
// unless it is UINT64_MAX).
template <class F>
void expect_format_error(F&& fn, const std::string& expected, uint64_t offset = UINT64_MAX) {
  try {
    fn();
    ADD_FAILURE() << "no FormatError; expected one about: " << expected;
  } catch (const FormatError& e) {
    EXPECT_NE(e.expected().find(expected), std::string::npos) << e.what();
    if (offset != UINT64_MAX) {
      EXPECT_EQ(e.offset(), offset) << e.what();
    }
    EXPECT_NE(std::string(e.what()).find("offset " + std::to_string(e.offset())), std::string::npos);
  }
}

TEST(CorpusFileTest, OpensTheSampleAndIndexesIt) {
  const auto bytes = write_corpus(sample_spec());
  const CorpusFile f = CorpusFile::from_bytes(bytes);
  EXPECT_EQ(f.module_count(), 3u);
  EXPECT_EQ(f.kind_count(), 5u);
  EXPECT_EQ(f.kind(3).name, "Name");
  ASSERT_EQ(f.kind(3).fields.size(), 2u);
  EXPECT_EQ(f.kind(3).fields[1], "ctx");
  EXPECT_EQ(f.module(1).name, "mod_b");
  EXPECT_EQ(f.total_nodes(), 8u + 9u + 1u);
  EXPECT_EQ(f.max_module_nodes(), 9u);
  const std::vector<uint64_t> c = counts(f);
  EXPECT_EQ(c, (std::vector<uint64_t>{3, 3, 10, 1, 1}));
}

TEST(CorpusFileTest, Crc32MatchesZlib) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32({reinterpret_cast<const uint8_t*>(s.data()), s.size()}), 0xCBF43926u);
  EXPECT_EQ(crc32({}), 0u);
}

TEST(CorpusFileTest, OpenReportsAMissingFile) {
  EXPECT_THROW(CorpusFile::open("/nonexistent/corpus.sast"), CorpusIoError);
}

TEST(CorpusFileTest, HeaderErrorsNameOffsetAndExpectation) {
  auto bytes = write_corpus(sample_spec());
  auto bad = bytes;
  bad[0] = 'X';
  expect_format_error([&] { CorpusFile::from_bytes(bad); }, "magic", 0);
  bad = bytes;
  bad[8] = 2;
  expect_format_error([&] { CorpusFile::from_bytes(bad); }, "format version 1", 8);
  expect_format_error([&] { CorpusFile::from_bytes(std::span<const uint8_t>(bytes.data(), 20)); }, "header");
  expect_format_error([&] { CorpusFile::from_bytes({}); }, "header", 0);
  bad = bytes;
  bad[16] = 0xff;  // string count far beyond the table
  bad[17] = 0xff;
  expect_format_error([&] { CorpusFile::from_bytes(bad); }, "string count", 16);
  bad = bytes;
  bad.push_back(0);  // a byte after the index
  expect_format_error([&] { CorpusFile::from_bytes(bad); }, "end of the file");
  CorpusSpec twice = sample_spec();
  twice.kinds.push_back(twice.kinds[1]);  // Expr(value) again
  expect_format_error([&] { CorpusFile::from_bytes(write_corpus(twice)); }, "distinct kinds", kHeaderBytes);
}

TEST(CorpusFileTest, EveryTruncationIsAFormatErrorNeverACrash) {
  const auto bytes = write_corpus(sample_spec());
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    EXPECT_THROW(CorpusFile::from_bytes(std::span<const uint8_t>(bytes.data(), n)), FormatError);
  }
}

// Every byte of the file flipped, one at a time: the file is rejected with a FormatError
// when opened or when a section is decoded, or - where the flip lands in a value the
// format cannot check (a line number, a float) - it loads, and the Shoal and native
// forests agree. Flips inside sections are tried twice: as they are (the CRC catches
// them) and with the CRC recomputed, so the decoder's own checks meet them.
TEST(CorpusFileTest, EverySingleByteCorruptionIsCaughtOrHarmless) {
  std::vector<uint64_t> offsets;
  const auto bytes = write_corpus(sample_spec(), &offsets);
  const CorpusFile good = CorpusFile::from_bytes(bytes);
  const uint64_t sections_end = good.module(good.module_count() - 1).offset + good.module(good.module_count() - 1).length;
  Heap heap;
  MutatorScope attach(heap);
  size_t rejected = 0, loaded = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      for (bool fix : {false, true}) {
        if (fix && (i < offsets[0] || i >= sections_end)) continue;
        auto bad = bytes;
        bad[i] ^= mask;
        if (fix) testing::fix_crcs(bad);
        try {
          const CorpusFile f = CorpusFile::from_bytes(bad);
          const ForestDigest n = native_digest(f);
          EXPECT_EQ(shoal_digest(heap, f), n) << "byte " << i;
          ++loaded;
        } catch (const FormatError&) {
          ++rejected;
        }
      }
    }
  }
  EXPECT_GT(rejected, bytes.size() * 2);
  EXPECT_GT(loaded, 0u);
  EXPECT_TRUE(heap.verify().ok);
}

class SectionErrorTest : public ::testing::Test {
 protected:
  // A corpus whose one module is `b`, with a correct CRC; the decoder must reject it.
  void expect_rejected(const SectionBuilder& b, const std::string& expected, uint64_t offset_in_body = UINT64_MAX) {
    CorpusSpec s = sample_spec();
    s.modules = {{13, b}};
    std::vector<uint64_t> offsets;
    const auto bytes = write_corpus(s, &offsets);
    const CorpusFile f = CorpusFile::from_bytes(bytes);
    const uint64_t at = offset_in_body == UINT64_MAX ? UINT64_MAX : offsets[0] + 8 + offset_in_body;
    expect_format_error([&] {
      CountingBuilder c(f.kind_count());
      decode_module(f, 0, c);
    }, expected, at);
    // The Shoal builder sees the same error and leaves nothing behind in the forest.
    Heap heap;
    MutatorScope attach(heap);
    const NodeClasses classes(f);
    StringTable strings(heap, f);
    ShoalBuilder builder(heap, f, classes, strings);
    Ref<RefArray> forest = RefArray::create(1);
    EXPECT_THROW(forest->set(0, load_module(f, 0, builder)), FormatError);
    EXPECT_TRUE(forest->get(0).is_null());
    EXPECT_TRUE(heap.verify().ok);
  }
};

TEST_F(SectionErrorTest, KindOutOfRange) {
  SectionBuilder b;
  b.node(9, 0);
  expect_rejected(b, "node kind below 5", 0);
}

TEST_F(SectionErrorTest, StringIdOutOfRange) {
  SectionBuilder b;
  b.node(3, 1).str(99).none();
  expect_rejected(b, "string id below 16", 3);
}

TEST_F(SectionErrorTest, ForwardChildReference) {
  SectionBuilder b;
  b.node(1, 0).child(0);  // itself
  expect_rejected(b, "child index below 0", 3);
  SectionBuilder c;
  c.node(4, 0).node(1, 0).child(5);
  expect_rejected(c, "child index below 1", 5);
}

TEST_F(SectionErrorTest, NodeWithTwoParents) {
  SectionBuilder b;
  b.node(4, 0).node(3, 0).str(10).child(0).node(1, 0).child(0);
  expect_rejected(b, "each node is the child of one node");
}

TEST_F(SectionErrorTest, NodeWithoutAParent) {
  SectionBuilder b;
  b.node(4, 0).node(4, 0).node(3, 0).str(10).child(1);  // node 0 is nobody's child
  expect_rejected(b, "every node but the last is the child of a node");
}

TEST_F(SectionErrorTest, ListLengthsBeyondTheSection) {
  // Nested lists that each claim almost the whole section: the second is refused before
  // it is allocated (the elements of all lists together cannot outnumber the bytes).
  SectionBuilder b;
  b.node(0, 0).list(40).list(40);
  for (int i = 0; i < 50; ++i) b.none();
  expect_rejected(b, "list length that fits the section");
}

TEST_F(SectionErrorTest, UnknownTag) {
  SectionBuilder b;
  b.node(1, 0).raw(12);
  expect_rejected(b, "value tag 0..11", 2);
}

TEST_F(SectionErrorTest, ListLongerThanTheSection) {
  SectionBuilder b;
  b.node(0, 0).list(1000).none();
  expect_rejected(b, "list length that fits");
}

TEST_F(SectionErrorTest, ListsNestedTooDeep) {
  SectionBuilder b;
  b.node(0, 0);
  for (int i = 0; i <= kMaxListDepth; ++i) b.list(1);
  b.none();
  expect_rejected(b, "nested at most");
}

TEST_F(SectionErrorTest, TruncatedValue) {
  SectionBuilder b;
  b.node(2, 0).raw(kTagFloat).raw(1).raw(2);  // 2 of a float's 8 bytes
  expect_rejected(b, "8-byte float");
}

TEST_F(SectionErrorTest, TrailingBytes) {
  SectionBuilder b;
  b.node(4, 0).raw(0);
  expect_rejected(b, "end of the section");
}

TEST_F(SectionErrorTest, OverlongVarint) {
  SectionBuilder b;
  b.node(2, 0).raw(kTagInt);
  for (int i = 0; i < 11; ++i) b.raw(0xff);
  b.raw(0).none();
  expect_rejected(b, "varint");
}

TEST(SectionDecoderTest, CrcAndCountMismatchesAreCaught) {
  std::vector<uint64_t> offsets;
  auto bytes = write_corpus(sample_spec(), &offsets);
  auto bad = bytes;
  bad[offsets[0] + 9] ^= 0x02;  // inside the first node: the CRC no longer matches
  {
    const CorpusFile f = CorpusFile::from_bytes(bad);
    CountingBuilder c(f.kind_count());
    expect_format_error([&] { decode_module(f, 0, c); }, "CRC-32", offsets[0]);
  }
  bad = bytes;
  bad[offsets[1] + 4] = 3;  // the section says 3 nodes, the index 9
  testing::fix_crcs(bad);
  {
    const CorpusFile f = CorpusFile::from_bytes(bad);
    CountingBuilder c(f.kind_count());
    expect_format_error([&] { decode_module(f, 1, c); }, "node count of the index entry, 9", offsets[1] + 4);
  }
  bad = bytes;
  bad[offsets[0]] = 'X';
  testing::fix_crcs(bad);
  {
    const CorpusFile f = CorpusFile::from_bytes(bad);
    CountingBuilder c(f.kind_count());
    expect_format_error([&] { decode_module(f, 0, c); }, "MODL", offsets[0]);
  }
}

TEST(ShoalForestTest, BuildsEveryValueKind) {
  const auto bytes = write_corpus(sample_spec());
  const CorpusFile f = CorpusFile::from_bytes(bytes);
  Heap heap;
  MutatorScope attach(heap);
  const NodeClasses classes(f);
  StringTable strings(heap, f);
  ShoalBuilder b(heap, f, classes, strings);

  const Value a = load_module(f, 0, b);
  ASSERT_EQ(classes.kind_of(a.as_object()->class_id()), 0);
  EXPECT_EQ(class_info(a.as_object()->class_id()).name, "ast.Module");
  Ref<RefArray> body = cast<RefArray>(NodeClasses::fields(a.as_object())[0].load());
  ASSERT_EQ(body->length(), 3u);
  const Object* expr = body->get(0).as_object();
  const Object* name = NodeClasses::fields(expr)[0].load().as_object();
  EXPECT_EQ(NodeClasses::line(name), 1);
  EXPECT_EQ(cast<String>(NodeClasses::fields(name)[0].load())->view(), "x");
  const Object* c1 = NodeClasses::fields(body->get(1).as_object())[0].load().as_object();
  EXPECT_EQ(NodeClasses::fields(c1)[0].load().as_int(), -5);
  const Object* c2 = NodeClasses::fields(body->get(2).as_object())[0].load().as_object();
  EXPECT_EQ(cast<AstInt>(NodeClasses::fields(c2)[0].load())->value, int64_t{1} << 62);  // boxed: beyond 63 bits

  const Value m2 = load_module(f, 1, b);
  Ref<RefArray> consts = cast<RefArray>(NodeClasses::fields(m2.as_object())[0].load());
  auto value = [&](size_t i) { return NodeClasses::fields(consts->get(i).as_object())[0].load(); };
  EXPECT_EQ(cast<AstBigInt>(value(0))->digits.get()->view(), "123456789012345678901234567890");
  EXPECT_TRUE(is_shareable(value(0)));
  EXPECT_EQ(cast<AstFloat>(value(1))->value, 2.5);
  EXPECT_EQ(cast<AstBool>(value(2))->value, 1);
  EXPECT_EQ(cast<AstBool>(value(3))->value, 0);
  EXPECT_EQ(cast<ByteArray>(value(4))->length(), 5u);
  EXPECT_EQ(cast<ByteArray>(value(4))->get(4), 0xff);
  EXPECT_EQ(cast<AstComplex>(value(5))->im, 1.5);
  EXPECT_TRUE(try_cast<AstEllipsis>(value(6)));
  EXPECT_EQ(cast<String>(value(7))->view(), "hello");
  Ref<RefArray> nested = cast<RefArray>(consts->get(8));
  EXPECT_TRUE(nested->get(0).is_null());
  // Interned: the same String object wherever the file uses the same string.
  EXPECT_EQ(nested->get(1), NodeClasses::fields(name)[0].load());
  heap.collect();
  EXPECT_TRUE(heap.verify().ok);
}

TEST(ShoalForestTest, DigestsAgreeWithTheNativeForestAndTheFile) {
  const auto bytes = write_corpus(sample_spec());
  const CorpusFile f = CorpusFile::from_bytes(bytes);
  Heap heap;
  MutatorScope attach(heap);
  const ForestDigest s = shoal_digest(heap, f);
  const ForestDigest n = native_digest(f);
  EXPECT_EQ(s, n);
  EXPECT_EQ(s.per_kind, counts(f));
  EXPECT_EQ(s.nodes, f.total_nodes());
  EXPECT_EQ(s.modules, 3u);
}

TEST(ShoalForestTest, DigestSeesEveryValue) {
  // Change one constant: the hash must change, the counts not.
  CorpusSpec spec = sample_spec();
  const CorpusFile f0 = CorpusFile::from_bytes(write_corpus(spec));
  spec.strings[11] = "hellp";
  const CorpusFile f1 = CorpusFile::from_bytes(write_corpus(spec));
  const ForestDigest d0 = native_digest(f0), d1 = native_digest(f1);
  EXPECT_EQ(d0.per_kind, d1.per_kind);
  EXPECT_NE(d0.hash, d1.hash);
  SectionBuilder b;  // line numbers count too
  b.node(0, 7).list(0);
  spec.modules[2].section = b;
  EXPECT_NE(native_digest(CorpusFile::from_bytes(write_corpus(spec))).hash, d1.hash);
}

// A bigger corpus made of many modules: loaded by several threads into the shared heap
// under GC torture, with the heap verified after every collection.
CorpusSpec many_modules(int modules) {
  CorpusSpec s = sample_spec();
  std::vector<CorpusSpec::Module> ms;
  for (int i = 0; i < modules; ++i) {
    SectionBuilder b;
    const int n = 20 + i % 50;
    b.node(4, 0);
    for (int k = 1; k < n; ++k) b.node(3, static_cast<uint64_t>(k)).str(k % 2 ? 10 : 11).child(static_cast<uint64_t>(k - 1));
    b.node(0, 0).list(1).child(static_cast<uint64_t>(n - 1));
    ms.push_back({static_cast<uint32_t>(13 + i % 3), b});
  }
  for (auto& m : s.modules) ms.push_back(m);
  s.modules = ms;
  return s;
}

TEST(ShoalForestTest, ParallelLoadIntoTheSharedHeapUnderTorture) {
  const CorpusFile f = CorpusFile::from_bytes(write_corpus(many_modules(120)));
  const ForestDigest want = native_digest(f);
  for (bool concurrent : {true, false}) {
    SCOPED_TRACE(concurrent ? "concurrent marking" : "stop-the-world");
    HeapOptions o;
    o.gc_torture_interval = concurrent ? 13 : 97;
    o.concurrent_marking = concurrent;
    o.verify_after_gc = true;
    Heap heap(o);
    MutatorScope attach(heap);
    const NodeClasses classes(f);
    StringTable strings(heap, f);
    Ref<RefArray> forest = RefArray::create(f.module_count());
    std::atomic<size_t> next{0};
    std::vector<std::thread> loaders;
    for (int t = 0; t < 3; ++t)
      loaders.emplace_back([&] {
        MutatorScope worker(heap);
        ShoalBuilder b(heap, f, classes, strings);
        for (size_t m; (m = next.fetch_add(1)) < f.module_count();) forest->set(m, load_module(f, m, b));
      });
    run_native([&] {
      for (auto& l : loaders) l.join();
    });
    heap.collect();
    EXPECT_EQ(digest_forest(forest, classes), want);
    EXPECT_GT(heap.stats().collections, concurrent ? 1u : 20u);
  }
}

TEST(ShoalForestTest, IsolatesSendTreesByCopyAndBySerialization) {
  const CorpusFile f = CorpusFile::from_bytes(write_corpus(many_modules(40)));
  const ForestDigest want = native_digest(f);
  IsolateGroupOptions options;
  options.heap.gc_torture_interval = 211;
  IsolateGroup group(options);
  MutatorScope attach(group.heap());
  const NodeClasses classes(f);
  StringTable strings(group.heap(), f);
  for (bool serialize : {false, true}) {
    SCOPED_TRACE(serialize ? "serialize" : "copy");
    Isolate& main = group.create_isolate("main");
    IsolateScope in_main(main);
    Ref<RefArray> forest = RefArray::create(f.module_count());
    ReceivePort inbox(main);
    const SendPort to_main = inbox.send_port();
    std::thread loader([&] {
      IsolateScope in(group.create_isolate("loader"));
      ShoalBuilder b(group.heap(), f, classes, strings);
      std::vector<uint8_t> bytes;
      for (size_t m = 0; m < f.module_count(); ++m) {
        const Value root = load_module(f, m, b);
        if (serialize) {
          serialize_tree(root, bytes);
          auto message = ByteArray::create(bytes.size());
          std::memcpy(message->data(), bytes.data(), bytes.size());
          to_main.send(message.value(), SendMode::kTransferUnsafe);
        } else {
          to_main.send(root, SendMode::kCopy);
        }
      }
    });
    for (size_t m = 0; m < f.module_count(); ++m) {
      const Value v = inbox.receive();
      if (serialize) {
        auto message = cast<ByteArray>(v);
        forest->set(m, deserialize_tree(message->data(), message->length()));
      } else {
        forest->set(m, v);
      }
      // The tree belongs to main now: main may write it.
      EXPECT_EQ(forest->get(m).as_object()->owner(), main.id());
    }
    run_native([&] { loader.join(); });
    EXPECT_EQ(digest_forest(forest, classes), want);
  }
}

TEST(MessageCodecTest, RejectsMalformedMessages) {
  Heap heap;
  MutatorScope attach(heap);
  const uint8_t short_message[3] = {1, 2, 3};
  EXPECT_THROW(deserialize_tree(short_message, 3), InvalidArgument);
  std::vector<uint8_t> bytes;
  Ref<RefArray> a = RefArray::create(1);
  Ref<RefArray> shared = RefArray::create(0);
  a->set(0, shared.value());
  serialize_tree(a.value(), bytes);
  EXPECT_NO_THROW(deserialize_tree(bytes.data(), bytes.size()));
  bytes.push_back(0);
  EXPECT_THROW(deserialize_tree(bytes.data(), bytes.size()), InvalidArgument);
  // A DAG is not a tree, and neither is a cycle (refused, not walked for ever).
  Ref<RefArray> dag = RefArray::create(2);
  dag->set(0, shared.value());
  dag->set(1, shared.value());
  EXPECT_THROW(serialize_tree(dag.value(), bytes), InvalidArgument);
  Ref<RefArray> cycle = RefArray::create(1);
  cycle->set(0, cycle.value());
  EXPECT_THROW(serialize_tree(cycle.value(), bytes), InvalidArgument);
}

}  // namespace
}  // namespace shoal::ast
