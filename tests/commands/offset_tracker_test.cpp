// Commit points alone: a partition's point is its oldest command without a confirmed reply.
#include "commands/offset_tracker.hpp"

#include <doctest/doctest.h>

#include <utility>
#include <vector>

using rtm::commands::offset_tracker;
using commits = std::vector<std::pair<std::int32_t, std::int64_t>>;

TEST_CASE("offset tracker: replies confirmed out of order commit only what is done from the start") {
  offset_tracker t;
  const auto a = t.add(0, 10);
  const auto b = t.add(0, 11);
  const auto c = t.add(0, 12);
  const auto x = t.add(1, 5);
  CHECK(t.take_commits() == commits{{0, 10}, {1, 5}});  // nothing done: the first offsets, once
  CHECK(t.take_commits().empty());
  t.done(c);
  CHECK(t.take_commits().empty());  // 10 and 11 still open
  t.done(a);
  CHECK(t.take_commits() == commits{{0, 11}});
  t.done(b);
  t.done(x);
  CHECK(t.take_commits() == commits{{0, 13}, {1, 6}});
  CHECK(t.outstanding() == 0);
  t.done(b);  // twice: nothing
  CHECK(t.take_commits().empty());
  CHECK(t.commit_points() == commits{{0, 13}, {1, 6}});
}

TEST_CASE("offset tracker: a failed commit is offered again") {
  offset_tracker t;
  const auto a = t.add(4, 20);
  t.done(a);
  CHECK(t.take_commits() == commits{{4, 21}});
  CHECK(t.take_commits().empty());
  t.uncommit(4);
  CHECK(t.take_commits() == commits{{4, 21}});
  t.uncommit(9);  // unknown: nothing
  CHECK(t.take_commits().empty());
}

TEST_CASE("offset tracker: a revoked partition commits nothing more") {
  offset_tracker t;
  const auto a = t.add(0, 1);
  const auto b = t.add(2, 1);
  t.forget(0);
  t.done(a);
  t.done(b);
  CHECK(t.take_commits() == commits{{2, 2}});
  CHECK(t.commit_points() == commits{{2, 2}});
  CHECK(t.outstanding() == 0);
  // Assigned again later: tracked afresh from what is read.
  const auto c = t.add(0, 7);
  t.done(c);
  CHECK(t.take_commits() == commits{{0, 8}});
}
