// Replays every saved fuzz input (tests/fuzz/corpus/<target>/*) through the same entry functions the libFuzzer
// targets call, in the ordinary gcc + sanitizer build: a crash or invariant the fuzzer once found stays fixed, and
// the seeds keep the invariants honest without clang.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/fuzz/targets.hpp"

namespace {

namespace fs = std::filesystem;

using entry = void (*)(const std::uint8_t*, std::size_t);

fs::path corpus_dir(const char* target) {
  const char* root = std::getenv("RTM_SOURCE_ROOT");  // NOLINT(concurrency-mt-unsafe): read before any thread
  REQUIRE_MESSAGE(root != nullptr, "RTM_SOURCE_ROOT is not set (meson test sets it)");
  return fs::path(root) / "tests" / "fuzz" / "corpus" / target;
}

std::vector<std::uint8_t> read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every regular file of the target's corpus, in name order so a failure is reproducible. Returns how many ran.
std::size_t replay(const char* target, entry run) {
  const fs::path dir = corpus_dir(target);
  REQUIRE_MESSAGE(fs::is_directory(dir), dir.string() << " is missing");
  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(dir)) {
    if (item.is_regular_file()) {
      files.push_back(item.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    // On an abort (a broken invariant, a sanitizer report) doctest prints this with the failing test case.
    INFO("corpus file: ", file.string());
    const std::vector<std::uint8_t> bytes = read_all(file);
    // A one-byte buffer stands in for an empty file's null data pointer, as libFuzzer never passes null.
    const std::uint8_t none = 0;
    run(bytes.empty() ? &none : bytes.data(), bytes.size());
  }
  return files.size();
}

}  // namespace

TEST_CASE("fuzz corpus replay: socketio_codec") {
  CHECK(replay("socketio_codec", rtm::fuzz::socketio_codec) >= 5);
}

TEST_CASE("fuzz corpus replay: slack_frame") {
  CHECK(replay("slack_frame", rtm::fuzz::slack_frame) >= 5);
}

TEST_CASE("fuzz corpus replay: envelope") {
  CHECK(replay("envelope", rtm::fuzz::envelope) >= 5);
}

TEST_CASE("fuzz corpus replay: config_loader") {
  CHECK(replay("config_loader", rtm::fuzz::config_loader) >= 3);
}

TEST_CASE("fuzz corpus replay: socket_frame") {
  CHECK(replay("socket_frame", rtm::fuzz::socket_frame) >= 5);
}

TEST_CASE("fuzz corpus replay: spool_segment") {
  CHECK(replay("spool_segment", rtm::fuzz::spool_segment) >= 4);
}

TEST_CASE("fuzz corpus replay: command") {
  CHECK(replay("command", rtm::fuzz::command) >= 8);
}
