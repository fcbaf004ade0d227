#include "metrics_scrape.hpp"

#include <chrono>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace rtm::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::string scrape_metrics(unsigned short port) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::empty_body> req(http::verb::get, "/metrics", 11);
  req.set(http::field::host, "127.0.0.1");
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  if (res.result() != http::status::ok) {
    throw std::runtime_error("GET /metrics on port " + std::to_string(port) + ": HTTP " +
                             std::to_string(res.result_int()));
  }
  return res.body();
}

std::vector<histogram_bucket> parse_histogram(const std::string& text, const std::string& name) {
  std::vector<histogram_bucket> out;
  const std::string prefix = name + "_bucket{le=\"";
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with(prefix)) {
      continue;
    }
    const auto quote = line.find('"', prefix.size());
    const auto space = line.rfind(' ');
    if (quote == std::string::npos || space == std::string::npos || space < quote) {
      continue;
    }
    const std::string le = line.substr(prefix.size(), quote - prefix.size());
    histogram_bucket b{};
    b.le = le == "+Inf" ? std::numeric_limits<double>::infinity() : std::stod(le);
    b.cumulative = std::stoull(line.substr(space + 1));
    out.push_back(b);
  }
  return out;
}

std::vector<histogram_bucket> histogram_delta(const std::vector<histogram_bucket>& before,
                                              const std::vector<histogram_bucket>& after) {
  if (before.size() != after.size()) {
    throw std::runtime_error("latency histogram changed its buckets between two scrapes");
  }
  std::vector<histogram_bucket> out;
  for (std::size_t i = 0; i < after.size(); ++i) {
    if (before[i].le != after[i].le || after[i].cumulative < before[i].cumulative) {
      throw std::runtime_error("latency histogram changed its buckets between two scrapes");
    }
    out.push_back({after[i].le, after[i].cumulative - before[i].cumulative});
  }
  return out;
}

quantile_estimate histogram_quantile(const std::vector<histogram_bucket>& delta, double q) {
  if (delta.empty() || delta.back().cumulative == 0) {
    return {};
  }
  const double rank = q * static_cast<double>(delta.back().cumulative);
  double lower = 0;
  std::uint64_t below = 0;
  for (const auto& b : delta) {
    if (static_cast<double>(b.cumulative) >= rank) {
      if (b.le == std::numeric_limits<double>::infinity()) {
        return {lower, lower, b.le};
      }
      const double in_bucket = static_cast<double>(b.cumulative - below);
      const double fraction = in_bucket > 0 ? (rank - static_cast<double>(below)) / in_bucket : 1.0;
      return {lower + (b.le - lower) * fraction, lower, b.le};
    }
    lower = b.le;
    below = b.cumulative;
  }
  return {lower, lower, std::numeric_limits<double>::infinity()};
}

}  // namespace rtm::bench
