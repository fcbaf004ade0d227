#include "frames.hpp"

#include <algorithm>
#include <cstdio>

namespace rtm::bench {

namespace {

// Deterministic, so every run (and the daemon and kcat within a run) sees the same bytes.
struct lcg {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  }
};

std::string hex(lcg& rng, int digits) {
  static constexpr char digits_table[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < digits; ++i) {
    out += digits_table[rng.next() % 16];
  }
  return out;
}

std::string uuid(lcg& rng) {
  return hex(rng, 8) + '-' + hex(rng, 4) + "-4" + hex(rng, 3) + '-' + hex(rng, 4) + '-' + hex(rng, 12);
}

constexpr std::string_view words[] = {"deploy", "the",   "build", "is",     "green", "again", "please",  "review",
                                      "merge",  "after", "lunch", "ticket", "fixed", "on",    "staging", "thanks"};

// `42["message:updated",` + payload + `]`
constexpr std::size_t packet_overhead = 22;

}  // namespace

std::string ws_text_frame(std::string_view payload) {
  std::string frame;
  frame += static_cast<char>(0x81);
  const std::uint64_t n = payload.size();
  if (n < 126) {
    frame += static_cast<char>(n);
  } else if (n <= 0xffff) {
    frame += static_cast<char>(126);
    frame += static_cast<char>((n >> 8) & 0xff);
    frame += static_cast<char>(n & 0xff);
  } else {
    frame += static_cast<char>(127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame += static_cast<char>((n >> shift) & 0xff);
    }
  }
  frame.append(payload);
  return frame;
}

frame_cycle::frame_cycle() {
  lcg rng{20261123};
  for (int t = 0; t < teams; ++t) {
    team_ids_.push_back(uuid(rng));
  }
  offsets_.push_back(0);
  // Interleaved by team (t varies fastest), like a busy multi-team stream.
  for (int v = 0; v < variants_per_team; ++v) {
    for (int t = 0; t < teams; ++t) {
      const std::string& team = team_ids_[static_cast<std::size_t>(t)];
      char fingerprint[32];
      std::snprintf(fingerprint, sizeof fingerprint, "%llu",
                    static_cast<unsigned long long>(100000000000000ULL + rng.next() * 7919 % 899999999999999ULL));
      const std::string head = "{\"team_id\":\"" + team + "\",\"session_id\":\"session_" + hex(rng, 16) +
                               "\",\"fingerprint\":" + fingerprint + ",\"content\":\"";
      const std::string tail = "\"}";
      // The whole Socket.IO packet (what the WebSocket frame carries) is 170 to 300 bytes: inside the issue's
      // 150-300, above the ~160 bytes the fixed fields take.
      const std::size_t packet_size = 170 + rng.next() % 131;
      const std::size_t fixed_size = packet_overhead + head.size() + tail.size();
      const std::size_t content_size = packet_size > fixed_size + 4 ? packet_size - fixed_size : 4;
      std::string content;
      while (content.size() < content_size) {
        if (!content.empty()) {
          content += ' ';
        }
        content += words[rng.next() % std::size(words)];
      }
      content.resize(content_size);
      if (content.back() == ' ') {
        content.back() = '.';
      }
      std::string payload = head + content + tail;
      std::string packet = "42[\"message:updated\"," + payload + ']';
      wire_ += ws_text_frame(packet);
      offsets_.push_back(wire_.size());
      payloads_.push_back(std::move(payload));
      packets_.push_back(std::move(packet));
    }
  }
}

std::string_view frame_cycle::wire(std::size_t first, std::size_t count) const noexcept {
  return std::string_view(wire_).substr(offsets_[first], offsets_[first + count] - offsets_[first]);
}

std::uint64_t frame_cycle::stream_bytes(std::uint64_t n) const noexcept {
  const std::uint64_t whole = n / size();
  const std::uint64_t rest = n % size();
  return whole * wire_.size() + offsets_[rest];
}

std::string frame_cycle::kcat_lines(const std::string& connection) const {
  std::string out;
  for (std::size_t i = 0; i < size(); ++i) {
    // Same fields and widths as the daemon's envelope (kafka/envelope.cpp): a fixed-width id and timestamp.
    char id[64];
    std::snprintf(id, sizeof id, ":1732345000123:%06zu", i);
    out += team_ids_[i % teams];
    out += '\t';
    out += "{\"schema\":\"rtm-bridge.event/v1\",\"id\":\"" + connection + id +
           "\",\"source\":\"acme\",\"connection\":\"" + connection + "\",\"event\":\"message:updated\",\"team_id\":\"" +
           team_ids_[i % teams] + "\",\"received_at\":\"2026-11-23T07:36:49.123456Z\",\"data\":" + payloads_[i] + "}\n";
  }
  return out;
}

std::size_t frame_cycle::min_packet() const noexcept {
  return std::min_element(packets_.begin(), packets_.end(),
                          [](const auto& a, const auto& b) { return a.size() < b.size(); })
      ->size();
}

std::size_t frame_cycle::max_packet() const noexcept {
  return std::max_element(packets_.begin(), packets_.end(),
                          [](const auto& a, const auto& b) { return a.size() < b.size(); })
      ->size();
}

}  // namespace rtm::bench
