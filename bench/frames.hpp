#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

// The benchmark's traffic, encoded once before any clock starts: a cycle of realistic `message:updated` events
// (170–300 byte Socket.IO packets over 32 teams), as complete server-to-client WebSocket text frames (unmasked, so the
// wire bytes are fixed) for the emitter, and as `key<TAB>envelope` lines of the same sizes for kcat. Pure, no I/O.
namespace rtm::bench {

// Server-to-client WebSocket text frame: FIN + opcode 1, no mask, 7/16/64-bit length.
[[nodiscard]] std::string ws_text_frame(std::string_view payload);

class frame_cycle {
 public:
  static constexpr int teams = 32;
  static constexpr int variants_per_team = 8;

  frame_cycle();

  // Frames in the cycle; frame i of a stream is frame (i % size()) of the cycle.
  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  // Wire bytes of cycle frames [first, first + count) (first + count <= size()): contiguous, so one write.
  [[nodiscard]] std::string_view wire(std::size_t first, std::size_t count) const noexcept;
  // Wire bytes of the first n frames of a stream (what a reading sink must receive).
  [[nodiscard]] std::uint64_t stream_bytes(std::uint64_t n) const noexcept;
  // The Socket.IO text of cycle frame i (`42["message:updated",{...}]`) and its payload.
  [[nodiscard]] const std::string& packet(std::size_t i) const noexcept { return packets_[i]; }
  [[nodiscard]] const std::string& payload(std::size_t i) const noexcept { return payloads_[i]; }
  [[nodiscard]] const std::string& team_id(std::size_t i) const noexcept { return team_ids_[i]; }

  // The whole cycle as kcat input lines `team_id \t envelope \n`, the envelope shaped and sized like the daemon's
  // record value for the same event.
  [[nodiscard]] std::string kcat_lines(const std::string& connection) const;

  [[nodiscard]] std::size_t min_packet() const noexcept;
  [[nodiscard]] std::size_t max_packet() const noexcept;

 private:
  std::vector<std::string> team_ids_;
  std::vector<std::string> payloads_;
  std::vector<std::string> packets_;
  std::string wire_;
  std::vector<std::size_t> offsets_;  // size() + 1 entries into wire_
};

}  // namespace rtm::bench
