#include "util/backoff.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using rtm::backoff;

TEST_CASE("backoff doubles from the initial delay up to the cap") {
  backoff b(1000ms, 8000ms, 0.0);
  CHECK(b.next(0.5) == 1000ms);
  CHECK(b.next(0.5) == 2000ms);
  CHECK(b.next(0.5) == 4000ms);
  CHECK(b.next(0.5) == 8000ms);
  CHECK(b.next(0.5) == 8000ms);
  CHECK(b.attempts() == 5);
}

TEST_CASE("backoff jitter stays within [d*(1-jitter), d]") {
  backoff b(1000ms, 60000ms, 0.5);
  CHECK(b.next(0.0) == 1000ms);
  CHECK(b.next(0.999) > 999ms);
  CHECK(b.next(0.999) >= 2000ms);
  backoff c(1000ms, 60000ms, 0.5);
  CHECK(c.next(1.0) == 500ms);
}

TEST_CASE("backoff never overflows after many attempts and resets") {
  backoff b(1ms, 60000ms, 0.25);
  for (int i = 0; i < 10000; ++i) {
    const auto d = b.next(0.3);
    CHECK(d.count() >= 1);
    CHECK(d <= 60000ms);
  }
  CHECK(b.ceiling() == 60000ms);
  b.reset();
  CHECK(b.attempts() == 0);
  CHECK(b.ceiling() == 1ms);
}

TEST_CASE("backoff with a cap below the initial delay uses the initial delay") {
  backoff b(5000ms, 1000ms, 0.0);
  CHECK(b.next(0.0) == 5000ms);
  CHECK(b.next(0.0) == 5000ms);
}
