#include "metrics/exposition.hpp"

#include <cstdio>

namespace rtm::metrics::exposition {

void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_number(std::string& out, double value) {
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, "%.15g", value);
  out.append(buf, static_cast<std::size_t>(n));
}

void append_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace rtm::metrics::exposition
