#include "kafka/publish_harness.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <set>
#include <utility>

namespace rtm::test {

using namespace std::chrono_literals;

pipeline::event event_source::make(const std::string& team, const std::string& payload) const {
  pipeline::event ev;
  ev.connection = connection;
  ev.from = pipeline::source::acme;
  ev.name = name;
  ev.name_space = name_space;
  ev.team_id = team;
  ev.payload = payload;
  ev.received_at = std::chrono::system_clock::now();
  ev.received_steady = std::chrono::steady_clock::now();
  return ev;
}

event_source presence_events() {
  event_source presence;
  presence.name = "presence:change";
  presence.name_space = "presence";
  return presence;
}

std::string team_name(int i) {
  return "team-" + std::to_string(i) + "-42286ab3-b29a-4fde-8538";
}

std::string payload_for(const std::string& team, int n) {
  return R"({"team_id":")" + team + R"(","n":)" + std::to_string(n) + R"(,"big":163240180126629123,"txt":"é✓"})";
}

int n_of(const std::string& envelope) {
  const auto pos = envelope.find("\"n\":");
  REQUIRE(pos != std::string::npos);
  return std::stoi(envelope.substr(pos + 4));
}

std::string id_of(const std::string& envelope) {
  const auto pos = envelope.find("\"id\":\"");
  REQUIRE(pos != std::string::npos);
  return envelope.substr(pos + 6, envelope.find('"', pos + 6) - pos - 6);
}

std::vector<int> n_sequence(const std::vector<consumed>& records) {
  std::vector<int> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    out.push_back(n_of(r.payload));
  }
  return out;
}

void harness::start(kafka::publisher::tuning tune, std::optional<std::string> bootstrap) {
  cfg.brokers = "embedded";
  pub =
      std::make_unique<kafka::publisher>(io, cfg, metrics, bootstrap ? *bootstrap : cluster->bootstrap_servers(), tune);
  pub->set_backpressure_handler([this](bool pause) { backpressure.push_back(pause); });
  pub->set_fatal_handler([this](const std::string& reason) { fatal = reason; });
}

void harness::create_dead_letter_topics() {
  cfg.dead_letter_topic = "rtm.dead-letter";
  cluster->create_topic("rtm.message", 4, 3);
  cluster->create_topic("rtm.dead-letter", 2, 3);
}

void harness::run_turn(std::chrono::milliseconds d) {
  io.run_for(d);
  if (io.stopped()) {
    io.restart();
  }
}

void harness::run_for(std::chrono::milliseconds d) {
  run_until([] { return false; }, d);
}

bool harness::settled(std::chrono::milliseconds timeout) {
  return run_until([this] { return pub->outstanding() == 0 && pub->waiting() == 0; }, timeout);
}

void harness::feed(const std::string& team, int n) {
  io.poll();  // one turn of the loop between two frames, as a session's reads are separate handlers
  if (io.stopped()) {
    io.restart();
  }
  run_until([this] { return !paused(); }, 60s);
  REQUIRE_FALSE(paused());
  const std::string payload = payload_for(team, n);
  pub->on_event(source.make(team, payload));
}

bool harness::offer(const std::string& team, int n) {
  io.poll();
  if (io.stopped()) {
    io.restart();
  }
  if (paused()) {
    return false;
  }
  const std::string payload = payload_for(team, n);
  pub->on_event(source.make(team, payload));
  return true;
}

void harness::drain_and_stop() {
  std::optional<std::size_t> left;
  pub->drain(std::chrono::steady_clock::now() + 10s, [&left](std::size_t n) { left = n; });
  REQUIRE(run_until([&left] { return left.has_value(); }, 20s));
  CHECK(*left == 0);
}

bool harness::renders(std::string_view line) {
  return metrics.render().find(line) != std::string::npos;
}

void team_stream::feed(int count) {
  for (int k = 0; k < count; ++k, ++next) {
    const std::string team = team_name(next % 16);
    h.feed(team, sent[team]++);
  }
}

bool team_stream::offer() {
  const std::string team = team_name(next % 16);
  if (!h.offer(team, sent[team])) {
    return false;
  }
  ++sent[team];
  ++next;
  return true;
}

team_check team_stream::arrived_once_in_order() const {
  team_check got = collect(read_topic(h.cluster->bootstrap_servers(), "rtm.message"));
  CHECK(got.total == static_cast<std::size_t>(total()));
  CHECK(got.duplicates == 0);
  check_complete_in_order(got, sent);
  return got;
}

consumed failed_event_dead_letter(harness& h, const std::string& reason) {
  const auto dead = read_topic(h.cluster->bootstrap_servers(), "rtm.dead-letter");
  REQUIRE(dead.size() == 1);
  const consumed& r = dead[0];
  CHECK(r.key == "acme-main");
  CHECK(r.header("rtm-error") == reason);
  CHECK(r.header("rtm-original-topic") == "rtm.message");
  CHECK(r.header("rtm-event") == "message:updated");
  return r;
}

team_check collect(const std::vector<consumed>& records) {
  team_check out;
  std::set<std::string> ids;
  std::map<std::pair<int, std::string>, std::vector<const consumed*>> by_partition;
  for (const auto& r : records) {
    REQUIRE(r.key.has_value());
    by_partition[{r.partition, *r.key}].push_back(&r);
  }
  std::map<std::string, int> partition_of_team;
  // Named variables, not structured bindings: doctest's macros capture them in lambdas, which clang 14 refuses.
  for (const auto& entry : by_partition) {
    const auto& where = entry.first;
    const auto placed = partition_of_team.emplace(where.second, where.first);
    const bool fresh = placed.second;
    const int first_partition = placed.first->second;
    CHECK_MESSAGE(fresh, "team ", where.second, " spread over partitions ", first_partition, " and ", where.first);
    for (const consumed* r : entry.second) {
      ++out.total;
      if (!ids.insert(id_of(r->payload)).second) {
        ++out.duplicates;
        continue;
      }
      out.sequences[where.second].push_back(n_of(r->payload));
    }
  }
  return out;
}

int check_alternating(const std::vector<bool>& switches) {
  int pauses = 0;
  for (std::size_t i = 0; i < switches.size(); ++i) {
    pauses += switches[i] ? 1 : 0;
    if (i > 0) {
      CHECK(switches[i] != switches[i - 1]);
    }
  }
  return pauses;
}

void check_complete_in_order(const team_check& got, const std::map<std::string, int>& sent) {
  CHECK(got.sequences.size() == sent.size());
  for (const auto& entry : sent) {
    const std::string& team = entry.first;
    const int count = entry.second;
    const auto it = got.sequences.find(team);
    REQUIRE_MESSAGE(it != got.sequences.end(), "nothing arrived for ", team);
    const auto& seq = it->second;
    CHECK_MESSAGE(seq.size() == static_cast<std::size_t>(count), team, ": ", seq.size(), " of ", count, " arrived");
    bool ordered = true;
    for (std::size_t i = 0; i < seq.size(); ++i) {
      if (seq[i] != static_cast<int>(i)) {
        ordered = false;
        FAIL_CHECK(team, ": position ", i, " holds n=", seq[i]);
        break;
      }
    }
    CHECK(ordered);
  }
}

int closed_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);  // nothing listens there now: connections are refused
  return ntohs(addr.sin_port);
}

}  // namespace rtm::test
