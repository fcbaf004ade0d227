#include "support/spool_oracle.hpp"

#include <doctest/doctest.h>

#include <sstream>

#include "support/process.hpp"

namespace rtm::test {

command_result run(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  temp_dir dir;
  child_process::options opts;
  opts.argv = std::move(argv);
  opts.stdout_file = dir.file("out");
  opts.stderr_file = dir.file("err");
  command_result r;
  {
    child_process p(std::move(opts));
    const auto rc = p.wait(timeout);
    r.code = rc ? *rc : -1;
  }  // killed and reaped here on a timeout
  r.output = read_file(dir.file("out")) + read_file(dir.file("err"));
  return r;
}

std::string joined(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    out += (out.empty() ? "" : " ") + a;
  }
  return out;
}

std::uint64_t json_number(const std::string& text, const std::string& name) {
  const std::string key = "\"" + name + "\":";
  const auto at = text.find(key);
  REQUIRE_MESSAGE(at != std::string::npos, name << " not in " << text);
  return std::stoull(text.substr(at + key.size()));
}

std::string json_string(const std::string& text, const std::string& name) {
  const std::string key = "\"" + name + "\":\"";
  const auto at = text.find(key);
  if (at == std::string::npos) {
    return {};
  }
  return text.substr(at + key.size(), text.find('"', at + key.size()) - at - key.size());
}

std::set<std::string> spool_dump(const std::string& spool_dir, std::string& summary) {
  const command_result r = run({env_path("RTM_BRIDGE_BIN"), "--spool-dump", spool_dir});
  REQUIRE_MESSAGE(r.code == 0, r.output);
  std::set<std::string> ids;
  std::istringstream lines(r.output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("{\"seq\":", 0) == 0) {
      const std::string id = json_string(line, "id");
      CHECK_MESSAGE(!id.empty(), line);
      CHECK_MESSAGE(ids.insert(id).second, "listed twice: " << line);
    } else if (line.rfind("spool ", 0) == 0) {
      summary = line;
    }
  }
  return ids;
}

topic_census take_census(const std::vector<consumed>& records) {
  topic_census c;
  for (const auto& r : records) {
    ++c.records;
    const std::string id = json_string(r.payload, "id");
    if (!c.ids.insert(id).second) {
      ++c.duplicates;
      continue;
    }
    if (r.payload.find("stream event") == std::string::npos) {
      continue;  // not from the fixture's "stream" command (a warm-up burst)
    }
    const auto at = r.payload.find("\"seq\":");
    REQUIRE(at != std::string::npos);
    const long seq = std::stol(r.payload.substr(at + 6));
    auto [it, first] = c.last_seq.emplace(r.key.value_or(""), seq);
    if (!first) {
      c.out_of_order += seq <= it->second ? 1 : 0;
      it->second = std::max(it->second, seq);
    }
  }
  return c;
}

}  // namespace rtm::test
