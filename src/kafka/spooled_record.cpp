#include "kafka/spooled_record.hpp"

#include <cstring>

namespace rtm::kafka {
namespace {

constexpr std::uint8_t spooled_version = 1;
constexpr std::size_t field_count = static_cast<std::size_t>(record_field::count_);
constexpr std::size_t header_size = 1 + 1 + 1 + 4 + 4 * field_count;

}  // namespace

void encode_spooled(const record& r, std::string& out) {
  // The bytes up to the topic's end; the topic's NUL is not stored (decode adds it back).
  const std::uint32_t end = r.offsets_[field_count];
  const std::size_t at = out.size();
  out.resize(at + header_size + end);
  char* p = out.data() + at;
  p[0] = static_cast<char>(spooled_version);
  p[1] = static_cast<char>(r.kind);
  p[2] = static_cast<char>(r.from);
  std::memcpy(p + 3, &r.truncated_from, 4);
  std::memcpy(p + 7, r.offsets_.data() + 1, 4 * field_count);
  if (end > 0) {
    std::memcpy(p + header_size, r.bytes_.data(), end);
  }
}

bool decode_spooled(record& r, std::string_view payload) {
  r.bytes_.clear();
  r.offsets_.fill(0);
  if (payload.size() < header_size || static_cast<std::uint8_t>(payload[0]) != spooled_version) {
    return false;
  }
  const auto kind = static_cast<std::uint8_t>(payload[1]);
  const auto from = static_cast<std::uint8_t>(payload[2]);
  if (kind > static_cast<std::uint8_t>(record_kind::dead_letter) ||
      from > static_cast<std::uint8_t>(pipeline::source::slack)) {
    return false;
  }
  decltype(r.offsets_) offsets{};
  std::memcpy(offsets.data() + 1, payload.data() + 7, 4 * field_count);
  const std::size_t size = payload.size() - header_size;
  for (std::size_t i = 0; i < field_count; ++i) {
    if (offsets[i + 1] < offsets[i]) {
      return false;
    }
  }
  if (offsets[field_count] != size) {
    return false;
  }
  r.bytes_.reserve(size + 1);
  r.bytes_.assign(payload.substr(header_size));
  r.bytes_ += '\0';
  r.offsets_ = offsets;
  r.kind = static_cast<record_kind>(kind);
  r.from = static_cast<pipeline::source>(from);
  std::memcpy(&r.truncated_from, payload.data() + 3, 4);
  return true;
}

std::string_view envelope_id(std::string_view value) noexcept {
  constexpr std::string_view key = R"("id":")";
  const std::size_t at = value.substr(0, 128).find(key);
  if (at == std::string_view::npos) {
    return {};
  }
  const std::size_t start = at + key.size();
  const std::size_t end = value.find('"', start);
  return end == std::string_view::npos ? std::string_view{} : value.substr(start, end - start);
}

}  // namespace rtm::kafka
