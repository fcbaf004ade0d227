#include "support/kcat.hpp"

#include <doctest/doctest.h>
#include <simdjson.h>

#include <chrono>
#include <fstream>

#include "support/process.hpp"

namespace rtm::test {

using namespace std::chrono_literals;

std::optional<std::string> consumed::header(std::string_view name) const {
  std::optional<std::string> found;
  for (const auto& [k, v] : headers) {
    if (k == name) {
      CHECK_MESSAGE(!found, "header ", name, " appears twice");
      found = v;
    }
  }
  return found;
}

namespace {

// Appends one record per complete line of kcat -J output in `text`; returns the bytes taken (up to the last newline).
std::size_t parse_lines(std::string_view text, std::vector<consumed>& records) {
  simdjson::ondemand::parser parser;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      break;  // a line kcat is still writing
    }
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty()) {
      continue;
    }
    const simdjson::padded_string json(line);
    auto doc = parser.iterate(json);
    consumed c;
    c.topic = std::string(std::string_view(doc["topic"].get_string()));
    c.partition = static_cast<int>(std::int64_t(doc["partition"].get_int64()));
    c.offset = doc["offset"].get_int64();
    auto headers = doc["headers"];
    if (headers.error() == simdjson::SUCCESS) {
      std::vector<std::string> flat;
      for (auto h : headers.get_array()) {
        flat.emplace_back(std::string_view(h.get_string()));
      }
      REQUIRE(flat.size() % 2 == 0);
      for (std::size_t i = 0; i < flat.size(); i += 2) {
        c.headers.emplace_back(flat[i], flat[i + 1]);
      }
    }
    auto key = doc["key"];
    if (!key.is_null()) {
      c.key = std::string(std::string_view(key.get_string()));
    }
    c.payload = std::string(std::string_view(doc["payload"].get_string()));
    records.push_back(std::move(c));
  }
  return start;
}

}  // namespace

std::vector<consumed> read_topic(const std::string& bootstrap, const std::string& topic) {
  temp_dir dir;
  const std::string out = dir.file("kcat.jsonl");
  child_process::options opts;
  opts.argv = {"kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q"};
  opts.stdout_file = out;
  child_process kcat(std::move(opts));
  const auto status = kcat.wait(60s);
  REQUIRE_MESSAGE(status.has_value(), "kcat did not finish reading ", topic);
  REQUIRE(*status == 0);
  std::vector<consumed> records;
  // kcat -e has exited: a last line without its newline is complete too.
  parse_lines(read_file(out) + '\n', records);
  return records;
}

struct topic_follower::state {
  temp_dir dir;
  std::string out = dir.file("kcat.jsonl");
  std::optional<child_process> kcat;
  std::streamoff parsed = 0;  // bytes of `out` already parsed
};

topic_follower::topic_follower(const std::string& bootstrap, const std::string& topic)
    : state_(std::make_unique<state>()) {
  child_process::options opts;
  opts.argv = {"kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-u", "-J", "-q"};
  opts.stdout_file = state_->out;
  state_->kcat.emplace(std::move(opts));
}

topic_follower::~topic_follower() = default;  // child_process stops and reaps kcat

std::size_t topic_follower::poll() {
  std::ifstream in(state_->out, std::ios::binary);
  in.seekg(state_->parsed);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  state_->parsed += static_cast<std::streamoff>(parse_lines(text, records_));
  return records_.size();
}

}  // namespace rtm::test
