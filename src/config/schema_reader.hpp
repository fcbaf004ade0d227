#pragma once

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

// The loader's walk over one YAML document, driven by the schema tables (config/schema.hpp): every key of every
// section is taken, judged and stored, or its problem recorded; keys the tables do not know are reported as unknown.
// Rules between keys (max_delay >= initial_delay, event <= frame limit, one connection per name and per token, a
// librdkafka queue that holds the largest event) are checked once the keys they involve are read.
namespace rtm::config::detail {

// Fills `cfg` from `root` (the document's top node); every problem goes to `out`. Returns whether the file holds an
// inline secret ({value: ...}, or a sensitive kafka property in clear), for the file-permission warning.
[[nodiscard]] bool read_document(const field& root, config& cfg, problem_list& out);

}  // namespace rtm::config::detail
