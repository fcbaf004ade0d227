#pragma once

#include <string>
#include <string_view>

// The pieces of the Prometheus text exposition format (0.0.4) every metrics family here is written with.
namespace rtm::metrics::exposition {

// A label value, escaped as the format asks: backslash, double quote and newline.
void append_label_value(std::string& out, std::string_view value);
// A sample value: integers exactly, others with 15 significant digits.
void append_number(std::string& out, double value);
// The "# HELP" and "# TYPE" lines of a family.
void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type);

}  // namespace rtm::metrics::exposition
