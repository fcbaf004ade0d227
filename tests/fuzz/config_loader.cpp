// Fuzz target: the YAML config loader (rtm::config::load_string), which reads whatever an operator wrote. The only
// exception allowed out is config::load_error, carrying at least one printable problem; anything else (a yaml-cpp
// exception, std::bad_variant_access, ...) would reach main() as an unexplained crash, so it aborts here. A config
// that loads must satisfy the rules the contract states, and its --check-config summary must build.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <set>
#include <string>
#include <string_view>
#include <typeinfo>

#include "config/config.hpp"
#include "config/loader.hpp"
#include "tests/fuzz/targets.hpp"

namespace rtm::fuzz {
namespace {

#define CHECK_CONFIG(condition) RTM_FUZZ_CHECK("config_loader", condition)

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

void check_loaded(const config::config& cfg) {
  CHECK_CONFIG(!cfg.kafka.brokers.empty());
  CHECK_CONFIG(cfg.kafka.shutdown_timeout.count() > 0);
  CHECK_CONFIG(cfg.kafka.delivery_timeout.count() >= 0);
  CHECK_CONFIG(!cfg.connections.empty());
  std::set<std::string_view> names;
  for (const auto& c : cfg.connections) {
    CHECK_CONFIG(valid_name(c.name));
    CHECK_CONFIG(names.insert(c.name).second);
    CHECK_CONFIG(c.protocol == 3 || c.protocol == 4);
    CHECK_CONFIG(c.reconnect.initial_delay.count() > 0);
    CHECK_CONFIG(c.reconnect.max_delay >= c.reconnect.initial_delay);
    CHECK_CONFIG(std::isfinite(c.reconnect.jitter));
    CHECK_CONFIG(c.reconnect.jitter >= 0.0 && c.reconnect.jitter <= 1.0);
    CHECK_CONFIG(c.ping_timeout.count() > 0);
  }
  const std::string text = config::summary(cfg);
  CHECK_CONFIG(!text.empty());
}

}  // namespace

void config_loader(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);  // NOLINT(*-reinterpret-cast)
  try {
    check_loaded(config::load_string(yaml, "fuzz.yaml"));
  } catch (const config::load_error& e) {
    CHECK_CONFIG(!e.problems().empty());
    for (const auto& p : e.problems()) {
      CHECK_CONFIG(p.file == "fuzz.yaml");
      CHECK_CONFIG(p.line >= 0 && p.column >= 0);
      CHECK_CONFIG(!p.message.empty());
      CHECK_CONFIG(!p.format().empty());
    }
    CHECK_CONFIG(std::string_view(e.what()).find("fuzz.yaml") != std::string_view::npos);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "config_loader: %s escaped load_string: %s\n", typeid(e).name(), e.what());
    invariant_failed("config_loader", "only config::load_error may escape load_string", __LINE__);
  }
  // Anything not derived from std::exception is not caught: it terminates, which the fuzzer reports as well.
}

}  // namespace rtm::fuzz

#ifdef RTM_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  rtm::fuzz::config_loader(data, size);
  return 0;
}
#endif
