#pragma once

#include <cstdint>
#include <string>
#include <vector>

// Reads the daemon's Prometheus endpoint and turns two snapshots of the publish-latency histogram into quantiles.
// The quantile maths is pure.
namespace rtm::bench {

struct histogram_bucket {
  double le;  // upper bound in seconds; +infinity for the last
  std::uint64_t cumulative;
};

// GET http://127.0.0.1:port/metrics (blocking, 5 s bound). Throws std::runtime_error.
[[nodiscard]] std::string scrape_metrics(unsigned short port);

// The `NAME_bucket{le="..."}` lines of one histogram, in exposition order.
[[nodiscard]] std::vector<histogram_bucket> parse_histogram(const std::string& text, const std::string& name);

// after − before, bucket by bucket (same bounds; throws std::runtime_error otherwise).
[[nodiscard]] std::vector<histogram_bucket> histogram_delta(const std::vector<histogram_bucket>& before,
                                                            const std::vector<histogram_bucket>& after);

struct quantile_estimate {
  double value = 0;  // linear interpolation inside the bucket holding the quantile (Prometheus-style)
  double lower = 0;  // that bucket's bounds: the histogram only proves lower < q ≤ upper
  double upper = 0;  // +infinity when the quantile lies above the last finite bound
};

// q in (0, 1]; an empty histogram gives all zeros.
[[nodiscard]] quantile_estimate histogram_quantile(const std::vector<histogram_bucket>& delta, double q);

}  // namespace rtm::bench
