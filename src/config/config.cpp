#include "config/config.hpp"

namespace rtm::config {

const char* to_string(connection_kind kind) noexcept {
  switch (kind) {
    case connection_kind::acme:
      return "acme";
    case connection_kind::slack:
      return "slack";
  }
  return "unknown";
}

const char* to_string(acme_tier tier) noexcept {
  switch (tier) {
    case acme_tier::user:
      return "user";
    case acme_tier::app:
      return "app";
  }
  return "unknown";
}

}  // namespace rtm::config
