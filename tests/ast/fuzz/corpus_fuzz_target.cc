// The corpus loader's fuzz target (libFuzzer's entry point; docs/ast_format.md,
// "Fuzzing"). Any bytes: CorpusFile::from_bytes, then every section decoded twice - with
// the CRC check (what a user runs) and without it (so mutations reach the decoder) -
// into native nodes and into Shoal objects; the two forests must digest alike. A
// FormatError is the expected outcome for bad input; anything else - a crash, a
// sanitizer report, another exception, digests that differ - is a finding.
//
// Built as `shoal_ast_fuzz` with -DSHOAL_FUZZ=ON (clang; libFuzzer), and, in every
// build, into `shoal_ast_fuzz_replay`, which runs the inputs under
// tests/ast/fuzz_regressions/ (ctest ast_fuzz_regressions).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "ast/corpus_file.h"
#include "ast/digest.h"
#include "ast/native_forest.h"
#include "ast/section_decoder.h"
#include "ast/shoal_forest.h"
#include "shoal/shoal.h"

namespace {

using namespace shoal::ast;

shoal::Heap& fuzz_heap() {
  static shoal::Heap* heap = [] {
    shoal::HeapOptions o;
    o.heap_limit = size_t{1} << 30;
    o.verify_after_gc = true;
    return new shoal::Heap(o);
  }();
  return *heap;
}

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "corpus fuzz: %s\n", what);
  std::abort();
}

void load_all(const CorpusFile& f, bool check_crc) {
  std::vector<ForestDigest> digests;
  {
    native::StringTable<native::NewDeletePolicy> strings(f);
    native::Builder<native::NewDeletePolicy> b(f, strings);
    DigestSink sink(f.kind_count());
    std::vector<native::Word> stack;
    for (size_t m = 0; m < f.module_count(); ++m) {
      native::Word root;
      try {
        root = decode_module(f, m, b, check_crc);
      } catch (const FormatError&) {
        continue;
      }
      native::digest_tree(root, sink, stack);
      native::free_tree<native::NewDeletePolicy>(root, stack);
    }
    digests.push_back(sink.finish());
  }
  // Node classes are defined for good (as a VM's are): past a few thousand distinct kind
  // signatures, inputs with new ones skip the Shoal half, so a long run cannot fill
  // the class table.
  {
    static std::set<std::string> signatures;
    size_t fresh = 0;
    std::vector<std::string> mine;
    for (size_t k = 0; k < f.kind_count(); ++k) {
      std::string sig(f.kind(k).name);
      for (std::string_view field : f.kind(k).fields) {
        sig.push_back(',');
        sig.append(field);
      }
      if (!signatures.count(sig)) ++fresh;
      mine.push_back(std::move(sig));
    }
    if (fresh > 0 && signatures.size() + fresh > 4096) return;
    signatures.insert(mine.begin(), mine.end());
  }
  shoal::MutatorScope attach(fuzz_heap());
  const NodeClasses classes(f);
  StringTable strings(fuzz_heap(), f);
  ShoalBuilder b(fuzz_heap(), f, classes, strings);
  DigestSink sink(f.kind_count());
  for (size_t m = 0; m < f.module_count(); ++m) {
    shoal::Value root;
    try {
      root = decode_module(f, m, b, check_crc);
    } catch (const FormatError&) {
      continue;
    }
    digest_tree(root, classes, sink);
  }
  if (!(sink.finish() == digests[0])) finding("the Shoal and native forests differ");
  static int runs = 0;
  if (++runs % 64 == 0) fuzz_heap().collect();  // verify_after_gc checks the heap
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const CorpusFile f = CorpusFile::from_bytes({data, size});
    load_all(f, true);
    load_all(f, false);
  } catch (const FormatError&) {
    // rejected: fine
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corpus fuzz: unexpected exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
