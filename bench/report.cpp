#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "util/json_writer.hpp"

namespace rtm::bench {

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string report::table() const {
  std::size_t w_section = 7;
  std::size_t w_label = 6;
  std::size_t w_value = 8;
  std::size_t w_target = 6;
  for (const auto& r : rows_) {
    w_section = std::max(w_section, r.section.size());
    w_label = std::max(w_label, r.label.size());
    w_value = std::max(w_value, r.shown.size());
    w_target = std::max(w_target, r.target.size());
  }
  auto pad = [](const std::string& s, std::size_t w) { return s + std::string(w - std::min(w, s.size()), ' '); };
  std::string out;
  for (const auto& [key, value] : settings_) {
    out += key + ": " + value + '\n';
  }
  out += pad("section", w_section) + "  " + pad("metric", w_label) + "  " + pad("measured", w_value) + "  " +
         pad("target", w_target) + "  result\n";
  out += std::string(w_section + w_label + w_value + w_target + 14, '-') + '\n';
  for (const auto& r : rows_) {
    const std::string verdict = !r.pass.has_value() ? (r.target.empty() ? "" : "n/a") : (*r.pass ? "PASS" : "FAIL");
    out += pad(r.section, w_section) + "  " + pad(r.label, w_label) + "  " + pad(r.shown, w_value) + "  " +
           pad(r.target, w_target) + "  " + verdict + '\n';
  }
  for (const auto& n : notes_) {
    out += "note: " + n + '\n';
  }
  for (const auto& e : errors_) {
    out += "ERROR: " + e + '\n';
  }
  return out;
}

std::string report::json() const {
  std::string out = "{\n  \"settings\": {";
  for (std::size_t i = 0; i < settings_.size(); ++i) {
    out += i == 0 ? "" : ", ";
    json::append_string(out, settings_[i].first);
    out += ": ";
    json::append_string(out, settings_[i].second);
  }
  out += "},\n  \"results\": [\n";
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const auto& r = rows_[i];
    out += "    {\"section\": ";
    json::append_string(out, r.section);
    out += ", \"key\": ";
    json::append_string(out, r.key);
    out += ", \"label\": ";
    json::append_string(out, r.label);
    out += ", \"value\": ";
    out += std::isfinite(r.value) ? fixed(r.value, 6) : "null";
    out += ", \"unit\": ";
    json::append_string(out, r.unit);
    out += ", \"shown\": ";
    json::append_string(out, r.shown);
    out += ", \"target\": ";
    json::append_string(out, r.target);
    out += ", \"pass\": ";
    out += !r.pass.has_value() ? "null" : (*r.pass ? "true" : "false");
    out += i + 1 < rows_.size() ? "},\n" : "}\n";
  }
  out += "  ],\n  \"notes\": [";
  for (std::size_t i = 0; i < notes_.size(); ++i) {
    out += i == 0 ? "" : ", ";
    json::append_string(out, notes_[i]);
  }
  out += "],\n  \"errors\": [";
  for (std::size_t i = 0; i < errors_.size(); ++i) {
    out += i == 0 ? "" : ", ";
    json::append_string(out, errors_[i]);
  }
  out += "]\n}\n";
  return out;
}

}  // namespace rtm::bench
