// One connection's outbox alone: queue order, max_age, replies matched by socket and id, no_reply cases.
#include "commands/outbox.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace rtm::commands;
using namespace std::chrono_literals;

namespace {

const system_time t0 = system_time(std::chrono::seconds(1'700'000'000));
const steady_time s0 = steady_time(std::chrono::seconds(1000));

queued_command cmd(std::uint64_t ticket, system_time produced) {
  queued_command c;
  c.ticket = ticket;
  c.command_id = "c" + std::to_string(ticket);
  c.object = R"({"type":"message"})";
  c.produced_at = produced;
  return c;
}

}  // namespace

TEST_CASE("outbox: queued in order; past max_age answered expired wherever they are in the queue") {
  outbox box(10, 30s);
  box.push(cmd(1, t0));
  box.push(cmd(2, t0 + 20s));  // produced later: expires later
  box.push(cmd(3, t0 - 5s));   // an older timestamp behind a newer one (another producer's clock)
  std::vector<std::uint64_t> expired;
  box.take_expired(t0 + 29s, [&](queued_command c) { expired.push_back(c.ticket); });
  CHECK(expired == std::vector<std::uint64_t>{3});
  box.take_expired(t0 + 30s, [&](queued_command c) { expired.push_back(c.ticket); });
  CHECK(expired == std::vector<std::uint64_t>{3, 1});
  REQUIRE(box.queued() == 1);
  CHECK(box.front().ticket == 2);
  CHECK(box.pop_front().ticket == 2);
  CHECK(box.empty());
}

TEST_CASE("outbox: a reply matches its socket and id only; a closed socket's and a timed-out one are no_reply") {
  outbox box(10, 30s);
  box.sent(cmd(1, t0), 7, 100, s0);
  box.sent(cmd(2, t0), 7, 101, s0 + 1s);
  box.sent(cmd(3, t0), 8, 100, s0 + 2s);  // the same id on another socket is another command
  CHECK_FALSE(box.take_reply(9, 100).has_value());
  CHECK_FALSE(box.take_reply(7, 102).has_value());
  const auto third = box.take_reply(8, 100);
  REQUIRE(third.has_value());
  CHECK(third->cmd.ticket == 3);
  CHECK_FALSE(box.take_reply(8, 100).has_value());  // answered once
  std::vector<std::uint64_t> gone;
  box.take_timed_out(s0 + 10s, [&](sent_command s) { gone.push_back(s.cmd.ticket); });
  CHECK(gone == std::vector<std::uint64_t>{1});
  box.take_unanswered(7, [&](sent_command s) { gone.push_back(s.cmd.ticket); });
  CHECK(gone == std::vector<std::uint64_t>{1, 2});
  CHECK(box.awaiting() == 0);
}

TEST_CASE("outbox: a revoked partition's queued commands leave unanswered, the others keep their order") {
  outbox box(10, 30s);
  for (std::uint64_t i = 1; i <= 5; ++i) {
    queued_command c = cmd(i, t0);
    c.partition = static_cast<std::int32_t>(i % 2);
    box.push(std::move(c));
  }
  CHECK(box.drop_if([](const queued_command& c) { return c.partition == 1; }) == 3);
  REQUIRE(box.queued() == 2);
  CHECK(box.pop_front().ticket == 2);
  CHECK(box.pop_front().ticket == 4);
}

TEST_CASE("outbox: full at the bound, room again at half of it") {
  outbox box(4, 30s);
  for (std::uint64_t i = 1; i <= 4; ++i) {
    CHECK_FALSE(box.full());
    box.push(cmd(i, t0));
  }
  CHECK(box.full());
  CHECK_FALSE(box.has_room_again());
  (void)box.pop_front();
  CHECK_FALSE(box.full());
  CHECK_FALSE(box.has_room_again());
  (void)box.pop_front();
  CHECK(box.has_room_again());
}
