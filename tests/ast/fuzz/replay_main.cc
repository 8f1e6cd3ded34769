// Runs the corpus fuzz target over files and directories given on the command line
// (the regression inputs under tests/ast/fuzz_regressions/), without libFuzzer.
// `--write-sample FILE` writes the test suite's sample corpus (a fuzzing seed);
// `--counts FILE` prints the node count of every kind by name, as
// `ast_corpus.py check --counts` does (ctest ast_corpus_cpp_agrees_with_python).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <map>

#include "ast/section_decoder.h"
#include "tests/ast/corpus_writer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc == 3 && std::string(argv[1]) == "--write-sample") {
    const auto bytes = shoal::ast::testing::write_corpus(shoal::ast::testing::sample_spec());
    std::ofstream(argv[2], std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return 0;
  }
  if (argc == 3 && std::string(argv[1]) == "--counts") {
    try {
      const auto f = shoal::ast::CorpusFile::open(argv[2]);
      shoal::ast::CountingBuilder counter(f.kind_count());
      for (size_t m = 0; m < f.module_count(); ++m) shoal::ast::decode_module(f, m, counter);
      std::map<std::string, uint64_t> by_name;
      for (size_t k = 0; k < f.kind_count(); ++k)
        if (counter.per_kind()[k]) by_name[std::string(f.kind(k).name)] += counter.per_kind()[k];
      for (const auto& [name, n] : by_name) std::printf("%s %llu\n", name.c_str(), static_cast<unsigned long long>(n));
      return 0;
    } catch (const shoal::Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 1;
    }
  }
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.emplace_back(argv[i]);
    }
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    std::ifstream in(p, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replayed %zu inputs: ok\n", files.size());
  return files.empty() ? 1 : 0;
}
