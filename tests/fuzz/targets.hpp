#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

// The fuzz targets' entry points. Each tests/fuzz/<target>.cpp defines one; built with -DRTM_LIBFUZZER it also
// defines LLVMFuzzerTestOneInput around it (the clang build, scripts/fuzz), and without it the corpus replay test
// (test_fuzz_corpus, the ordinary gcc build) calls the same functions on every saved input.
// An entry returns normally when every invariant held; a broken invariant aborts (libFuzzer then saves the input as
// a crash, doctest reports the corpus file it was replaying).
namespace rtm::fuzz {

void socketio_codec(const std::uint8_t* data, std::size_t size);
void slack_frame(const std::uint8_t* data, std::size_t size);
void envelope(const std::uint8_t* data, std::size_t size);
void config_loader(const std::uint8_t* data, std::size_t size);
void spool_segment(const std::uint8_t* data, std::size_t size);
void socket_frame(const std::uint8_t* data, std::size_t size);
void command(const std::uint8_t* data, std::size_t size);

// A broken invariant: says which, on stderr, and aborts. Never an exception: the code under test must not be able
// to swallow it, and a fuzzer treats an abort as a finding.
[[noreturn]] inline void invariant_failed(const char* target, const char* what, int line) noexcept {
  std::fprintf(stderr, "fuzz %s: invariant broken at line %d: %s\n", target, line, what);
  std::fflush(stderr);
  std::abort();
}

// Splits fuzz input into fields at a separator byte, so one flat input feeds several arguments.
class splitter {
 public:
  splitter(const std::uint8_t* data, std::size_t size) noexcept
      : rest_(reinterpret_cast<const char*>(data), size) {}  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)

  // The next field up to '\x1f' (unit separator) or the end; everything left for the last field asked for.
  std::string_view next() noexcept {
    const auto cut = rest_.find('\x1f');
    if (cut == std::string_view::npos) {
      const std::string_view field = rest_;
      rest_ = {};
      return field;
    }
    const std::string_view field = rest_.substr(0, cut);
    rest_.remove_prefix(cut + 1);
    return field;
  }
  [[nodiscard]] std::string_view rest() const noexcept { return rest_; }

 private:
  std::string_view rest_;
};

}  // namespace rtm::fuzz

#define RTM_FUZZ_CHECK(target, condition)                          \
  do {                                                             \
    if (!(condition)) {                                            \
      ::rtm::fuzz::invariant_failed(target, #condition, __LINE__); \
    }                                                              \
  } while (false)
