#pragma once

#include <string>

// docs/config.md: the reference of every config key, generated from the schema tables (config/schema.hpp) by
// `rtm-config-reference` (`ninja -C build config-reference` writes it into docs/); tests/config/schema_test.cpp fails
// when the committed file differs from what the tables generate.
namespace rtm::config::schema {

[[nodiscard]] std::string reference_markdown();

}  // namespace rtm::config::schema
