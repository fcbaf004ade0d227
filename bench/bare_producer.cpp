#include "bare_producer.hpp"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace rtm::bench {
namespace {

using clock_type = std::chrono::steady_clock;

// Shared by the producing (controller) thread and the polling thread: `sent` is written before the record is handed
// to librdkafka, whose queue locks order it before the report that reads it; each report writes its own slot.
struct run_state {
  std::vector<clock_type::time_point> sent;
  std::vector<double> latency;
  std::atomic<std::uint64_t> reported{0};
  std::atomic<std::uint64_t> failed{0};
};

void on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
  auto* state = static_cast<run_state*>(opaque);
  const auto now = clock_type::now();
  const auto index = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(msg->_private));
  if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    state->failed.fetch_add(1, std::memory_order_relaxed);
  } else if (index < state->latency.size()) {
    state->latency[index] = std::chrono::duration<double>(now - state->sent[index]).count();
  }
  state->reported.fetch_add(1, std::memory_order_release);
}

struct record_text {
  std::string_view key;
  std::string_view value;
};

std::vector<record_text> split_lines(const std::string& lines) {
  std::vector<record_text> out;
  std::size_t pos = 0;
  while (pos < lines.size()) {
    const std::size_t tab = lines.find('\t', pos);
    const std::size_t end = lines.find('\n', pos);
    if (tab == std::string::npos || end == std::string::npos || tab > end) {
      throw std::runtime_error("bare producer: malformed record line");
    }
    out.push_back(
        {std::string_view(lines).substr(pos, tab - pos), std::string_view(lines).substr(tab + 1, end - tab - 1)});
    pos = end + 1;
  }
  if (out.empty()) {
    throw std::runtime_error("bare producer: no records");
  }
  return out;
}

}  // namespace

bare_latency run_bare_producer(const std::string& bootstrap_servers, const std::string& topic,
                               const std::string& connection, const std::string& lines,
                               const std::vector<std::pair<std::string, std::string>>& properties, double rate,
                               std::uint64_t warmup, std::uint64_t total) {
  const std::vector<record_text> records = split_lines(lines);
  const std::uint64_t count = warmup + total;
  run_state state;
  state.sent.resize(count);
  state.latency.assign(count, std::numeric_limits<double>::quiet_NaN());

  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::vector<std::pair<std::string, std::string>> settings{
      {"bootstrap.servers", bootstrap_servers}, {"client.id", "rtm-bench-bare"},
      {"enable.idempotence", "true"},           {"acks", "all"},
      {"partitioner", "murmur2_random"},        {"log_level", "3"}};
  settings.insert(settings.end(), properties.begin(), properties.end());
  for (const auto& [name, value] : settings) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("bare producer: " + name + ": " + err);
    }
  }
  rd_kafka_conf_set_opaque(conf, &state);
  rd_kafka_conf_set_dr_msg_cb(conf, &on_delivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    throw std::runtime_error(std::string("bare producer: ") + err);
  }
  std::atomic<bool> stop{false};
  std::thread poller([rk, &stop] {
    while (!stop.load(std::memory_order_acquire)) {
      rd_kafka_poll(rk, 100);
    }
  });

  const auto start = clock_type::now();
  clock_type::time_point first_measured{};
  clock_type::time_point last_measured{};
  std::uint64_t produced = 0;
  for (std::uint64_t tick = 1; produced < count; ++tick) {
    const auto tick_at = start + std::chrono::milliseconds(tick);
    std::this_thread::sleep_until(tick_at);
    const auto due = std::min<std::uint64_t>(
        count, static_cast<std::uint64_t>(rate * std::chrono::duration<double>(clock_type::now() - start).count()));
    while (produced < due) {
      const record_text& r = records[produced % records.size()];
      state.sent[produced] = clock_type::now();
      const rd_kafka_resp_err_t e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(r.key.data(), r.key.size()),
          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
          RD_KAFKA_V_HEADER("rtm-event", "message:updated", -1),
          RD_KAFKA_V_HEADER("rtm-connection", connection.c_str(), -1), RD_KAFKA_V_HEADER("rtm-source", "acme", -1),
          RD_KAFKA_V_HEADER("content-type", "application/json", -1),
          RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(static_cast<std::uintptr_t>(produced))), RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        break;  // retried on the next tick; the poller drains the queue meanwhile
      }
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        stop.store(true, std::memory_order_release);
        poller.join();
        rd_kafka_destroy(rk);
        throw std::runtime_error(std::string("bare producer: produce failed: ") + rd_kafka_err2str(e));
      }
      if (produced == warmup) {
        first_measured = state.sent[produced];
      }
      last_measured = state.sent[produced];
      ++produced;
    }
  }
  const auto deadline = clock_type::now() + std::chrono::seconds(60);
  while (state.reported.load(std::memory_order_acquire) < count && clock_type::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const std::uint64_t reported = state.reported.load(std::memory_order_acquire);
  stop.store(true, std::memory_order_release);
  poller.join();
  rd_kafka_flush(rk, 10000);
  rd_kafka_destroy(rk);
  if (reported < count) {
    throw std::runtime_error("bare producer: only " + std::to_string(reported) + " of " + std::to_string(count) +
                             " delivery reports within 60 s");
  }

  bare_latency out;
  out.failed = state.failed.load();
  out.seconds.assign(state.latency.begin() + static_cast<std::ptrdiff_t>(warmup), state.latency.end());
  const double window = std::chrono::duration<double>(last_measured - first_measured).count();
  out.offered_rate = window > 0 ? static_cast<double>(total) / window : 0;
  return out;
}

}  // namespace rtm::bench
