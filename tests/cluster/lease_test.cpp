// The fence alone: lease_until from the send times of answered requests, one expiry, the two reopening rules.
#include "cluster/lease.hpp"

#include <doctest/doctest.h>

using rtm::cluster::lease;
using namespace std::chrono_literals;

namespace {
const lease::clock::time_point t0 = lease::clock::time_point(std::chrono::seconds(500));
}

TEST_CASE("lease: a new member holds nothing until the group's first assignment, and that is not a fence") {
  lease l(10s, 3s);
  CHECK(l.fenced());
  CHECK_FALSE(l.expired(t0));
  l.assigned(t0);  // no answer yet: not valid
  CHECK(l.fenced());
  l.answered(t0);
  l.assigned(t0 + 1s);
  CHECK_FALSE(l.fenced());
  CHECK(l.fences() == 0);
}

TEST_CASE("lease: it lasts S - M from the send time of the latest answered request, and never shrinks") {
  lease l(10s, 3s);  // renewals last 7 s
  CHECK_FALSE(l.valid(t0));
  l.answered(t0);
  l.assigned(t0);
  CHECK(l.until() == t0 + 7s);
  l.answered(t0 - 2s);  // an older request answered late: no shorter lease
  CHECK(l.until() == t0 + 7s);
  l.answered(t0 + 1s);  // a JoinGroup or SyncGroup renews too
  CHECK(l.until() == t0 + 8s);
  CHECK_FALSE(l.expired(t0 + 7999ms));
  CHECK(l.expired(t0 + 8s));
  CHECK_FALSE(l.expired(t0 + 9s));  // once per expiry
  CHECK(l.fenced());
  CHECK(l.fences() == 1);
}

TEST_CASE("lease: after a fence, two answered heartbeats and a completed poll reopen (rule b)") {
  lease l(10s, 3s);
  l.answered(t0);
  l.assigned(t0);
  REQUIRE(l.expired(t0 + 7s));
  l.answered(t0 + 8s);
  l.polled(t0 + 8s, 1);
  CHECK(l.fenced());  // one heartbeat is not proof
  l.answered(t0 + 9s);
  CHECK(l.fenced());  // nor two, before a poll served what they queued
  l.polled(t0 + 9s, 2);
  CHECK_FALSE(l.fenced());
}

TEST_CASE("lease: a lost revocation after the fence voids rule b; an assignment with a valid lease reopens (rule a)") {
  lease l(10s, 3s);
  l.answered(t0);
  l.assigned(t0);
  REQUIRE(l.expired(t0 + 7s));
  l.answered(t0 + 8s);
  l.lost();
  l.answered(t0 + 9s);
  l.polled(t0 + 9s, 2);
  CHECK(l.fenced());     // after a loss only a new assignment is proof
  l.answered(t0 + 10s);  // the rejoin's SyncGroup
  l.assigned(t0 + 10s);
  CHECK_FALSE(l.fenced());
  CHECK(l.fences() == 1);
}

TEST_CASE("lease: an assignment while the lease has run out does not reopen; heartbeats during the join do not count") {
  lease l(10s, 3s);
  l.answered(t0);
  l.assigned(t0);
  // A join phase longer than S - M: no heartbeat is answered meanwhile, so the fence comes (spurious, but safe).
  REQUIRE(l.expired(t0 + 7s));
  l.assigned(t0 + 8s);  // the answer that made the assignment was sent before the fence: not valid now
  CHECK(l.fenced());
  l.answered(t0 + 8s);
  l.assigned(t0 + 8s);
  CHECK_FALSE(l.fenced());
}

TEST_CASE("lease: end() fences at once while the lease still holds, and the same proof reopens") {
  lease l(10s, 3s);
  l.answered(t0);
  l.assigned(t0);
  l.end(t0 + 1s);  // the loop stalled: what was observed cannot be trusted
  CHECK(l.fenced());
  CHECK(l.fences() == 1);
  CHECK_FALSE(l.valid(t0 + 1s));
  l.answered(t0 + 2s);
  l.answered(t0 + 3s);
  l.polled(t0 + 3s, 2);
  CHECK_FALSE(l.fenced());
  l.end(t0 + 4s);
  CHECK(l.fences() == 2);
}
